//! What the chat service needs from outside: storage ([`ChatStore`], the sum of its roles
//! [`ConversationStore`], [`MessageStore`], [`SearchStore`], [`ShareStore`],
//! [`ReactionStore`], [`PresetStore`] and [`TransferStore`]; adapter
//! [`crate::store::SqlChatStore`]), a way to reach models ([`ModelClient`], the platform's
//! one model-calling port from `confab-model-client`: the inference service in the same
//! process, or its HTTP adapter in split mode), and whether an account may still be served
//! ([`Accounts`], an adapter over the auth service in the composition root).

use async_trait::async_trait;
use confab_model_client::types::{ChatMessage, ChatRequest, ImageInput, Role, SamplingParams};
pub use confab_model_client::{ModelClient, ModelError};
use confab_store::StoreError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{
    Author, Conversation, Message, MessageStatus, Params, Preset, Reaction, SearchHit, ShareLink,
    SharedConversation, Turn,
};
pub use crate::domain::{BulkAction, ConversationChanges};

pub type StoreResult<T> = Result<T, StoreError>;

/// A new conversation.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Params,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub now: i64,
}

/// Which conversations to list.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub folder: Option<String>,
    pub tag: Option<String>,
    /// `None`: not archived only.
    pub archived: Option<bool>,
    pub pinned: Option<bool>,
}

/// Where a page of conversations ends: last activity and id of the last one listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationPosition {
    pub updated_at: i64,
    pub id: Uuid,
}

/// A new message.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub role: Author,
    pub content: String,
    pub status: MessageStatus,
    pub model: Option<String>,
    /// Files attached (user messages), stored with the message in one transaction.
    pub attachments: Vec<crate::domain::Attachment>,
    pub now: i64,
}

/// How an answer ended.
#[derive(Debug, Clone)]
pub struct Ending {
    pub status: MessageStatus,
    pub content: String,
    pub error: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub now: i64,
}

/// A message's place among its siblings (the messages with the same parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Branches {
    /// The siblings' ids, oldest first (this message included).
    pub sibling_ids: Vec<Uuid>,
    /// This message's position in `sibling_ids`, from 0.
    pub index: usize,
}

