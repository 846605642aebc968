//! The chat vocabulary and its rules: conversations, messages in a tree, statuses (and how an
//! answer ended: `answers`), limits on what users may store and the one check of every field
//! (`fields`), which turns of a conversation fit a model's context window and titles
//! (`history`), search words and snippets (`search`). No I/O here: `tests/it/purity.rs`
//! checks that no module of it names axum, sqlx, reqwest or tokio.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

mod answers;
mod fields;
mod history;
mod search;

pub use answers::*;
pub use fields::*;
pub use history::*;
pub use search::*;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    User,
    Assistant,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Author::User),
            "assistant" => Some(Author::Assistant),
            _ => None,
        }
    }
}

/// Where a message stands. A user's message is `complete` when stored; an answer is
/// `streaming` from its first moment and ends in one of the other four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Streaming,
    Complete,
    /// The user pressed stop.
    Stopped,
    /// The process ended while it streamed (found so at the next start).
    Interrupted,
    /// The model failed; `error` says why.
    Error,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Streaming => "streaming",
            MessageStatus::Complete => "complete",
            MessageStatus::Stopped => "stopped",
            MessageStatus::Interrupted => "interrupted",
            MessageStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "streaming" => MessageStatus::Streaming,
            "complete" => MessageStatus::Complete,
            "stopped" => MessageStatus::Stopped,
            "interrupted" => MessageStatus::Interrupted,
            "error" => MessageStatus::Error,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != MessageStatus::Streaming
    }
}

/// Sampling settings of a conversation or preset; unset ones take the model's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Params {
    /// Every problem with the values, for one error listing them all.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            problems.push(format!(
                "params.temperature must be between 0 and 2, got {t}"
            ));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            problems.push(format!(
                "params.top_p must be above 0 and at most 1, got {p}"
            ));
        }
        if self.max_tokens == Some(0) {
            problems.push("params.max_tokens must be at least 1".into());
        }
        problems
    }
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Params,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub pinned: bool,
    pub archived: bool,
    /// The last message of the branch shown; new messages continue from it.
    pub active_leaf_id: Option<Uuid>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Last activity: a message, or a change to the conversation.
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub role: Author,
    pub content: String,
    pub status: MessageStatus,
    /// The model that answered (assistant messages).
    pub model: Option<String>,
    /// Why the answer failed (status `error`).
    pub error: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// Files attached to the message (user messages), in the order they were attached.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// The most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 8;

/// A file attached to a message: what chat keeps of it when it is attached (the file itself
/// stays the files service's; its bytes are read through the `FileAccess` port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ChatAttachment)]
pub struct Attachment {
    pub file_id: Uuid,
    /// The file's sanitised name.
    pub name: String,
    /// The MIME type detected from its content.
    pub content_type: String,
    /// `image`, `pdf`, `document`, `text`, `markdown`, `audio`, `video` or `archive`.
    pub kind: String,
    /// Bytes.
    pub size: u64,
}

/// A named system prompt with parameters.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Preset {
    pub id: Uuid,
    pub name: String,
    pub system_prompt: Option<String>,
    pub params: Params,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A read-only link to a snapshot of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ShareLink {
    pub token: String,
    pub conversation_id: Uuid,
    /// The page anyone with the link can read: `/s/{token}`.
    pub url: String,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    pub revoked: bool,
}

/// What a share link shows: the title and the active branch when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedConversation {
    pub title: String,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub shared_at: i64,
    pub messages: Vec<SharedMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedMessage {
    pub role: Author,
    pub content: String,
    /// The message's attachments; images are shown through
    /// `/api/v1/shared/{token}/files/{file_id}/{thumbnail|preview}`.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// The reactions to a message: each emoji with its count and whether the reader gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    pub mine: bool,
}

/// What a bulk operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    Archive,
    Unarchive,
    Delete,
}

/// A reaction must be short and without spaces (an emoji, or a short code like `+1`).
pub fn check_emoji(emoji: &str) -> Result<(), String> {
    let n = emoji.chars().count();
    if n == 0 || n > 16 || emoji.chars().any(char::is_whitespace) {
        return Err("a reaction is 1 to 16 characters without spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_list_every_problem() {
        let params = Params {
            temperature: Some(3.0),
            top_p: Some(0.0),
            max_tokens: Some(0),
            seed: None,
        };
        assert_eq!(params.problems().len(), 3);
        assert!(Params::default().problems().is_empty());
    }
}
