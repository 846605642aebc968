//! The SEO studio's operations: projects (`projects`), package versions with hand edits,
//! restores, diffs and exports (`versions`), generation as a durable job (`generation`), and
//! scoring any metadata (`scoring`). Handlers call these; every operation takes the caller's
//! principal and touches only that owner's rows.

use std::sync::Arc;

use confab_bus::{EventBus, JobError, JobQueue};
use confab_store::StoreError;

use crate::domain::project::FieldProblem;
use crate::domain::rules::Violation;
use crate::domain::score::Weights;
use crate::domain::transcript::TranscriptError;
use crate::ports::{ModelClient, ModelError, SeoStore};

mod channels;
mod generation;
mod projects;
mod research_cap;
mod scoring;
mod versions;
mod youtube;

pub use channels::{Applied, ChannelView};
pub use generation::{
    GENERATE_JOB, GenerateJob, Generated, Generation, GenerationError, GenerationStats,
};
pub use research_cap::ResearchCap;
pub use scoring::{ScoreReport, ScoreRequest};
pub use versions::ExportFormat;
pub use youtube::{
    QuotaView, ResearchRequest, VideoAudit, VideoSummary, YouTubeDeps, parse_video_id,
};

/// How the studio behaves; from `[seo]` in the configuration.
#[derive(Debug, Clone)]
pub struct SeoSettings {
    /// The largest transcript accepted, in bytes (UTF-8).
    pub transcript_max_bytes: usize,
    /// Generations one user may have queued or running at once.
    pub generations_per_user: usize,
    /// The model that writes packages; `None`: the platform's default model.
    pub model: Option<String>,
    /// Sampling temperature of both stages.
    pub temperature: f32,
    /// The most tokens a stage may generate.
    pub max_tokens: u32,
    /// Context window assumed for models that do not report one.
    pub default_context_tokens: usize,
    /// How the score's components are weighted.
    pub weights: Weights,
    /// Generation feeds (SSE) one user may hold open in this process.
    pub feeds_per_user: usize,
}

impl Default for SeoSettings {
    fn default() -> Self {
        Self {
            transcript_max_bytes: 1024 * 1024,
            generations_per_user: 2,
            model: None,
            temperature: 0.4,
            max_tokens: 1024,
            default_context_tokens: 8192,
            weights: Weights::default(),
            feeds_per_user: 8,
        }
    }
}

/// What the studio needs from the rest of the platform.
pub struct SeoDeps {
    pub store: Arc<dyn SeoStore>,
    pub models: Arc<dyn ModelClient>,
    pub jobs: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventBus>,
    pub youtube: YouTubeDeps,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SeoError {
    /// No such project or version for this owner (another user's ids answer the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Fields the caller must fix.
    #[error("invalid fields")]
    Invalid(Vec<FieldProblem>),
    #[error("the transcript cannot be read: {0}")]
    Transcript(TranscriptError),
    #[error("the transcript is {size} bytes; at most {max} are accepted")]
    TranscriptTooLarge { size: usize, max: usize },
    /// A package that breaks YouTube's rules is never stored.
    #[error("the package breaks YouTube's rules")]
    InvalidPackage(Vec<Violation>),
    /// The user already has as many generations queued or running as allowed.
    #[error("{running} generations are already queued or running; at most {max} at once")]
    TooManyGenerations { running: usize, max: usize },
    /// The user holds as many generation feeds open as allowed.
    #[error("{max} generation feeds are open already; close one first")]
    TooManyFeeds { max: usize },
    /// A generation of this project is already queued or running.
    #[error("this project is already being generated")]
    AlreadyGenerating,
    /// What the operation needs from YouTube is not configured (an API key, OAuth credentials).
    #[error("{0}")]
    YouTubeNotConfigured(&'static str),
    /// The user made as many research calls this hour as allowed.
    #[error("at most {per_hour} keyword researches an hour; cached keywords stay free")]
    TooManyResearches { per_hour: u32 },
    /// The user has no connected channel (and is not an admin with the deployment's own).
    #[error("connect your YouTube channel first")]
    NoChannel,
    /// Google refused the stored grant: the channel must be connected again.
    #[error("your YouTube channel must be connected again")]
    Reconnect,
    #[error(transparent)]
    YouTube(#[from] crate::youtube::YouTubeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("job queue: {0}")]
    Jobs(#[from] JobError),
}

impl From<StoreError> for SeoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => SeoError::NotFound("project"),
            other => SeoError::Store(other),
        }
    }
}

pub type SeoResult<T> = Result<T, SeoError>;

/// The SEO studio.
pub struct SeoService {
    store: Arc<dyn SeoStore>,
    models: Arc<dyn ModelClient>,
    jobs: Arc<dyn JobQueue>,
    events: Arc<dyn EventBus>,
    settings: SeoSettings,
    /// Serialises the check of a user's running generations with the enqueue, so two
    /// requests at once cannot both pass the cap in this process.
    starting: tokio::sync::Mutex<()>,
    youtube: youtube::YouTubeAccess,
    /// Open generation feeds per user.
    feeds: Arc<parking_lot::Mutex<std::collections::HashMap<uuid::Uuid, usize>>>,
}

/// One open generation feed; dropping it frees the place.
#[derive(Debug)]
pub struct FeedSlot {
    user: uuid::Uuid,
    feeds: Arc<parking_lot::Mutex<std::collections::HashMap<uuid::Uuid, usize>>>,
}

impl Drop for FeedSlot {
    fn drop(&mut self) {
        let mut feeds = self.feeds.lock();
        if let Some(n) = feeds.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                feeds.remove(&self.user);
            }
        }
    }
}

