//! The durable job queue port: work that must happen later or elsewhere (model pulls, titles,
//! user purges, ingestion, video processing) is enqueued with a kind and a JSON payload,
//! leased by a worker for a while, kept alive by heartbeats that also carry progress, and
//! ends succeeded (with a result), failed (with the error, after its attempts ran out) or
//! cancelled. A lease that is not renewed expires and another worker retakes the job, so a
//! crash loses nothing; handlers must therefore be idempotent (at-least-once execution).
//!
//! Adapters: [`crate::SqlJobQueue`] (SQLite / PostgreSQL, the all-in-one default) and the
//! NATS JetStream work-queue adapter for split mode. Both pass the contract suite in
//! `tests/it/jobs.rs`. [`crate::Workers`] runs handlers over any adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What the job does, e.g. `model.pull`; workers register handlers by kind.
    pub kind: String,
    pub payload: serde_json::Value,
    /// Higher runs first among jobs that are due.
    pub priority: i32,
    /// Attempts before the job fails for good (at least 1).
    pub max_attempts: u32,
    /// Not before this time (Unix ms); `None` = now.
    pub run_after: Option<i64>,
    /// Who asked for it (shown to admins; progress also goes to this user's topic).
    pub created_by: Option<Uuid>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            priority: 0,
            max_attempts: 5,
            run_after: None,
            created_by: None,
        }
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn run_after(mut self, at_ms: i64) -> Self {
        self.run_after = Some(at_ms);
        self
    }

    pub fn created_by(mut self, user: Uuid) -> Self {
        self.created_by = Some(user);
        self
    }

    /// The job as an adapter stores it when enqueued at `now` (Unix ms) under `id`.
    pub fn into_job(self, id: Uuid, now: i64) -> Job {
        Job {
            id,
            kind: self.kind,
            payload: self.payload,
            priority: self.priority,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: self.max_attempts.max(1),
            run_after: self.run_after.unwrap_or(now),
            progress: None,
            progress_message: None,
            result: None,
            error: None,
            cancel_requested: false,
            created_by: self.created_by,
            created_at: now,
            updated_at: now,
            worker: None,
            lease_until: None,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (first time, or again after a failed attempt: see `run_after`).
    Queued,
    /// Leased by a worker.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub state: JobState,
    /// Attempts started so far (a lease taken counts as one).
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix ms: when a queued job may run next.
    pub run_after: i64,
    /// 0–100 when the handler reported it.
    pub progress: Option<f64>,
    pub progress_message: Option<String>,
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<String>,
    /// A cancellation was asked while it ran; the worker sees it at its next heartbeat.
    pub cancel_requested: bool,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The worker holding the lease, while running.
    pub worker: Option<String>,
    /// Unix ms: when the current lease expires.
    pub lease_until: Option<i64>,
}

/// A job leased by a worker. `token` identifies this lease: a worker whose lease expired and
/// was retaken by another can no longer heartbeat, complete or fail the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub job: Job,
    pub token: Uuid,
}

/// Progress reported by a handler.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// 0–100, when known.
    pub percent: Option<f64>,
    pub message: Option<String>,
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is extended; go on.
    Extended,
    /// An admin cancelled the job: stop, then call [`JobQueue::cancelled`].
    CancelRequested,
    /// The lease is no longer ours (it expired and was retaken, or the job ended): stop
    /// without reporting anything.
    Lost,
}

/// Filters for listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub created_by: Option<Uuid>,
    /// Cursor: jobs created before this one (ids are UUIDv7, so newest first by id).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// The jobs of one kind that are not finished (the metrics: `confab_jobs`,
/// `confab_job_queue_age_seconds`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindStats {
    pub kind: String,
    pub queued: u64,
    pub running: u64,
    /// The earliest `run_after` (Unix ms) of the queued jobs that are due now: how long the
    /// longest-waiting job has waited.
    pub oldest_due: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no such job")]
    NotFound,
    /// The job is in a state where that is not possible (e.g. retrying a running job).
    #[error("{0}")]
    Conflict(String),
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, job: NewJob) -> Result<Job, JobError>;

    /// Leases the most urgent due job of one of `kinds` (highest priority, then oldest
    /// `run_after`) for `ttl`, counting an attempt; `None` when none is due. Expired leases
    /// of running jobs are retaken here too.
    async fn lease(
        &self,
        kinds: &[&str],
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError>;

    /// Extends the lease by `ttl` and records progress.
    async fn heartbeat(
        &self,
        lease: &Lease,
        progress: Option<&Progress>,
        ttl: Duration,
    ) -> Result<Heartbeat, JobError>;

    /// The handler finished: the job succeeded with `result`. `false` when the lease was
    /// lost (another worker has the job now; nothing was written).
    async fn complete(&self, lease: &Lease, result: serde_json::Value) -> Result<bool, JobError>;

    /// The attempt failed. With `retry` and attempts left the job is queued again after
    /// `backoff` (the worker computes it); else it fails for good. Returns the job as it is
    /// now, or `None` when the lease was lost.
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry: bool,
        backoff: Duration,
    ) -> Result<Option<Job>, JobError>;

    /// The handler stopped because cancellation was asked: the job ends `cancelled`.
    async fn cancelled(&self, lease: &Lease) -> Result<bool, JobError>;

    /// Cancels a job: a queued one at once; a running one is flagged and its worker stops at
    /// its next heartbeat. Final jobs answer `Conflict`.
    async fn cancel(&self, id: Uuid) -> Result<Job, JobError>;

    /// Queues a failed or cancelled job again with fresh attempts. Others answer `Conflict`.
    async fn retry(&self, id: Uuid) -> Result<Job, JobError>;

    async fn get(&self, id: Uuid) -> Result<Option<Job>, JobError>;

    /// Newest first.
    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, JobError>;

    /// A signal that jobs of `kind` may have become due in this process (enqueued, retried),
    /// so an idle worker can lease at once instead of at its next poll. It is only a hint
    /// (jobs enqueued by other processes do not signal it): workers still poll. `None` when
    /// the adapter has no such signal.
    fn wake_signal(&self, kind: &str) -> Option<Arc<tokio::sync::Notify>> {
        let _ = kind;
        None
    }

    /// The unfinished jobs by kind at `now_ms`, read cheaply (an index over the unfinished
    /// ones); `None` when the adapter cannot count without reading every job.
    async fn stats(&self, now_ms: i64) -> Result<Option<Vec<KindStats>>, JobError> {
        let _ = now_ms;
        Ok(None)
    }
}
