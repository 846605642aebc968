//! The chat service: conversations and their message trees, and answers that survive the
//! client. Sending a message stores it before any model is called, creates the answer as
//! `streaming`, and generates it on a tracked task that checkpoints the text while it grows
//! and records how it ended, whoever is still listening.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Envelope, EventBus, JobQueue, NewJob};
use confab_core::auth::{Credential, Principal, Role, Scope};
use confab_model_client::types::{ChatEvent, SamplingParams};
use confab_store::StoreError;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::domain::{
    self, Author, Conversation, Message, MessageStatus, Params, Preset, Turn, fit_history,
};
use crate::live::{LiveAnswer, LiveAnswers, after_chars};
use crate::ports::{
    Ask, Branches, ChatStore, ConversationChanges, ConversationFilter, ConversationPosition,
    Ending, ModelClient, ModelError, NewConversation, NewMessage,
};

/// How the service behaves; from `[chat]` in the configuration.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// Context window assumed for models that do not report one (remote models).
    pub default_context_tokens: usize,
    /// Tokens kept free for the answer when the history is fitted.
    pub answer_reserve_tokens: usize,
    /// How often a streaming answer's text is saved.
    pub checkpoint_every: Duration,
    /// Ask the model for a title after the first exchange.
    pub auto_titles: bool,
    /// The largest import accepted, in bytes.
    pub import_limit_bytes: usize,
    /// Imports read at once in this process; more are refused with 503 and `Retry-After`.
    pub import_concurrency: usize,
    /// Real-time connections one user may hold open in this process.
    pub sockets_per_user: usize,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            default_context_tokens: 8192,
            answer_reserve_tokens: 512,
            checkpoint_every: Duration::from_millis(500),
            auto_titles: true,
            import_limit_bytes: 32 * 1024 * 1024,
            import_concurrency: 2,
            sockets_per_user: 16,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    NotFound(&'static str),
    /// Bad input: a stable code, a message, and every problem found.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Vec<String>,
    },
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Neither the message, the conversation nor the settings name a model, and none exists.
    #[error("no model is available: pull one (confab models pull …) or configure a provider")]
    NoModel,
    #[error(transparent)]
    Store(StoreError),
    /// The service is at capacity for this kind of work; retry after this many seconds.
    #[error("{message}")]
    Busy {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// Too many of something the user holds at once (connections).
    #[error("{message}")]
    TooMany { code: &'static str, message: String },
    /// A failure of this process (never shown to users in detail).
    #[error("{0}")]
    Internal(String),
}

/// What an answer that failed says about it: the error's safe message (stored with the
/// message and shown to the user); the internal detail — upstream bodies, provider URLs,
/// file paths — goes to the log only.
fn answer_failure(message_id: Uuid, e: &ModelError) -> String {
    tracing::warn!(message = %message_id, code = e.code(), detail = e.internal().unwrap_or_default(), error = %e, "answer failed");
    e.public_message()
}

/// How long a refused import is asked to wait before it tries again.
const IMPORT_RETRY_SECS: u64 = 5;

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        ChatError::Store(e)
    }
}

impl ChatError {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ChatError::Invalid {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    fn problems(details: Vec<String>) -> Self {
        ChatError::Invalid {
            code: "invalid_body",
            message: details.join("; "),
            details,
        }
    }
}

/// `NotFound` from the store as the thing that was looked for.
fn not_found(what: &'static str) -> impl Fn(StoreError) -> ChatError {
    move |e| match e {
        StoreError::NotFound => ChatError::NotFound(what),
        other => ChatError::Store(other),
    }
}

/// A new conversation as a user asks for it.
#[derive(Debug, Clone, Default)]
pub struct ConversationInput {
    pub title: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Option<Params>,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    /// Start from a preset's system prompt and parameters (explicit fields win).
    pub preset_id: Option<Uuid>,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct SendInput {
    pub content: String,
    /// Continue from this message; `None`: from the conversation's active leaf (or from the
    /// top with `from_root`). Editing a message is sending new content with the edited
    /// message's parent.
    pub parent_id: Option<Uuid>,
    /// With no `parent_id`: a new first message (a sibling of the conversation's first
    /// message), instead of continuing from the active leaf.
    pub from_root: bool,
    /// Ask this model instead of the conversation's.
    pub model: Option<String>,
}

/// What sending a message started.
#[derive(Debug, Clone)]
pub struct Sent {
    pub user_message: Message,
    pub assistant_message: Message,
}

/// What a reader of an answer receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Follow {
    /// Text from character `offset` on.
    Delta { offset: usize, content: String },
    /// The answer ended; the message as saved.
    Done(Box<Message>),
}

pub struct ChatService {
    store: Arc<dyn ChatStore>,
    models: Arc<dyn ModelClient>,
    /// Where what happens is told to the user's open tabs (and other replicas).
    events: Arc<dyn EventBus>,
    /// Open real-time connections per user in this process.
    presence: parking_lot::Mutex<std::collections::HashMap<Uuid, usize>>,
    live: LiveAnswers,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    settings: ChatSettings,
    /// Where titles are queued as `chat.title` jobs; `None`: they run on `tasks`.
    jobs: Option<Arc<dyn JobQueue>>,
    /// Whether accounts are active (share links of inactive ones are not served).
    accounts: Arc<dyn crate::ports::Accounts>,
    /// Permits for imports being read (`settings.import_concurrency`).
    imports: Arc<tokio::sync::Semaphore>,
}

/// One open real-time connection of a user (see [`ChatService::reserve_socket`]).
pub struct SocketSlot {
    service: Arc<ChatService>,
    user: Uuid,
}

impl std::fmt::Debug for SocketSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSlot")
            .field("user", &self.user)
            .finish()
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut presence = self.service.presence.lock();
        if let Some(count) = presence.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                presence.remove(&self.user);
            }
        }
    }
}