/// Conversations: one user's, each call naming its owner (another user's ids are `NotFound`
/// or change nothing), and the purge of everything a deleted user had.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn create_conversation(&self, new: NewConversation) -> StoreResult<Conversation>;
    /// A conversation of `user_id`; `NotFound` for another user's.
    async fn conversation(&self, user_id: Uuid, id: Uuid) -> StoreResult<Conversation>;
    /// A page of `user_id`'s conversations by last activity, newest first, after `after`.
    async fn list_conversations(
        &self,
        user_id: Uuid,
        filter: &ConversationFilter,
        after: Option<ConversationPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Conversation>>;
    async fn update_conversation(
        &self,
        user_id: Uuid,
        id: Uuid,
        changes: ConversationChanges,
        now: i64,
    ) -> StoreResult<Conversation>;
    /// Deletes a conversation and its messages.
    async fn delete_conversation(&self, user_id: Uuid, id: Uuid) -> StoreResult<()>;
    /// Sets the title of one of `user_id`'s conversations only if it is still `expected` (an
    /// automatic title never overwrites one the user chose meanwhile). Returns whether it did.
    async fn retitle(
        &self,
        user_id: Uuid,
        id: Uuid,
        expected: &str,
        title: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Archives, unarchives or deletes those of `ids` that are `user_id`'s; returns how many.
    async fn bulk(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        action: BulkAction,
        now: i64,
    ) -> StoreResult<u64>;
    /// Deletes everything of one user's (conversations, messages, tags, shares, reactions,
    /// presets) in one transaction; returns how many conversations went. Idempotent.
    async fn purge_user(&self, user_id: Uuid) -> StoreResult<u64>;
}

/// Messages, a tree per conversation: storing them, reading one, a branch or all of them,
/// and an answer's checkpoints and end. Every method but [`MessageStore::interrupt_streaming`]
/// and [`MessageStore::interrupt_stale`] names the owner; those two run over every user's
/// answers that no process streams any more (and return each with its owner).
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores messages of one conversation in order, in one transaction, makes the last the
    /// conversation's active leaf and bumps its activity. The conversation must be
    /// `user_id`'s, and each `parent_id` must be in it (an earlier message of the same call
    /// counts); otherwise `NotFound` and nothing is stored.
    async fn add_messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>>;
    /// [`ChatStore::add_messages`] with one message.
    async fn add_message(&self, user_id: Uuid, message: NewMessage) -> StoreResult<Message> {
        self.add_messages(user_id, message.conversation_id, vec![message])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }
    /// A message of one of `user_id`'s conversations.
    async fn message(&self, user_id: Uuid, conversation_id: Uuid, id: Uuid)
    -> StoreResult<Message>;
    /// The messages from the root to `leaf`, root first; `NotFound` unless `leaf` is in one
    /// of `user_id`'s conversations.
    async fn lineage(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        leaf: Uuid,
    ) -> StoreResult<Vec<Message>>;
    /// The path from the root to `leaf`, root first, each with its branches; `NotFound`
    /// unless `leaf` is in one of `user_id`'s conversations.
    async fn path(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        leaf: Uuid,
    ) -> StoreResult<Vec<(Message, Branches)>>;
    /// The newest leaf under `id` (following the newest child at each step); `NotFound`
    /// unless `id` is in one of `user_id`'s conversations.
    async fn newest_leaf(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Uuid>;
    /// Saves a streaming answer's text so far (nothing for an answer that is not streaming or
    /// not `user_id`'s).
    async fn checkpoint(&self, user_id: Uuid, id: Uuid, content: &str, now: i64)
    -> StoreResult<()>;
    /// Ends a streaming answer with how it ended; returns the saved message. `NotFound`
    /// unless the answer is in one of `user_id`'s conversations.
    async fn finish(&self, user_id: Uuid, id: Uuid, ending: Ending) -> StoreResult<Message>;
    /// Marks every answer still `streaming` as `interrupted` (at start: no process streams
    /// them any more). Returns how many.
    async fn interrupt_streaming(&self, now: i64) -> StoreResult<u64>;
    /// Marks `interrupted` every answer still `streaming` that was last checkpointed before
    /// `before` (the replica generating it died: a live answer is checkpointed well within its
    /// lease); returns each with its owner's id.
    async fn interrupt_stale(&self, before: i64, now: i64) -> StoreResult<Vec<(Uuid, Message)>>;
    /// Every message of one of `user_id`'s conversations (all branches), oldest first;
    /// nothing for another user's.
    async fn all_messages(&self, user_id: Uuid, conversation_id: Uuid)
    -> StoreResult<Vec<Message>>;
    /// The files attached in these conversations of `user_id`'s and in no other of theirs:
    /// what deleting the conversations deletes.
    async fn files_only_in(
        &self,
        user_id: Uuid,
        conversation_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>>;
}

/// Full-text search over one user's titles and finished messages.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Full-text search over `user_id`'s conversation titles and finished messages: title
    /// matches first, then messages, each ranked by relevance; `words` are plain words (all
    /// must match; the last, from 3 letters, may be a prefix).
    async fn search(
        &self,
        user_id: Uuid,
        words: &[String],
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>>;
}

/// Share links. [`ShareStore::shared`] alone takes no owner: the token is the capability, and
/// it answers with the owner so the service can check that account.
#[async_trait]
pub trait ShareStore: Send + Sync {
    async fn create_share(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        token: &str,
        snapshot: &SharedConversation,
        now: i64,
    ) -> StoreResult<ShareLink>;
    async fn shares(&self, user_id: Uuid, conversation_id: Uuid) -> StoreResult<Vec<ShareLink>>;
    /// Revokes one of `user_id`'s links.
    async fn revoke_share(&self, user_id: Uuid, token: &str, now: i64) -> StoreResult<()>;
    /// The snapshot behind a link that is not revoked, with the id of the user who shared it.
    async fn shared(&self, token: &str) -> StoreResult<(Uuid, SharedConversation)>;
}

/// Reactions to messages of one user's conversations.
#[async_trait]
pub trait ReactionStore: Send + Sync {
    /// Adds a reaction (idempotent); the message must be in one of `user_id`'s conversations.
    async fn react(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
        now: i64,
    ) -> StoreResult<()>;
    async fn unreact(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
    ) -> StoreResult<()>;
    /// Reactions to these messages, as `user_id` sees them.
    async fn reactions(
        &self,
        user_id: Uuid,
        message_ids: &[Uuid],
    ) -> StoreResult<std::collections::HashMap<Uuid, Vec<Reaction>>>;
}

/// A user's presets.
#[async_trait]
pub trait PresetStore: Send + Sync {
    async fn create_preset(&self, user_id: Uuid, preset: Preset) -> StoreResult<Preset>;
    async fn presets(&self, user_id: Uuid) -> StoreResult<Vec<Preset>>;
    async fn preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<Preset>;
    async fn update_preset(&self, user_id: Uuid, preset: Preset) -> StoreResult<Preset>;
    async fn delete_preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<()>;
}

/// Imports: many conversations of one user, all or none.
#[async_trait]
pub trait TransferStore: Send + Sync {
    /// Stores imported conversations, all or none (one transaction).
    async fn import(
        &self,
        user_id: Uuid,
        conversations: &[crate::transfer::Imported],
    ) -> StoreResult<()>;
}

/// The whole chat store: every role, as the service holds it (one `Arc<dyn ChatStore>`, one
/// adapter, [`crate::store::SqlChatStore`]). Anything implementing every role is one.
pub trait ChatStore:
    ConversationStore
    + MessageStore
    + SearchStore
    + ShareStore
    + ReactionStore
    + PresetStore
    + TransferStore
{
}

impl<T> ChatStore for T where
    T: ConversationStore
        + MessageStore
        + SearchStore
        + ShareStore
        + ReactionStore
        + PresetStore
        + TransferStore
{
}

/// A request for an answer.
#[derive(Debug, Clone)]
pub struct Ask {
    pub model: String,
    pub system: Option<String>,
    pub turns: Vec<Turn>,
    /// The images each turn shows, one list per turn of `turns` (missing lists are empty).
    pub images: Vec<Vec<ImageInput>>,
    pub params: SamplingParams,
}

impl Ask {
    /// The streamed chat request this is.
    pub fn into_request(self) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.turns.len() + 1);
        if let Some(system) = self.system {
            messages.push(ChatMessage::new(Role::System, system));
        }
        let mut images = self.images.into_iter();
        messages.extend(self.turns.into_iter().map(|t| {
            let role = match t.role {
                crate::domain::Author::User => Role::User,
                crate::domain::Author::Assistant => Role::Assistant,
            };
            ChatMessage::new(role, t.content).with_images(images.next().unwrap_or_default())
        }));
        ChatRequest {
            model: self.model,
            messages,
            params: self.params,
            response_format: None,
            stream: true,
        }
    }
}

