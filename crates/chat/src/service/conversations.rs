//! Conversations: create (from a preset or not), read, list, change (fields or the branch
//! shown), delete one or many, and purge a deleted user's.

use confab_core::auth::Principal;
use uuid::Uuid;

use super::{ChatError, ChatService, not_found};
use crate::domain::{Conversation, ConversationChanges, ConversationInput, Message};
use crate::events::{ConversationDeleted, ConversationUpdated, ConversationsChanged};
use crate::ports::{
    Branches, BulkAction, ConversationFilter, ConversationPosition, NewConversation,
};

impl ChatService {
    pub async fn create_conversation(
        &self,
        principal: &Principal,
        input: ConversationInput,
    ) -> Result<Conversation, ChatError> {
        let user = principal.user_id;
        let preset = match input.preset_id {
            Some(id) => Some(
                self.store
                    .preset(user, id)
                    .await
                    .map_err(not_found("no such preset"))?,
            ),
            None => None,
        };
        let fields = input.check(preset.as_ref()).map_err(ChatError::problems)?;
        self.check_model(fields.model.as_deref()).await?;
        Ok(self
            .store
            .create_conversation(NewConversation {
                id: confab_core::id::new_id(),
                user_id: user,
                title: fields.title,
                model: fields.model,
                system_prompt: fields.system_prompt,
                params: fields.params,
                folder: fields.folder,
                tags: fields.tags,
                now: confab_core::now_ms(),
            })
            .await?)
    }

    pub async fn conversation(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Conversation, ChatError> {
        self.store
            .conversation(principal.user_id, id)
            .await
            .map_err(not_found("no such conversation"))
    }

    pub async fn list(
        &self,
        principal: &Principal,
        filter: &ConversationFilter,
        after: Option<ConversationPosition>,
        limit: u32,
    ) -> Result<Vec<Conversation>, ChatError> {
        Ok(self
            .store
            .list_conversations(principal.user_id, filter, after, limit)
            .await?)
    }

    /// Applies changes after checking them all. `active_leaf_id` must be a message of the
    /// conversation (branch navigation passes any message; its newest leaf becomes active).
    pub async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        changes: ConversationChanges,
    ) -> Result<Conversation, ChatError> {
        let user = principal.user_id;
        let mut changes = changes.check().map_err(ChatError::problems)?;
        self.check_model(changes.model.clone().flatten().as_deref())
            .await?;
        // The conversation must be the user's before anything else is looked at.
        self.conversation(principal, id).await?;
        if let Some(message) = changes.active_leaf_id {
            changes.active_leaf_id = Some(
                self.store
                    .newest_leaf(user, id, message)
                    .await
                    .map_err(not_found("no such message in this conversation"))?,
            );
        }
        let updated = self
            .store
            .update_conversation(user, id, changes, confab_core::now_ms())
            .await
            .map_err(not_found("no such conversation"))?;
        self.publish(&ConversationUpdated {
            user_id: user,
            conversation: updated.clone(),
        })
        .await;
        Ok(updated)
    }

    pub async fn delete(&self, principal: &Principal, id: Uuid) -> Result<(), ChatError> {
        // Answers still generating in it stop first, so nothing writes to deleted rows.
        let path = self.active_path(principal, id).await?;
        self.stop_live(&path);
        let files = self.files_of(principal, &[id]).await;
        self.store
            .delete_conversation(principal.user_id, id)
            .await
            .map_err(not_found("no such conversation"))?;
        self.delete_files(principal, files).await;
        self.publish(&ConversationDeleted {
            user_id: principal.user_id,
            conversation_id: id,
        })
        .await;
        Ok(())
    }

    /// Asks every answer of `path` still being generated to stop.
    fn stop_live(&self, path: &[(Message, Branches)]) {
        for (message, _) in path {
            if let Some(live) = self.live.get(message.id) {
                live.request_stop();
            }
        }
    }

    /// The messages of the active branch, root first, each with its siblings.
    pub async fn active_path(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Vec<(Message, Branches)>, ChatError> {
        let conversation = self.conversation(principal, id).await?;
        let Some(leaf) = conversation.active_leaf_id else {
            return Ok(Vec::new());
        };
        let mut path = self.store.path(principal.user_id, id, leaf).await?;
        // A live answer's row lags its text by up to one checkpoint: show the live text.
        for (message, _) in &mut path {
            if let Some(live) = self.live.get(message.id) {
                message.content = live.snapshot().content;
            }
        }
        Ok(path)
    }

    /// Archives, unarchives or deletes many conversations; ids that are not the user's are
    /// skipped. Returns how many were changed.
    pub async fn bulk(
        &self,
        principal: &Principal,
        ids: &[Uuid],
        action: BulkAction,
    ) -> Result<u64, ChatError> {
        if ids.is_empty() || ids.len() > 500 {
            return Err(ChatError::invalid(
                "invalid_ids",
                "give between 1 and 500 conversation ids",
            ));
        }
        let mut files = Vec::new();
        if action == BulkAction::Delete {
            for id in ids {
                if let Ok(path) = self.active_path(principal, *id).await {
                    self.stop_live(&path);
                }
            }
            files = self.files_of(principal, ids).await;
        }
        let affected = self
            .store
            .bulk(principal.user_id, ids, action, confab_core::now_ms())
            .await?;
        self.delete_files(principal, files).await;
        self.publish(&ConversationsChanged {
            user_id: principal.user_id,
            ids: Some(ids.to_vec()),
            action: Some(action),
        })
        .await;
        Ok(affected)
    }

    /// Deletes everything of one user's (when their account is deleted); idempotent.
    /// Returns how many conversations went.
    pub async fn purge_user(&self, user_id: Uuid) -> Result<u64, ChatError> {
        let purged = self.store.purge_user(user_id).await?;
        self.publish(&ConversationsChanged {
            user_id,
            ids: None,
            action: None,
        })
        .await;
        Ok(purged)
    }
}

/// The chat service's part in deleting a user across services (its durable consumer
/// `chat.user-purge`): every conversation of the user's, with their messages, shares,
/// reactions and presets.
#[async_trait::async_trait]
impl confab_bus::purge::UserData for ChatService {
    async fn purge_user_data(
        &self,
        user_id: Uuid,
    ) -> Result<confab_bus::purge::PurgeCounts, confab_bus::purge::PurgeError> {
        let conversations = self
            .purge_user(user_id)
            .await
            .map_err(|e| confab_bus::purge::PurgeError(e.to_string()))?;
        Ok([("conversations".to_owned(), conversations)].into())
    }
}