/// The job kind that names a conversation after its first exchange.
pub const TITLE_JOB: &str = "chat.title";

/// The payload of a [`TITLE_JOB`]: for whom (the title is generated on their behalf and
/// counts as their usage) and which conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TitleJob {
    pub user_id: Uuid,
    pub role: Role,
    /// The user's API key, when they asked through one (its limits and usage apply).
    pub key_id: Option<Uuid>,
    pub conversation_id: Uuid,
}

impl TitleJob {
    fn principal(&self) -> Principal {
        Principal {
            user_id: self.user_id,
            role: self.role,
            credential: Credential::Service {
                key_id: self.key_id,
                scopes: vec![Scope::Chat, Scope::Inference],
            },
        }
    }
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService")
            .field("settings", &self.settings)
            .field("live", &self.live.len())
            .finish_non_exhaustive()
    }
}

/// An optional text field: trimmed, and empty means unset.
fn optional(value: Option<String>) -> Option<String> {
    domain::optional_text(value)
}

impl ChatService {
    #[expect(
        clippy::too_many_arguments,
        reason = "one port per argument until the services get one way of construction (issue 13 §4)"
    )]
    pub fn new(
        store: Arc<dyn ChatStore>,
        models: Arc<dyn ModelClient>,
        events: Arc<dyn EventBus>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
        settings: ChatSettings,
        jobs: Option<Arc<dyn JobQueue>>,
        accounts: Arc<dyn crate::ports::Accounts>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            models,
            events,
            presence: parking_lot::Mutex::new(std::collections::HashMap::new()),
            live: LiveAnswers::default(),
            tasks,
            shutdown,
            accounts,
            imports: Arc::new(tokio::sync::Semaphore::new(
                settings.import_concurrency.max(1),
            )),
            settings,
            jobs,
        })
    }

    /// Deletes everything of one user's (when their account is deleted); idempotent.
    /// Returns how many conversations went.
    pub async fn purge_user(&self, user_id: Uuid) -> Result<u64, ChatError> {
        let purged = self.store.purge_user(user_id).await?;
        self.publish(user_id, "conversations.changed", serde_json::json!({}))
            .await;
        Ok(purged)
    }

    /// Runs a [`TITLE_JOB`]: the title, or `None` when the conversation is gone, was renamed
    /// by its user, or has nothing to name. A model failure is an error (the job retries).
    pub async fn run_title_job(&self, job: &TitleJob) -> Result<Option<String>, String> {
        self.auto_title(&job.principal(), job.conversation_id).await
    }

    /// Tells the user's tabs (and other replicas) what happened; a bus failure is logged, never
    /// fatal to the operation that caused it.
    async fn publish(&self, user: Uuid, kind: &str, data: serde_json::Value) {
        let event = Envelope::new(confab_bus::user_topic(user), kind, data);
        if let Err(e) = self.events.publish(event).await {
            tracing::warn!(error = %e, kind, "event not published");
        }
    }

    async fn publish_conversation(&self, user: Uuid, id: Uuid) {
        if let Ok(conversation) = self.store.conversation(user, id).await {
            self.publish(
                user,
                "conversation.updated",
                serde_json::json!({"conversation": conversation}),
            )
            .await;
        }
    }

    /// The event bus, for the real-time endpoint.
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// Reserves one of `user`'s real-time connections in this process, before the socket is
    /// opened: at most `sockets_per_user` at once (each holds a subscription and a task). The
    /// slot is given back when the returned value is dropped, however the connection ends.
    pub fn reserve_socket(self: &Arc<Self>, user: Uuid) -> Result<SocketSlot, ChatError> {
        let mut presence = self.presence.lock();
        let count = presence.entry(user).or_insert(0);
        if *count >= self.settings.sockets_per_user {
            return Err(ChatError::TooMany {
                code: "too_many_sockets",
                message: format!(
                    "at most {} real-time connections per user are open at once; close a tab \
                     or another client",
                    self.settings.sockets_per_user
                ),
            });
        }
        *count += 1;
        Ok(SocketSlot {
            service: self.clone(),
            user,
        })
    }

    /// Tells `user`'s tabs how many of them are connected now.
    pub async fn announce_presence(&self, user: Uuid) {
        let tabs = self.presence.lock().get(&user).copied().unwrap_or(0);
        self.publish(
            user,
            "presence",
            serde_json::json!({"online": tabs > 0, "tabs": tabs}),
        )
        .await;
    }

    /// At start: answers left `streaming` by a process that died are `interrupted`; their
    /// last checkpoint is their text.
    pub async fn recover(&self) -> Result<u64, ChatError> {
        Ok(self
            .store
            .interrupt_streaming(confab_core::now_ms())
            .await?)
    }

    async fn check_model(&self, model: Option<&str>) -> Result<(), ChatError> {
        match model {
            Some(m) if !self.models.knows_model(m).await => Err(ChatError::invalid(
                "unknown_model",
                format!("no model named `{m}`; GET /api/v1/models lists them"),
            )),
            _ => Ok(()),
        }
    }

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
        let title = input.title.map(|t| t.trim().to_owned()).unwrap_or_default();
        let model = optional(input.model);
        let system_prompt = optional(input.system_prompt)
            .or_else(|| preset.as_ref().and_then(|p| p.system_prompt.clone()));
        let params = input
            .params
            .or_else(|| preset.as_ref().map(|p| p.params.clone()))
            .unwrap_or_default();
        let folder = optional(input.folder);
        let tags = domain::Fields {
            title: Some(&title),
            model: model.as_deref(),
            system_prompt: system_prompt.as_deref(),
            folder: folder.as_deref(),
            params: Some(&params),
            tags: Some(&input.tags),
            ..domain::Fields::default()
        }
        .check()
        .map_err(ChatError::problems)?
        .unwrap_or_default();
        self.check_model(model.as_deref()).await?;
        Ok(self
            .store
            .create_conversation(NewConversation {
                id: confab_core::id::new_id(),
                user_id: user,
                title,
                model,
                system_prompt,
                params,
                folder,
                tags,
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
        mut changes: ConversationChanges,
    ) -> Result<Conversation, ChatError> {
        let user = principal.user_id;
        if let Some(title) = &mut changes.title {
            *title = title.trim().to_owned();
        }
        for value in [
            &mut changes.model,
            &mut changes.system_prompt,
            &mut changes.folder,
        ]
        .into_iter()
        .flatten()
        {
            *value = optional(value.take());
        }
        let tags = domain::Fields {
            title: changes.title.as_deref(),
            model: changes.model.clone().flatten().as_deref(),
            system_prompt: changes.system_prompt.clone().flatten().as_deref(),
            folder: changes.folder.clone().flatten().as_deref(),
            params: changes.params.as_ref(),
            tags: changes.tags.as_deref(),
            ..domain::Fields::default()
        }
        .check()
        .map_err(ChatError::problems)?;
        if tags.is_some() {
            changes.tags = tags;
        }
        self.check_model(changes.model.clone().flatten().as_deref())
            .await?;
        // The conversation must be the user's before anything else is looked at.
        self.conversation(principal, id).await?;
        if let Some(message) = changes.active_leaf_id {
            self.store
                .message(user, id, message)
                .await
                .map_err(not_found("no such message in this conversation"))?;
            changes.active_leaf_id = Some(self.store.newest_leaf(id, message).await?);
        }
        let updated = self
            .store
            .update_conversation(user, id, changes, confab_core::now_ms())
            .await
            .map_err(not_found("no such conversation"))?;
        self.publish(
            user,
            "conversation.updated",
            serde_json::json!({"conversation": updated}),
        )
        .await;
        Ok(updated)
    }

    pub async fn delete(&self, principal: &Principal, id: Uuid) -> Result<(), ChatError> {
        // Answers still generating in it stop first, so nothing writes to deleted rows.
        let path = self.active_path(principal, id).await?;
        for (message, _) in &path {
            if let Some(live) = self.live.get(message.id) {
                live.request_stop();
            }
        }
        self.store
            .delete_conversation(principal.user_id, id)
            .await
            .map_err(not_found("no such conversation"))?;
        self.publish(
            principal.user_id,
            "conversation.deleted",
            serde_json::json!({"conversation_id": id}),
        )
        .await;
        Ok(())
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
        let mut path = self.store.path(id, leaf).await?;
        // A live answer's row lags its text by up to one checkpoint: show the live text.
        for (message, _) in &mut path {
            if let Some(live) = self.live.get(message.id) {
                message.content = live.snapshot().content;
            }
        }
        Ok(path)
    }

    /// Stores the user's message, creates the answer and starts generating it.
    pub async fn send(
        self: &Arc<Self>,
        principal: &Principal,
        conversation_id: Uuid,
        input: SendInput,
    ) -> Result<Sent, ChatError> {
        let content = input.content.trim().to_owned();
        if content.is_empty() {
            return Err(ChatError::invalid(
                "empty_message",
                "the message has no content",
            ));
        }
        if let Some(p) = domain::too_long("content", &content, domain::MAX_MESSAGE_CHARS) {
            return Err(ChatError::invalid("message_too_long", p));
        }
        let model_override = optional(input.model);
        self.check_model(model_override.as_deref()).await?;
        let conversation = self.conversation(principal, conversation_id).await?;
        let parent_id = match input.parent_id {
            Some(parent) => {
                let parent = self
                    .store
                    .message(principal.user_id, conversation_id, parent)
                    .await
                    .map_err(not_found("no such message in this conversation"))?;
                Some(parent.id)
            }
            None if input.from_root => None,
            None => conversation.active_leaf_id,
        };
        let model = self.pick_model(&conversation, model_override).await?;
        // The history is the path to the parent, then this message.
        let mut history = match parent_id {
            Some(parent) => self.turns_to(conversation_id, parent).await?,
            None => Vec::new(),
        };
        history.push(Turn {
            role: Author::User,
            content: content.clone(),
        });
        let ask = self.ask(&conversation, history, model.clone()).await;
        let now = confab_core::now_ms();
        let question = NewMessage {
            id: confab_core::id::new_id(),
            conversation_id,
            parent_id,
            role: Author::User,
            content,
            status: MessageStatus::Complete,
            model: None,
            now,
        };
        let answer = NewMessage {
            id: confab_core::id::new_id(),
            conversation_id,
            parent_id: Some(question.id),
            role: Author::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(model),
            now,
        };
        // Both rows in one transaction, before any model call.
        let mut stored = self
            .store
            .add_messages(principal.user_id, conversation_id, vec![question, answer])
            .await
            .map_err(not_found("no such conversation"))?
            .into_iter();
        let (Some(user_message), Some(assistant_message)) = (stored.next(), stored.next()) else {
            return Err(ChatError::Store(confab_store::StoreError::NotFound));
        };
        if conversation.title.is_empty() {
            let title = domain::provisional_title(&user_message.content);
            self.store.retitle(conversation_id, "", &title, now).await?;
        }
        self.publish(
            principal.user_id,
            "message.created",
            serde_json::json!({"message": user_message}),
        )
        .await;
        self.launch(principal, &conversation, assistant_message.clone(), ask)
            .await;
        self.publish_conversation(principal.user_id, conversation_id)
            .await;
        Ok(Sent {
            user_message,
            assistant_message,
        })
    }

    /// A new answer to the user message that `message_id` answers (or to `message_id` itself
    /// when it is a user message): a sibling branch of the old answer.
    pub async fn regenerate(
        self: &Arc<Self>,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        model: Option<String>,
    ) -> Result<Message, ChatError> {
        let model_override = optional(model);
        self.check_model(model_override.as_deref()).await?;
        let conversation = self.conversation(principal, conversation_id).await?;
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        let question = match message.role {
            Author::User => message.id,
            Author::Assistant => message.parent_id.ok_or_else(|| {
                ChatError::invalid("nothing_to_answer", "this answer has no question above it")
            })?,
        };
        let model = self.pick_model(&conversation, model_override).await?;
        self.start_answer(principal, &conversation, question, model)
            .await
    }

    async fn pick_model(
        &self,
        conversation: &Conversation,
        requested: Option<String>,
    ) -> Result<String, ChatError> {
        match requested.or_else(|| conversation.model.clone()) {
            Some(model) => Ok(model),
            None => self.models.default_model().await.ok_or(ChatError::NoModel),
        }
    }

    /// The turns on the path from the root to `leaf`, empty messages left out.
    async fn turns_to(&self, conversation_id: Uuid, leaf: Uuid) -> Result<Vec<Turn>, ChatError> {
        Ok(self
            .store
            .lineage(conversation_id, leaf)
            .await?
            .into_iter()
            .filter(|m| !m.content.is_empty())
            .map(|m| Turn {
                role: m.role,
                content: m.content,
            })
            .collect())
    }

    /// What to ask `model`: the conversation's system prompt and parameters, and as much of
    /// `history` as fits its context window.
    async fn ask(&self, conversation: &Conversation, history: Vec<Turn>, model: String) -> Ask {
        let context = self
            .models
            .context_tokens(&model)
            .await
            .unwrap_or(self.settings.default_context_tokens);
        let reserve = conversation
            .params
            .max_tokens
            .map_or(self.settings.answer_reserve_tokens, |m| m as usize)
            .min(context / 2);
        let (system, turns) = fit_history(
            conversation.system_prompt.as_deref(),
            &history,
            context,
            reserve,
        );
        let defaults = SamplingParams::default();
        let params = &conversation.params;
        Ask {
            model,
            system,
            turns,
            params: SamplingParams {
                temperature: params.temperature.unwrap_or(0.7),
                top_p: params.top_p.unwrap_or(defaults.top_p),
                max_tokens: params.max_tokens,
                stop: Vec::new(),
                seed: params.seed,
            },
        }
    }

    /// Creates the `streaming` answer under `question` and starts generating it.
    async fn start_answer(
        self: &Arc<Self>,
        principal: &Principal,
        conversation: &Conversation,
        question: Uuid,
        model: String,
    ) -> Result<Message, ChatError> {
        let history = self.turns_to(conversation.id, question).await?;
        let ask = self.ask(conversation, history, model.clone()).await;
        let answer = self
            .store
            .add_message(
                principal.user_id,
                NewMessage {
                    id: confab_core::id::new_id(),
                    conversation_id: conversation.id,
                    parent_id: Some(question),
                    role: Author::Assistant,
                    content: String::new(),
                    status: MessageStatus::Streaming,
                    model: Some(model),
                    now: confab_core::now_ms(),
                },
            )
            .await
            .map_err(not_found("no such conversation"))?;
        self.launch(principal, conversation, answer.clone(), ask)
            .await;
        Ok(answer)
    }

    /// Announces a stored `streaming` answer and generates it on a tracked task.
    async fn launch(
        self: &Arc<Self>,
        principal: &Principal,
        conversation: &Conversation,
        answer: Message,
        ask: Ask,
    ) {
        self.publish(
            principal.user_id,
            "message.created",
            serde_json::json!({"message": answer}),
        )
        .await;
        let live = self.live.start(answer.id, &self.shutdown);
        let this = self.clone();
        let principal = principal.clone();
        let id = answer.id;
        // Only a conversation the user left untitled gets a title from the model.
        let first_exchange = conversation.active_leaf_id.is_none() && conversation.title.is_empty();
        let conversation_id = conversation.id;
        self.tasks.spawn(async move {
            let ended = this
                .generate(&principal, conversation_id, id, ask, &live)
                .await;
            if ended == MessageStatus::Complete && first_exchange && this.settings.auto_titles {
                this.queue_title(&principal, conversation_id).await;
            }
        });
    }

    /// Generates one answer to its end, checkpointing, and records how it ended.
    async fn generate(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        id: Uuid,
        ask: Ask,
        live: &LiveAnswer,
    ) -> MessageStatus {
        let user = principal.user_id;
        let typing = |active: bool| serde_json::json!({"conversation_id": conversation_id, "message_id": id, "who": "assistant", "active": active});
        self.publish(user, "typing", typing(true)).await;
        let mut offset = 0usize;
        let mut content = String::new();
        let mut saved = 0usize;
        let mut usage = None;
        let mut failure: Option<String> = None;
        let mut tick = tokio::time::interval(self.settings.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        match self
            .models
            .chat(principal, ask.into_request(), live.cancel.clone())
            .await
        {
            Err(e) => failure = Some(answer_failure(id, &e)),
            Ok(mut stream) => loop {
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(ChatEvent::Delta(text))) => {
                            content.push_str(&text);
                            live.append(&text);
                            self.publish(user, "message.delta", serde_json::json!({
                                "conversation_id": conversation_id, "message_id": id,
                                "offset": offset, "content": text,
                            })).await;
                            offset += text.chars().count();
                        }
                        Some(Ok(ChatEvent::Finished { usage: u, .. })) => usage = Some(u),
                        Some(Ok(ChatEvent::Started)) => {}
                        Some(Err(e)) => {
                            failure = Some(answer_failure(id, &e));
                            break;
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        if content.len() != saved {
                            if let Err(e) = self.store.checkpoint(id, &content, confab_core::now_ms()).await {
                                tracing::warn!(message = %id, error = %e, "checkpoint failed");
                            } else {
                                saved = content.len();
                            }
                        }
                    }
                    () = live.cancel.cancelled() => break,
                }
            },
        }
        let status = if live.stop_requested() {
            MessageStatus::Stopped
        } else if live.cancel.is_cancelled() {
            // The process is shutting down: the answer is cut off, like a crash but saved.
            MessageStatus::Interrupted
        } else if failure.is_some() {
            MessageStatus::Error
        } else if usage.is_none() {
            failure = Some("the model's answer ended without finishing".into());
            MessageStatus::Error
        } else {
            MessageStatus::Complete
        };
        let ending = Ending {
            status,
            content,
            error: failure.clone(),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            now: confab_core::now_ms(),
        };
        // Saved before readers are told, so a reader that then reads the row sees the end.
        let saved = self.store.finish(id, ending).await;
        live.end(status, failure);
        self.live.remove(id);
        match saved {
            Ok(message) => {
                self.publish(
                    user,
                    "message.completed",
                    serde_json::json!({"message": message}),
                )
                .await;
            }
            Err(e) => {
                tracing::error!(message = %id, error = %e, "cannot save the end of an answer");
            }
        }
        self.publish(user, "typing", typing(false)).await;
        status
    }

    /// Names the conversation in the background: a durable `chat.title` job when a job queue
    /// is configured, else a task of this process.
    async fn queue_title(&self, principal: &Principal, conversation_id: Uuid) {
        let Some(jobs) = &self.jobs else {
            if let Err(e) = self.auto_title(principal, conversation_id).await {
                tracing::warn!(conversation = %conversation_id, error = %e, "no title");
            }
            return;
        };
        let key_id = match &principal.credential {
            Credential::ApiKey { key_id, .. } => Some(*key_id),
            Credential::Service { key_id, .. } => *key_id,
            Credential::Session { .. } => None,
        };
        let job = TitleJob {
            user_id: principal.user_id,
            role: principal.role,
            key_id,
            conversation_id,
        };
        let payload = serde_json::to_value(&job).unwrap_or_default();
        if let Err(e) = jobs
            .enqueue(
                NewJob::new(TITLE_JOB, payload)
                    .max_attempts(3)
                    .created_by(principal.user_id),
            )
            .await
        {
            tracing::warn!(conversation = %conversation_id, error = %e, "cannot queue the title");
        }
    }

    /// Asks the conversation's model for a short title, and sets it unless the user renamed
    /// the conversation meanwhile. Idempotent: once titled, the provisional title is gone and
    /// a second run changes nothing.
    async fn auto_title(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
    ) -> Result<Option<String>, String> {
        let Ok(conversation) = self
            .store
            .conversation(principal.user_id, conversation_id)
            .await
        else {
            return Ok(None);
        };
        let Ok(path) = self.active_path(principal, conversation_id).await else {
            return Ok(None);
        };
        let Some((first, _)) = path.first() else {
            return Ok(None);
        };
        let provisional = domain::provisional_title(&first.content);
        if conversation.title != provisional {
            // Named already: by the user, or by an earlier run of this job.
            return Ok(None);
        }
        let model = self
            .pick_model(&conversation, None)
            .await
            .map_err(|e| e.to_string())?;
        let excerpt: String = first.content.chars().take(1000).collect();
        let ask = Ask {
            model,
            system: Some(
                "You name conversations. Reply with a title of at most six words for the \
                 conversation that starts with the user's message. Reply with the title only."
                    .into(),
            ),
            turns: vec![Turn {
                role: Author::User,
                content: excerpt,
            }],
            params: SamplingParams {
                temperature: 0.2,
                max_tokens: Some(24),
                ..SamplingParams::default()
            },
        };
        let cancel = self.shutdown.child_token();
        let mut stream = self
            .models
            .chat(principal, ask.into_request(), cancel)
            .await
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(ChatEvent::Delta(piece)) => text.push_str(&piece),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // Replaces the provisional title only: a name the user gave meanwhile stays.
        let Some(title) = domain::clean_title(&text) else {
            return Ok(None);
        };
        let changed = self
            .store
            .retitle(conversation_id, &provisional, &title, confab_core::now_ms())
            .await
            .map_err(|e| e.to_string())?;
        if !changed {
            return Ok(None);
        }
        self.publish_conversation(principal.user_id, conversation_id)
            .await;
        Ok(Some(title))
    }

    /// Asks an answer being generated to stop; what was generated is kept as `stopped`.
    pub async fn stop(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<(), ChatError> {
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        match self.live.get(message_id) {
            Some(live) => {
                live.request_stop();
                Ok(())
            }
            None => Err(ChatError::Conflict(
                "not_streaming",
                format!(
                    "this answer is not being generated (it is {})",
                    message.status.as_str()
                ),
            )),
        }
    }

    /// An answer from character `offset` on: live while it is generated, then its end; or,
    /// for a finished answer, the rest of its saved text and its end.
    pub async fn follow(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        offset: usize,
    ) -> Result<BoxStream<'static, Follow>, ChatError> {
        let message = self
            .store
            .message(principal.user_id, conversation_id, message_id)
            .await
            .map_err(not_found("no such message in this conversation"))?;
        if message.role != Author::Assistant {
            return Err(ChatError::invalid(
                "not_an_answer",
                "only an assistant's message can be followed",
            ));
        }
        let bad_offset = |length: usize| {
            ChatError::invalid(
                "invalid_offset",
                format!("offset {offset} is past the answer's {length} characters so far"),
            )
        };
        let Some(live) = self.live.get(message_id) else {
            // Finished (or left by a process that died): the saved row is the whole story.
            // Read it again: the answer may have ended since the first read, and its row is
            // saved before it stops being live.
            let message = self
                .store
                .message(principal.user_id, conversation_id, message_id)
                .await
                .map_err(not_found("no such message in this conversation"))?;
            let rest = after_chars(&message.content, offset)
                .ok_or_else(|| bad_offset(message.content.chars().count()))?
                .to_owned();
            let mut events = Vec::with_capacity(2);
            if !rest.is_empty() {
                events.push(Follow::Delta {
                    offset,
                    content: rest,
                });
            }
            events.push(Follow::Done(Box::new(message)));
            return Ok(futures::stream::iter(events).boxed());
        };
        let snapshot = live.snapshot();
        if after_chars(&snapshot.content, offset).is_none() {
            return Err(bad_offset(snapshot.content.chars().count()));
        }
        let receiver = live.subscribe();
        let store = self.store.clone();
        let user = principal.user_id;
        let state = (receiver, offset, false);
        Ok(
            futures::stream::unfold(state, move |(mut receiver, mut sent, ended)| {
                let store = store.clone();
                let message = message.clone();
                async move {
                    if ended {
                        return None;
                    }
                    loop {
                        let snapshot = receiver.borrow_and_update().clone();
                        let total = snapshot.content.chars().count();
                        let mut events = Vec::new();
                        if total > sent {
                            let rest = after_chars(&snapshot.content, sent).unwrap_or_default();
                            events.push(Follow::Delta {
                                offset: sent,
                                content: rest.to_owned(),
                            });
                            sent = total;
                        }
                        if snapshot.status.is_final() {
                            let message = store
                                .message(user, conversation_id, message_id)
                                .await
                                .ok()
                                .unwrap_or_else(|| Message {
                                    content: snapshot.content.clone(),
                                    status: snapshot.status,
                                    error: snapshot.error.clone(),
                                    ..message.clone()
                                });
                            events.push(Follow::Done(Box::new(message)));
                            return Some((futures::stream::iter(events), (receiver, sent, true)));
                        }
                        if !events.is_empty() {
                            return Some((futures::stream::iter(events), (receiver, sent, false)));
                        }
                        if receiver.changed().await.is_err() {
                            // The answer's owner went away without an end: read the row.
                            let message = store.message(user, conversation_id, message_id).await;
                            let events = message
                                .map(|m| vec![Follow::Done(Box::new(m))])
                                .unwrap_or_default();
                            return Some((futures::stream::iter(events), (receiver, sent, true)));
                        }
                    }
                }
            })
            .flatten()
            .boxed(),
        )
    }

    pub async fn create_preset(
        &self,
        principal: &Principal,
        name: String,
        system_prompt: Option<String>,
        params: Params,
    ) -> Result<Preset, ChatError> {
        let preset = self.checked_preset(confab_core::id::new_id(), name, system_prompt, params)?;
        self.store
            .create_preset(principal.user_id, preset)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ChatError::Conflict("preset_exists", "a preset with this name exists".into())
                }
                other => ChatError::Store(other),
            })
    }

    fn checked_preset(
        &self,
        id: Uuid,
        name: String,
        system_prompt: Option<String>,
        params: Params,
    ) -> Result<Preset, ChatError> {
        let name = name.trim().to_owned();
        let system_prompt = optional(system_prompt);
        domain::Fields {
            name: Some(&name),
            system_prompt: system_prompt.as_deref(),
            params: Some(&params),
            ..domain::Fields::default()
        }
        .check()
        .map_err(ChatError::problems)?;
        let now = confab_core::now_ms();
        Ok(Preset {
            id,
            name,
            system_prompt,
            params,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn presets(&self, principal: &Principal) -> Result<Vec<Preset>, ChatError> {
        Ok(self.store.presets(principal.user_id).await?)
    }

    pub async fn update_preset(
        &self,
        principal: &Principal,
        id: Uuid,
        name: String,
        system_prompt: Option<String>,
        params: Params,
    ) -> Result<Preset, ChatError> {
        let old = self
            .store
            .preset(principal.user_id, id)
            .await
            .map_err(not_found("no such preset"))?;
        let mut preset = self.checked_preset(id, name, system_prompt, params)?;
        preset.created_at = old.created_at;
        self.store
            .update_preset(principal.user_id, preset)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ChatError::Conflict("preset_exists", "a preset with this name exists".into())
                }
                StoreError::NotFound => ChatError::NotFound("no such preset"),
                other => ChatError::Store(other),
            })
    }

    pub async fn delete_preset(&self, principal: &Principal, id: Uuid) -> Result<(), ChatError> {
        self.store
            .delete_preset(principal.user_id, id)
            .await
            .map_err(not_found("no such preset"))
    }

    /// Makes a read-only link to a snapshot of the conversation's active branch.
    pub async fn share(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<domain::ShareLink, ChatError> {
        use base64::Engine;
        use rand::RngCore;
        let conversation = self.conversation(principal, id).await?;
        let path = self.active_path(principal, id).await?;
        let messages: Vec<domain::SharedMessage> = path
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| m.status != MessageStatus::Streaming && !m.content.is_empty())
            .map(|m| domain::SharedMessage {
                role: m.role,
                content: m.content,
            })
            .collect();
        if messages.is_empty() {
            return Err(ChatError::invalid(
                "nothing_to_share",
                "the conversation has no finished messages to share",
            ));
        }
        let now = confab_core::now_ms();
        let snapshot = domain::SharedConversation {
            title: conversation.title,
            shared_at: now,
            messages,
        };
        let mut bytes = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Ok(self
            .store
            .create_share(principal.user_id, id, &token, &snapshot, now)
            .await?)
    }

    pub async fn shares(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Vec<domain::ShareLink>, ChatError> {
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
    pub async fn shared(&self, token: &str) -> Result<domain::SharedConversation, ChatError> {
        if token.len() > 64 {
            return Err(ChatError::NotFound("no such share link"));
        }
        let (owner, snapshot) = self
            .store
            .shared(token)
            .await
            .map_err(not_found("no such share link"))?;
        let active = self.accounts.is_active(owner).await.map_err(|e| match e {
            crate::ports::AccountsError::Unavailable(detail) => {
                ChatError::Store(StoreError::Unavailable(detail))
            }
        })?;
        if !active {
            return Err(ChatError::NotFound("no such share link"));
        }
        Ok(snapshot)
    }

    pub async fn react(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
        add: bool,
    ) -> Result<Vec<domain::Reaction>, ChatError> {
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
        self.publish(
            user,
            "reaction",
            serde_json::json!({"conversation_id": conversation_id, "message_id": message_id, "reactions": reactions}),
        )
        .await;
        Ok(reactions)
    }

    /// Reactions to the given messages as the user sees them.
    pub async fn reactions(
        &self,
        principal: &Principal,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Vec<domain::Reaction>>, ChatError> {
        Ok(self.store.reactions(principal.user_id, ids).await?)
    }

    /// Archives, unarchives or deletes many conversations; ids that are not the user's are
    /// skipped. Returns how many were changed.
    pub async fn bulk(
        &self,
        principal: &Principal,
        ids: &[Uuid],
        action: crate::ports::BulkAction,
    ) -> Result<u64, ChatError> {
        if ids.is_empty() || ids.len() > 500 {
            return Err(ChatError::invalid(
                "invalid_ids",
                "give between 1 and 500 conversation ids",
            ));
        }
        if action == crate::ports::BulkAction::Delete {
            for id in ids {
                if let Ok(path) = self.active_path(principal, *id).await {
                    for (message, _) in path {
                        if let Some(live) = self.live.get(message.id) {
                            live.request_stop();
                        }
                    }
                }
            }
        }
        let affected = self
            .store
            .bulk(principal.user_id, ids, action, confab_core::now_ms())
            .await?;
        self.publish(
            principal.user_id,
            "conversations.changed",
            serde_json::json!({"ids": ids, "action": action}),
        )
        .await;
        Ok(affected)
    }

    /// One conversation with every message of every branch.
    pub async fn export_one(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<crate::transfer::ExportedConversation, ChatError> {
        let conversation = self.conversation(principal, id).await?;
        let messages = self.store.all_messages(id).await?;
        Ok(crate::transfer::ExportedConversation::new(
            conversation,
            messages,
        ))
    }

    /// Every conversation of the user (archived ones too), newest activity first.
    pub async fn export_all(
        &self,
        principal: &Principal,
    ) -> Result<crate::transfer::Export, ChatError> {
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
                    .list_conversations(principal.user_id, &filter, after, 200)
                    .await?;
                after = page.last().map(|c| ConversationPosition {
                    updated_at: c.updated_at,
                    id: c.id,
                });
                let done = page.len() < 200;
                for conversation in page {
                    let messages = self.store.all_messages(conversation.id).await?;
                    conversations.push(crate::transfer::ExportedConversation::new(
                        conversation,
                        messages,
                    ));
                }
                if done {
                    break;
                }
            }
        }
        Ok(crate::transfer::Export {
            format: crate::transfer::FORMAT.into(),
            version: crate::transfer::VERSION,
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
        Ok(crate::transfer::markdown(&conversation, &path))
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
        let read = tokio::task::spawn_blocking(move || crate::transfer::read_import(&bytes, now))
            .await
            .map_err(|e| ChatError::Internal(format!("the import's reader failed: {e}")))?;
        let imported = read.map_err(|e| match e {
            crate::transfer::ImportError::TooLarge(message) => ChatError::Invalid {
                code: "import_too_large",
                message: format!("the file was not imported; nothing changed: {message}"),
                details: Vec::new(),
            },
            crate::transfer::ImportError::Invalid(details) => ChatError::Invalid {
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

    /// Full-text search over the user's titles and finished messages.
    pub async fn search(
        &self,
        principal: &Principal,
        query: &str,
        limit: u32,
    ) -> Result<Vec<domain::SearchHit>, ChatError> {
        if query.chars().count() > 200 {
            return Err(ChatError::invalid(
                "invalid_query",
                "the query is longer than 200 characters",
            ));
        }
        let words = domain::query_words(query);
        if words.is_empty() {
            return Err(ChatError::invalid(
                "invalid_query",
                "the query has no words to search for",
            ));
        }
        Ok(self
            .store
            .search(principal.user_id, &words, limit.clamp(1, 100))
            .await?)
    }

    /// How the service was configured.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Answers being generated now (for metrics and tests).
    pub fn live_answers(&self) -> usize {
        self.live.len()
    }
}
