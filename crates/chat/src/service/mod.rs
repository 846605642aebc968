//! The chat service: conversations and their message trees, and answers that survive the
//! client. Sending a message stores it before any model is called, creates the answer as
//! `streaming`, and generates it on a tracked task that checkpoints the text while it grows
//! and records how it ended, whoever is still listening.
//!
//! One module per seam: `answers` (send, regenerate, generate, stop, follow), `conversations`
//! (create, read, change, delete, bulk, purge), `titles`, `sharing`, `presets`, `reactions`,
//! `search`, `transfer` (export and import) and `presence` (real-time connections). This
//! module holds the service, its settings, its error and what they share.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Envelope, EventBus, JobQueue, TypedEvent};
use confab_cache::Membership;
use confab_store::StoreError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::domain::Conversation;
use crate::events::ConversationUpdated;
use crate::live::LiveAnswers;
use crate::ports::{Accounts, ChatStore, FileAccess, ModelClient, ModelError};

mod answers;
mod attachments;
mod conversations;
mod presence;
mod presets;
mod reactions;
mod replicas;
mod search;
mod sharing;
mod titles;
mod transfer;

pub use crate::domain::ConversationInput;
pub use crate::live::Follow;
pub use answers::{SendInput, Sent};
pub use attachments::MAX_IMAGES_SENT;
pub use presence::{SOCKET_REFRESH, SOCKET_TTL, SocketSlot};
pub use titles::{TITLE_JOB, TitleError, TitleJob};

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
    /// Real-time connections one user may hold open at once (across replicas sharing the
    /// membership port).
    pub sockets_per_user: usize,
    /// The temperature of answers in conversations that set none.
    pub default_temperature: f32,
    /// The nucleus sampling of answers in conversations that set none.
    pub default_top_p: f32,
    /// The temperature of title suggestions (low: a title should be plain).
    pub title_temperature: f32,
    /// The longest title suggestion asked for, in tokens.
    pub title_max_tokens: u32,
    /// `None`: this process is the only chat service (all-in-one), so at start every answer
    /// still `streaming` was cut off by its last stop. `Some(lease)`: other replicas share the
    /// database; a streaming answer is checkpointed at least every quarter lease, and one not
    /// checkpointed for a whole lease was left by a replica that died and is marked
    /// `interrupted` by the others (see `service::replicas`).
    pub answer_lease: Option<Duration>,
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
            default_temperature: 0.7,
            default_top_p: 1.0,
            title_temperature: 0.2,
            title_max_tokens: 24,
            answer_lease: None,
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
    /// An attachment cannot be used, or the files service cannot be reached.
    #[error(transparent)]
    Files(#[from] crate::ports::FileAccessError),
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

    /// Every problem the domain's checks found with a body, as one error.
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

pub struct ChatService {
    store: Arc<dyn ChatStore>,
    models: Arc<dyn ModelClient>,
    /// Where what happens is told to the user's open tabs (and other replicas).
    events: Arc<dyn EventBus>,
    /// Open real-time connections per user (see `presence`).
    sockets: Arc<dyn Membership>,
    /// Files attached to messages (the files service's).
    files: Arc<dyn FileAccess>,
    live: LiveAnswers,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    settings: ChatSettings,
    /// Where titles are queued as `chat.title` jobs; `None`: they run on `tasks`.
    jobs: Option<Arc<dyn JobQueue>>,
    /// Whether accounts are active (share links of inactive ones are not served).
    accounts: Arc<dyn Accounts>,
    /// Permits for imports being read (`settings.import_concurrency`).
    imports: Arc<tokio::sync::Semaphore>,
    /// Real-time connections open in this process (`confab_websockets_active`).
    sockets_here: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService")
            .field("settings", &self.settings)
            .field("live", &self.live.len())
            .finish_non_exhaustive()
    }
}

/// The ports and handles a [`ChatService`] runs on, chosen by the composition root.
#[derive(Clone)]
pub struct ChatDeps {
    pub store: Arc<dyn ChatStore>,
    pub models: Arc<dyn ModelClient>,
    /// Whether accounts are active (share links of inactive ones are not served).
    pub accounts: Arc<dyn Accounts>,
    /// Live events to the user's tabs and other replicas.
    pub events: Arc<dyn EventBus>,
    /// Where titles are queued as `chat.title` jobs; `None`: they run on `tasks`.
    pub jobs: Option<Arc<dyn JobQueue>>,
    /// Where answers are generated, so shutdown waits for them.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: answers still generating end `interrupted`.
    pub shutdown: CancellationToken,
    /// Each user's open real-time connections: in this process, or shared by every replica
    /// (Redis, split mode), so the per-user cap and the `presence` count span them.
    pub sockets: Arc<dyn Membership>,
    /// The files attached to messages: the files service in this process or over HTTP, or
    /// [`crate::ports::NoFiles`] where there is none.
    pub files: Arc<dyn FileAccess>,
}

impl std::fmt::Debug for ChatDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatDeps")
            .field("jobs", &self.jobs.is_some())
            .finish_non_exhaustive()
    }
}

impl ChatService {
    /// The service over its ports (`deps`) with its settings.
    pub fn new(deps: ChatDeps, settings: ChatSettings) -> Arc<Self> {
        let ChatDeps {
            store,
            models,
            accounts,
            events,
            jobs,
            tasks,
            shutdown,
            sockets,
            files,
        } = deps;
        Arc::new(Self {
            store,
            files,
            models,
            events,
            sockets,
            live: LiveAnswers::default(),
            tasks,
            shutdown,
            accounts,
            imports: Arc::new(tokio::sync::Semaphore::new(
                settings.import_concurrency.max(1),
            )),
            settings,
            jobs,
            sockets_here: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Real-time connections open in this process now (every user's), for the metrics.
    pub fn sockets_open_here(&self) -> usize {
        self.sockets_here.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells the user's tabs (and other replicas) what happened (see [`crate::events`]); a
    /// bus failure is logged, never fatal to the operation that caused it.
    async fn publish<E: TypedEvent>(&self, event: &E) {
        if let Err(e) = self.events.publish(Envelope::typed(event)).await {
            tracing::warn!(error = %e, kind = E::KIND, "event not published");
        }
    }

    /// Publishes a conversation as it is now.
    async fn publish_conversation(&self, user: Uuid, id: Uuid) {
        if let Ok(conversation) = self.store.conversation(user, id).await {
            self.publish(&ConversationUpdated {
                user_id: user,
                conversation,
            })
            .await;
        }
    }

    /// The event bus, for the real-time endpoint.
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// At start: answers left `streaming` by a process that died are `interrupted`; their
    /// last checkpoint is their text. Alone (no lease), every streaming answer is; among
    /// replicas, only those no replica has checkpointed for a lease.
    pub async fn recover(&self) -> Result<u64, ChatError> {
        match self.settings.answer_lease {
            None => Ok(self
                .store
                .interrupt_streaming(confab_core::now_ms())
                .await?),
            Some(lease) => Ok(self.interrupt_stale(lease).await? as u64),
        }
    }

    /// A model the user named must exist (`None`: nothing to check).
    async fn check_model(&self, model: Option<&str>) -> Result<(), ChatError> {
        match model {
            Some(m) if !self.models.knows_model(m).await => Err(ChatError::invalid(
                "unknown_model",
                format!("no model named `{m}`; GET /api/v1/models lists them"),
            )),
            _ => Ok(()),
        }
    }

    /// The model to ask: the one requested, else the conversation's, else the default.
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

    /// How the service was configured.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Answers being generated now (for metrics and tests).
    pub fn live_answers(&self) -> usize {
        self.live.len()
    }
}
