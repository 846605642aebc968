//! The ports the SEO studio needs: its own storage (projects with their transcripts, and
//! package versions), and — from other crates — the model-calling port, the job queue and the
//! event bus. Every store method names the owner, so one user's ids never reach another's rows.

use async_trait::async_trait;
pub use confab_model_client::{ModelClient, ModelError};
use confab_store::StoreError;
use uuid::Uuid;

use crate::domain::{Package, Project, Transcript, Version, VersionSource};

pub type StoreResult<T> = Result<T, StoreError>;

/// Which of an owner's projects to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectFilter {
    /// Words that must all appear in the topic or the keywords (case-insensitive).
    pub query: Option<String>,
    /// `Some(true)`: only archived; `Some(false)`: only active; `None`: both.
    pub archived: Option<bool>,
    /// Cursor: projects after this one in the order (updated_at desc, id desc).
    pub after: Option<(i64, Uuid)>,
    pub limit: u32,
}

/// A new version to store. The store numbers it and moves the project's latest version and
/// score in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub source: VersionSource,
    pub author: Uuid,
    pub package: Package,
    pub score: u8,
    pub model: Option<String>,
    /// The generation job that wrote it: a second write by the same job returns the first.
    pub job_id: Option<Uuid>,
}

/// Projects and their transcripts.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Stores a new project with its transcript, if any, in one transaction.
    async fn create_project(
        &self,
        project: &Project,
        transcript: Option<(&str, &Transcript)>,
    ) -> StoreResult<()>;

    async fn project(&self, owner: Uuid, id: Uuid) -> StoreResult<Project>;

    async fn projects(&self, owner: Uuid, filter: &ProjectFilter) -> StoreResult<Vec<Project>>;

    /// Writes the project's fields as given (the service has merged the changes). The
    /// transcript: `None` keeps it, `Some(None)` removes it, `Some(Some(..))` replaces it.
    async fn update_project(
        &self,
        project: &Project,
        transcript: Option<Option<(&str, &Transcript)>>,
    ) -> StoreResult<()>;

    /// Deletes the project with its transcript and versions.
    async fn delete_project(&self, owner: Uuid, id: Uuid) -> StoreResult<()>;

    /// The parsed transcript, if the project has one.
    async fn transcript(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<Transcript>>;

    /// The transcript as it was given (for export and the editor).
    async fn transcript_text(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<String>>;

    /// Records the generation job now running for the project.
    async fn set_generation_job(&self, owner: Uuid, id: Uuid, job: Uuid) -> StoreResult<()>;

    /// Deletes every project of a deleted user; returns how many.
    async fn purge_owner(&self, owner: Uuid) -> StoreResult<u64>;
}

/// Package versions.
#[async_trait]
pub trait VersionStore: Send + Sync {
    /// Adds a version, numbered one past the newest, and makes it the project's latest.
    async fn add_version(
        &self,
        owner: Uuid,
        project_id: Uuid,
        version: NewVersion,
        now: i64,
    ) -> StoreResult<Version>;

    /// Newest first, whole (a package is a few kilobytes at most).
    async fn versions(&self, owner: Uuid, project_id: Uuid) -> StoreResult<Vec<Version>>;

    async fn version(&self, owner: Uuid, project_id: Uuid, number: u32) -> StoreResult<Version>;

    /// The version a generation job wrote, if it got that far.
    async fn version_of_job(&self, owner: Uuid, job: Uuid) -> StoreResult<Option<Version>>;

    /// Every version's score and time for the owner's dashboard, oldest first, at most
    /// `limit`, from `since` (Unix ms).
    async fn score_history(
        &self,
        owner: Uuid,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<ScorePoint>>;
}

/// One point of the scores-over-time chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScorePoint {
    pub project_id: Uuid,
    pub version: u32,
    pub score: u8,
    pub source: VersionSource,
    pub created_at: i64,
}

/// Whether a connected channel still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Connected,
    /// Google refused its refresh token (revoked or expired): the user must connect again.
    Reconnect,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Connected => "connected",
            ChannelStatus::Reconnect => "reconnect",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "connected" => Some(ChannelStatus::Connected),
            "reconnect" => Some(ChannelStatus::Reconnect),
            _ => None,
        }
    }
}

/// A user's connected channel as stored: the refresh token sealed, never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    pub owner: Uuid,
    pub refresh_token_sealed: String,
    pub status: ChannelStatus,
    pub connected_at: i64,
    pub updated_at: i64,
}

/// A consent flow under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConsent {
    pub state: String,
    pub owner: Uuid,
    pub verifier_sealed: String,
    pub redirect_uri: String,
    /// Unix ms.
    pub expires_at: i64,
}

/// Connected channels and consent flows.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Stores (or replaces) the owner's channel.
    async fn save_channel(&self, record: &ChannelRecord) -> StoreResult<()>;

    async fn channel(&self, owner: Uuid) -> StoreResult<Option<ChannelRecord>>;

    async fn set_channel_status(
        &self,
        owner: Uuid,
        status: ChannelStatus,
        now: i64,
    ) -> StoreResult<()>;

    /// Whether there was one to delete.
    async fn delete_channel(&self, owner: Uuid) -> StoreResult<bool>;

    /// Stores a consent flow, dropping the owner's expired ones (and any beyond the newest
    /// few, so a user cannot pile them up).
    async fn put_consent(&self, pending: &PendingConsent, now: i64) -> StoreResult<()>;

    /// Takes a consent flow by its state: it is deleted, so a state works once. `None` when
    /// unknown or expired.
    async fn take_consent(&self, state: &str, now: i64) -> StoreResult<Option<PendingConsent>>;
}

/// Everything the studio stores.
pub trait SeoStore: ProjectStore + VersionStore + ChannelStore {}

impl<T: ProjectStore + VersionStore + ChannelStore> SeoStore for T {}
