//! Export (JSON with every branch, or Markdown of the active branch) and import (a Confab
//! export or ChatGPT's `conversations.json`, read off the async threads and bounded).

use confab_core::auth::Principal;
use uuid::Uuid;

use super::{ChatError, ChatService};
use crate::domain::Message;
use crate::ports::{ConversationFilter, ConversationPosition};
use crate::transfer::{self, Export, ExportedConversation, ImportError};

/// How long a refused import is asked to wait before it tries again.
const IMPORT_RETRY_SECS: u64 = 5;
/// Conversations read at once by an export of everything.
const EXPORT_PAGE: u32 = 200;

impl ChatService {
    /// One conversation with every message of every branch.
    pub async fn export_one(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<ExportedConversation, ChatError> {
        let conversation = self.conversation(principal, id).await?;
        let messages = self.store.all_messages(principal.user_id, id).await?;
        Ok(ExportedConversation::new(conversation, messages))
    }

    /// Every conversation of the user (archived ones too), newest activity first.
    pub async fn export_all(&self, principal: &Principal) -> Result<Export, ChatError> {
        let mut conversations = Vec::new();
        for archived in [false, true] {
            let filter = ConversationFilter {
                archived: Some(archived),
                ..ConversationFilter::default()
            };
            let mut after = None;
            loop {
                let page = self
                    .store
                    .list_conversations(principal.user_id, &filter, after, EXPORT_PAGE)
                    .await?;
                after = page.last().map(|c| ConversationPosition {
                    updated_at: c.updated_at,
                    id: c.id,
                });
                let done = page.len() < EXPORT_PAGE as usize;
                for conversation in page {
                    let messages = self
                        .store
                        .all_messages(principal.user_id, conversation.id)
                        .await?;
                    conversations.push(ExportedConversation::new(conversation, messages));
                }
                if done {
                    break;
                }
            }
        }
        Ok(Export {
            format: transfer::FORMAT.into(),
            version: transfer::VERSION,
            exported_at: confab_core::now_ms(),
            conversations,
        })
    }

    /// The active branch of a conversation as Markdown.
    pub async fn markdown(&self, principal: &Principal, id: Uuid) -> Result<String, ChatError> {
        let conversation = self.conversation(principal, id).await?;
        let path: Vec<Message> = self
            .active_path(principal, id)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        Ok(transfer::markdown(&conversation, &path))
    }

    /// Imports a Confab export or ChatGPT's `conversations.json`: checked whole first, then
    /// stored in one transaction. Returns the new conversations' ids.
    ///
    /// Reading and checking a file is CPU work proportional to its size: it runs on a blocking
    /// thread, never on the threads that serve requests, and at most
    /// `import_concurrency` imports of the whole process read at once (each holds its file
    /// and what was read from it); one more is refused at once with a time to retry.
    pub async fn import(
        &self,
        principal: &Principal,
        bytes: axum::body::Bytes,
    ) -> Result<Vec<Uuid>, ChatError> {
        let _permit = self
            .imports
            .clone()
            .try_acquire_owned()
            .map_err(|_| ChatError::Busy {
                code: "imports_busy",
                message: "other imports are being read; try again in a few seconds".into(),
                retry_after_secs: IMPORT_RETRY_SECS,
            })?;
        let now = confab_core::now_ms();
        let read = tokio::task::spawn_blocking(move || transfer::read_import(&bytes, now))
            .await
            .map_err(|e| ChatError::Internal(format!("the import's reader failed: {e}")))?;
        let imported = read.map_err(|e| match e {
            ImportError::TooLarge(message) => ChatError::Invalid {
                code: "import_too_large",
                message: format!("the file was not imported; nothing changed: {message}"),
                details: Vec::new(),
            },
            ImportError::Invalid(details) => ChatError::Invalid {
                code: "invalid_import",
                message: format!(
                    "the file was not imported; nothing changed. First problem: {}",
                    details.first().map_or("", String::as_str)
                ),
                details,
            },
        })?;
        self.store.import(principal.user_id, &imported).await?;
        Ok(imported.iter().map(|c| c.conversation.id).collect())
    }
}
