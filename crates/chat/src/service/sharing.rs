//! Sharing: read-only links to a snapshot of a conversation's active branch, served to anyone
//! holding the link while its owner's account is active.

use confab_core::auth::Principal;
use confab_store::StoreError;
use uuid::Uuid;

use super::{ChatError, ChatService, not_found};
use crate::domain::{MessageStatus, ShareLink, SharedConversation, SharedMessage};
use crate::ports::AccountsError;

/// The longest token a link may have; longer ones are not looked up.
const MAX_TOKEN_CHARS: usize = 64;

/// A new link's secret: 18 random bytes (144 bits), URL-safe.
fn new_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl ChatService {
    /// Makes a read-only link to a snapshot of the conversation's active branch.
    pub async fn share(&self, principal: &Principal, id: Uuid) -> Result<ShareLink, ChatError> {
        let conversation = self.conversation(principal, id).await?;
        let path = self.active_path(principal, id).await?;
        let messages: Vec<SharedMessage> = path
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| {
                m.status != MessageStatus::Streaming
                    && !(m.content.is_empty() && m.attachments.is_empty())
            })
            .map(|m| SharedMessage {
                role: m.role,
                content: m.content,
                attachments: m.attachments,
            })
            .collect();
        if messages.is_empty() {
            return Err(ChatError::invalid(
                "nothing_to_share",
                "the conversation has no finished messages to share",
            ));
        }
        let now = confab_core::now_ms();
        let snapshot = SharedConversation {
            title: conversation.title,
            shared_at: now,
            messages,
        };
        self.store
            .create_share(principal.user_id, id, &new_token(), &snapshot, now)
            .await
            .map_err(not_found("no such conversation"))
    }

    pub async fn shares(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Vec<ShareLink>, ChatError> {
        self.conversation(principal, id).await?;
        Ok(self.store.shares(principal.user_id, id).await?)
    }

    pub async fn revoke_share(&self, principal: &Principal, token: &str) -> Result<(), ChatError> {
        self.store
            .revoke_share(principal.user_id, token, confab_core::now_ms())
            .await
            .map_err(not_found("no such share link"))
    }

    /// What a share link shows, for anyone who has it, while its owner's account is active:
    /// a link of a disabled (locked), pending or deleted account answers as a revoked one.
    pub async fn shared(&self, token: &str) -> Result<SharedConversation, ChatError> {
        Ok(self.shared_snapshot(token).await?.1)
    }

    /// [`Self::shared`] with the id of the user who shared it.
    pub(super) async fn shared_snapshot(
        &self,
        token: &str,
    ) -> Result<(Uuid, SharedConversation), ChatError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(ChatError::NotFound("no such share link"));
        }
        let (owner, snapshot) = self
            .store
            .shared(token)
            .await
            .map_err(not_found("no such share link"))?;
        let active = self.accounts.is_active(owner).await.map_err(|e| match e {
            AccountsError::Unavailable(detail) => ChatError::Store(StoreError::Unavailable(detail)),
        })?;
        if !active {
            return Err(ChatError::NotFound("no such share link"));
        }
        Ok((owner, snapshot))
    }
}
