//! The chat service's live events, one struct each, published on the owner's topic
//! (`user.<id>`) and relayed by `/api/v1/ws` to the user's tabs as `{"type", "data", "at"}`.
//! Each knows its kind and topic ([`TypedEvent`]); the web UI reads exactly these fields, so
//! their JSON is pinned by `tests/it/events.rs`.
//!
//! The owner (`user_id`) names the topic and is not part of the JSON (the tabs know who they
//! are); an event read back with [`confab_bus::Envelope::decode`] has it nil — take it from
//! the envelope's topic when needed.

use confab_bus::{TypedEvent, user_topic};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Author, BulkAction, Conversation, Message, Reaction};

/// Implements [`TypedEvent`] for an event published on its `user_id`'s topic.
macro_rules! user_event {
    ($event:ty, $kind:literal) => {
        impl TypedEvent for $event {
            const KIND: &'static str = $kind;
            fn topic(&self) -> String {
                user_topic(self.user_id)
            }
        }
    };
}

/// A message was stored: the user's (as sent) or an answer (still `streaming`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCreated {
    #[serde(skip)]
    pub user_id: Uuid,
    pub message: Message,
}
user_event!(MessageCreated, "message.created");

/// A piece of an answer being generated, from character `offset` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    #[serde(skip)]
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// Characters (Unicode scalar values) of the answer before this piece.
    pub offset: usize,
    pub content: String,
}
user_event!(MessageDelta, "message.delta");

/// An answer ended (any final status); the message as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCompleted {
    #[serde(skip)]
    pub user_id: Uuid,
    pub message: Message,
}
user_event!(MessageCompleted, "message.completed");

/// Someone (today: the assistant) started or stopped writing in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    #[serde(skip)]
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub who: Author,
    pub active: bool,
}
user_event!(Typing, "typing");

/// A conversation's fields, title or activity changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationUpdated {
    #[serde(skip)]
    pub user_id: Uuid,
    pub conversation: Conversation,
}
user_event!(ConversationUpdated, "conversation.updated");

/// A conversation was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDeleted {
    #[serde(skip)]
    pub user_id: Uuid,
    pub conversation_id: Uuid,
}
user_event!(ConversationDeleted, "conversation.deleted");

/// Many conversations changed at once: a bulk action on `ids`, or (both absent, `{}`) all of
/// them, when the user's data was purged. Tabs reload their list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationsChanged {
    #[serde(skip)]
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<BulkAction>,
}
user_event!(ConversationsChanged, "conversations.changed");

/// A message's reactions changed; all of them as the user sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionChanged {
    #[serde(skip)]
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub reactions: Vec<Reaction>,
}
user_event!(ReactionChanged, "reaction");

/// How many of the user's tabs are connected in this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    #[serde(skip)]
    pub user_id: Uuid,
    pub online: bool,
    pub tabs: usize,
}
user_event!(Presence, "presence");
