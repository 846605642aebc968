//! Reactions: a user's emoji on messages of their conversations.

use std::collections::HashMap;

use confab_core::auth::Principal;
use uuid::Uuid;

use super::{ChatError, ChatService, not_found};
use crate::domain::{self, Reaction};
use crate::events::ReactionChanged;

impl ChatService {
    /// Adds (`add`) or takes back a reaction; answers with the message's reactions.
    pub async fn react(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
        add: bool,
    ) -> Result<Vec<Reaction>, ChatError> {
        let emoji = emoji.trim();
        domain::check_emoji(emoji).map_err(|m| ChatError::invalid("invalid_reaction", m))?;
        let user = principal.user_id;
        if add {
            self.store
                .react(
                    user,
                    conversation_id,
                    message_id,
                    emoji,
                    confab_core::now_ms(),
                )
                .await
                .map_err(not_found("no such message in this conversation"))?;
        } else {
            self.store
                .unreact(user, conversation_id, message_id, emoji)
                .await
                .map_err(not_found("no such reaction"))?;
        }
        let reactions = self
            .store
            .reactions(user, &[message_id])
            .await?
            .remove(&message_id)
            .unwrap_or_default();
        self.publish(&ReactionChanged {
            user_id: user,
            conversation_id,
            message_id,
            reactions: reactions.clone(),
        })
        .await;
        Ok(reactions)
    }

    /// Reactions to the given messages as the user sees them.
    pub async fn reactions(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Reaction>>, ChatError> {
        Ok(self.store.reactions(principal.user_id, ids).await?)
    }
}