impl std::fmt::Debug for SeoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeoService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SeoService {
    pub fn new(deps: SeoDeps, settings: SeoSettings) -> Arc<Self> {
        Arc::new(Self {
            store: deps.store,
            models: deps.models,
            jobs: deps.jobs,
            events: deps.events,
            youtube: youtube::YouTubeAccess::new(deps.youtube),
            settings,
            starting: tokio::sync::Mutex::new(()),
            feeds: Arc::default(),
        })
    }

    pub fn settings(&self) -> &SeoSettings {
        &self.settings
    }

    /// Publishes a live event; a bus hiccup only costs the live view (the job's state is
    /// durable), so it is logged, not returned.
    async fn publish<E: confab_bus::TypedEvent>(&self, event: &E) {
        if let Err(e) = self
            .events
            .publish(confab_bus::Envelope::typed(event))
            .await
        {
            tracing::warn!(kind = E::KIND, error = %e, "SEO event not published");
        }
    }

    /// The bus the studio's live events go through.
    pub fn events(&self) -> &Arc<dyn EventBus> {
        &self.events
    }

    /// Takes one of the user's places for a generation feed.
    pub fn open_feed(&self, user: uuid::Uuid) -> SeoResult<FeedSlot> {
        let max = self.settings.feeds_per_user;
        let mut feeds = self.feeds.lock();
        let open = feeds.entry(user).or_insert(0);
        if *open >= max {
            return Err(SeoError::TooManyFeeds { max });
        }
        *open += 1;
        Ok(FeedSlot {
            user,
            feeds: self.feeds.clone(),
        })
    }

    /// Deletes every project of a deleted user (the purge job); idempotent.
    pub async fn purge_user(&self, user_id: uuid::Uuid) -> SeoResult<u64> {
        Ok(self.store.purge_owner(user_id).await?)
    }
}

/// The SEO studio's part in deleting a user across services (its durable consumer
/// `seo.user-purge`): every project of the user's, with transcripts, versions and channels.
#[async_trait::async_trait]
impl confab_bus::purge::UserData for SeoService {
    async fn purge_user_data(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<confab_bus::purge::PurgeCounts, confab_bus::purge::PurgeError> {
        let projects = self
            .purge_user(user_id)
            .await
            .map_err(|e| confab_bus::purge::PurgeError(e.to_string()))?;
        Ok([("projects".to_owned(), projects)].into())
    }
}