/// Why the state of an account could not be learnt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountsError {
    #[error("accounts are unavailable: {0}")]
    Unavailable(String),
}

/// What the chat service needs to know of accounts, which belong to the auth service (chat
/// never reads auth's tables).
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Whether `user_id` names an account that is active: not disabled (locked by an admin),
    /// waiting for approval, or deleted. What such an account shared is not served.
    async fn is_active(&self, user_id: Uuid) -> Result<bool, AccountsError>;
}

/// What a model is given for an attached file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileInput {
    /// An image for models that see: JPEG, PNG, WebP or GIF bytes (the image's 1600 px
    /// preview when it has one).
    Image {
        media_type: String,
        data: bytes::Bytes,
    },
    /// Text: a text or markdown file as it is, a PDF's extracted text; cut at the byte limit
    /// asked for (on a character boundary), `truncated` saying whether it was.
    Text { text: String, truncated: bool },
    /// Nothing a model can read (audio, video, office documents, a PDF without text).
    Unreadable,
}

/// The size of an image attachment shown on a share page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSize {
    /// At most 320 px.
    Thumbnail,
    /// At most 1600 px.
    Preview,
}

impl ImageSize {
    /// Its name in paths: `thumbnail` or `preview`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSize::Thumbnail => "thumbnail",
            ImageSize::Preview => "preview",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [ImageSize::Thumbnail, ImageSize::Preview]
            .into_iter()
            .find(|size| size.as_str() == name)
    }
}

/// Why a file could not be attached or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileAccessError {
    /// No such file of this user's (another user's file is this too).
    #[error("no file {0} of yours")]
    NotFound(Uuid),
    /// Still being scanned for viruses.
    #[error("file {0} is still being scanned")]
    NotReady(Uuid),
    /// Infected: quarantined, never given to anyone.
    #[error("file {0} is quarantined")]
    Quarantined(Uuid),
    /// This deployment has no files service.
    #[error("this deployment has no files service")]
    Disabled,
    /// The files service cannot be reached now.
    #[error("files are unavailable: {0}")]
    Unavailable(String),
}

/// What the chat service needs of the files service (chat never reads its tables or blobs):
/// adapters over `FilesService` in the same process and over its internal HTTP routes
/// (`/internal/v1/files/...`) in split mode, both in the composition root.
#[async_trait]
pub trait FileAccess: Send + Sync {
    /// Describes `user_id`'s files `ids`, in that order, checking each may be attached:
    /// `NotFound` for one that is not theirs, `NotReady` while it is being scanned,
    /// `Quarantined` if infected. The first problem found is the answer.
    async fn describe(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<crate::domain::Attachment>, FileAccessError>;
    /// What a model is given for one of `user_id`'s files, text cut at `max_text_bytes`.
    async fn model_input(
        &self,
        user_id: Uuid,
        id: Uuid,
        max_text_bytes: usize,
    ) -> Result<FileInput, FileAccessError>;
    /// An image file's thumbnail or preview: its content type and bytes (`NotFound` for a
    /// file that is not an image or has no variants yet).
    async fn image(
        &self,
        user_id: Uuid,
        id: Uuid,
        size: ImageSize,
    ) -> Result<(String, bytes::Bytes), FileAccessError>;
    /// Deletes `user_id`'s files `ids` (files already gone are skipped): the attachments of a
    /// deleted conversation.
    async fn delete(&self, user_id: Uuid, ids: &[Uuid]) -> Result<(), FileAccessError>;
}

/// [`FileAccess`] for a deployment without the files service: nothing can be attached.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

#[async_trait]
impl FileAccess for NoFiles {
    async fn describe(
        &self,
        _user_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<crate::domain::Attachment>, FileAccessError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Err(FileAccessError::Disabled)
    }
    async fn model_input(
        &self,
        _user_id: Uuid,
        _id: Uuid,
        _max_text_bytes: usize,
    ) -> Result<FileInput, FileAccessError> {
        Err(FileAccessError::Disabled)
    }
    async fn image(
        &self,
        _user_id: Uuid,
        _id: Uuid,
        _size: ImageSize,
    ) -> Result<(String, bytes::Bytes), FileAccessError> {
        Err(FileAccessError::Disabled)
    }
    async fn delete(&self, _user_id: Uuid, ids: &[Uuid]) -> Result<(), FileAccessError> {
        if ids.is_empty() {
            return Ok(());
        }
        Err(FileAccessError::Disabled)
    }
}
