//! The worker runtime: runs registered [`JobHandler`]s over any [`JobQueue`]. Per kind, one
//! dispatcher leases jobs while fewer than the kind's concurrency run, and waits for the
//! queue's wake signal or its poll interval when none is due. Each job runs on its own
//! tracked task that heartbeats every third of the lease with the handler's latest progress,
//! then records the outcome: complete, fail (a retry after full-jitter exponential backoff,
//! or for good), or cancelled when an admin asked. Changes are published as `job.updated` on
//! the `jobs` topic and on the topic of the user who enqueued the job.
//!
//! On shutdown the dispatchers stop leasing and the handlers' tokens fire; handlers get
//! [`WorkerConfig::drain`] to return. What they return then is recorded only if it is
//! success: an interrupted job is left running, its lease expires, and a worker retakes it
//! after the restart (handlers are idempotent).
//!
//! Long (about 640 lines) because the job's life — lease, heartbeat, outcome, backoff, cancel,
//! drain, the run metrics — is one state machine read top to bottom; the next cut is
//! `run_job`'s outcome recording into a module of its own.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Envelope, EventBus, Heartbeat, Job, JobQueue, JobState, Lease, Progress, user_topic};

/// The topic of every job's updates (admins' views); the creator's topic gets them too.
pub const JOBS_TOPIC: &str = "jobs";
/// The kind of the events about a job.
pub const JOB_UPDATED: &str = "job.updated";

/// Progress events per job are published at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How the workers run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Names this process's leases (shown to admins).
    pub name: String,
    /// How long a lease lasts without a heartbeat; heartbeats come every third of it.
    pub lease: Duration,
    /// How often an idle dispatcher looks for due jobs (jobs enqueued in this process wake
    /// it at once when the queue has a wake signal).
    pub poll: Duration,
    /// How long handlers get to return after shutdown (or after a cancellation).
    pub drain: Duration,
    /// Retry backoff: a random time up to `backoff_base * 2^(attempt-1)`, at most
    /// `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "confab".to_owned());
        Self {
            name: format!("{host}-{}", std::process::id()),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            drain: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl WorkerConfig {
    /// The wait before the attempt after `attempt` failed: full jitter, uniformly random in
    /// `[0, min(backoff_max, backoff_base * 2^(attempt-1))]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let cap = self
            .backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=cap_ms))
    }
}

/// Why a handler did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    /// Worth another attempt (after a backoff), while attempts are left.
    #[error("{0}")]
    Retry(String),
    /// Will not get better: the job fails now.
    #[error("{0}")]
    Fatal(String),
}

/// The work of one job kind. Handlers must be idempotent: a job whose worker died runs
/// again, possibly after part of it was done.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Does the job; the value is stored as its result.
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<serde_json::Value, JobFailure>;
}

/// What a running handler can use: its cancellation signal and a way to report progress.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    token: CancellationToken,
    attempt: u32,
    progress: Mutex<ProgressState>,
    changed: Notify,
}

#[derive(Default)]
struct ProgressState {
    latest: Option<Progress>,
    /// Not yet sent with a heartbeat.
    unsent: bool,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("attempt", &self.inner.attempt)
            .field("cancelled", &self.inner.token.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl JobContext {
    fn new(token: CancellationToken, attempt: u32) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                token,
                attempt,
                progress: Mutex::new(ProgressState::default()),
                changed: Notify::new(),
            }),
        }
    }

    /// Fires when the handler should stop: an admin cancelled the job, the lease was lost
    /// (another worker has the job), or the process is shutting down.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Reports progress (`percent` 0–100 when known). Only the latest report counts: it is
    /// stored with the next heartbeat and published as an event at most 4 times a second.
    pub fn progress(&self, percent: Option<f64>, message: Option<&str>) {
        {
            let mut state = self.inner.progress.lock();
            state.latest = Some(Progress {
                percent,
                message: message.map(str::to_owned),
            });
            state.unsent = true;
        }
        self.inner.changed.notify_one();
    }

    fn latest(&self) -> Option<Progress> {
        self.inner.progress.lock().latest.clone()
    }

    /// The progress to send with a heartbeat, if it changed since the last one.
    fn take_unsent(&self) -> Option<Progress> {
        let mut state = self.inner.progress.lock();
        if state.unsent {
            state.unsent = false;
            state.latest.clone()
        } else {
            None
        }
    }

    fn mark_unsent(&self) {
        self.inner.progress.lock().unsent = true;
    }
}

/// The handlers of this process, by kind.
pub struct Workers {
    runtime: Runtime,
    kinds: Vec<Registration>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("config", &self.runtime.config)
            .field(
                "kinds",
                &self
                    .kinds
                    .iter()
                    .map(|r| (&r.kind, r.concurrency))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

struct Registration {
    kind: String,
    concurrency: usize,
    handler: Arc<dyn JobHandler>,
}

struct Runtime {
    queue: Arc<dyn JobQueue>,
    events: Arc<dyn EventBus>,
    config: WorkerConfig,
    observer: Option<RunObserver>,
}

/// How a job's run ended, as recorded (`confab_job_runs_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    Succeeded,
    /// Failed for good.
    Failed,
    /// Failed and queued again.
    Retried,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Retried => "retried",
        }
    }
}

/// Told the kind and outcome of every run this process records (the metrics).
pub type RunObserver = Arc<dyn Fn(&str, RunOutcome) + Send + Sync>;

impl Workers {
    pub fn new(queue: Arc<dyn JobQueue>, events: Arc<dyn EventBus>, config: WorkerConfig) -> Self {
        Self {
            runtime: Runtime {
                queue,
                events,
                config,
                observer: None,
            },
            kinds: Vec::new(),
        }
    }

    /// Tells `observer` how each run ends (succeeded, failed for good, or retried).
    pub fn observe_runs(&mut self, observer: RunObserver) -> &mut Self {
        self.runtime.observer = Some(observer);
        self
    }

    /// Runs jobs of `kind` with `handler`, at most `concurrency` (at least 1) at a time.
    pub fn register(
        &mut self,
        kind: impl Into<String>,
        concurrency: usize,
        handler: Arc<dyn JobHandler>,
    ) -> &mut Self {
        self.kinds.push(Registration {
            kind: kind.into(),
            concurrency: concurrency.max(1),
            handler,
        });
        self
    }

    /// Starts one dispatcher per kind on `tasks`; jobs run on `tasks` too, so waiting for
    /// them after `shutdown` is cancelled waits for the drain.
    pub fn start(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let runtime = Arc::new(self.runtime);
        for registration in self.kinds {
            tasks.spawn(dispatch(
                Arc::clone(&runtime),
                registration,
                tasks.clone(),
                shutdown.clone(),
            ));
        }
    }
}

/// Leases in flight at once per kind while jobs are found (PostgreSQL answers them in
/// parallel; SQLite queues them on its writer).
const PARALLEL_LEASES: usize = 4;

/// Leases jobs of one kind while slots are free: several leases at a time while they find
/// jobs, one after finding none, and none while idle until the wake signal or the poll.
async fn dispatch(
    runtime: Arc<Runtime>,
    registration: Registration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let Registration {
        kind,
        concurrency,
        handler,
    } = registration;
    let slots = Arc::new(Semaphore::new(concurrency));
    let wake = runtime.queue.wake_signal(&kind);
    let poll = runtime.config.poll;
    let parallel = concurrency.min(PARALLEL_LEASES);
    let lease = |slot: OwnedSemaphorePermit| {
        let runtime = Arc::clone(&runtime);
        let kind = kind.clone();
        async move {
            let config = &runtime.config;
            let leased = runtime
                .queue
                .lease(&[&kind], &config.name, config.lease)
                .await;
            (slot, leased)
        }
    };
    let mut leasing = FuturesUnordered::new();
    let mut found = true;
    'dispatch: loop {
        if !found && leasing.is_empty() {
            let woken = async {
                match &wake {
                    Some(notify) => notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
                () = woken => {}
            }
        }
        let target = if found { parallel } else { 1 };
        while leasing.len() < target {
            if leasing.is_empty() {
                let slot = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break 'dispatch,
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break 'dispatch,
                    },
                };
                leasing.push(lease(slot));
            } else if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                leasing.push(lease(slot));
            } else {
                break;
            }
        }
        // A lease that completes after shutdown is dropped: like any interrupted job, it
        // runs again when its lease expires.
        let (slot, leased) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = leasing.next() => match next {
                Some(next) => next,
                None => continue,
            },
        };
        match leased {
            Ok(Some(lease)) => {
                found = true;
                let runtime = Arc::clone(&runtime);
                let handler = Arc::clone(&handler);
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    run_job(&runtime, handler, lease, shutdown).await;
                    drop(slot);
                });
            }
            Ok(None) => found = false,
            Err(e) => {
                found = false;
                tracing::warn!(kind, error = %e, "leasing a job failed");
            }
        }
    }
}

/// Why a job's handler was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// An admin cancelled the job.
    Cancel,
    /// Another worker has the lease now.
    Lost,
    /// This process is stopping.
    Shutdown,
}

/// Runs one leased job to its end.
async fn run_job(
    runtime: &Runtime,
    handler: Arc<dyn JobHandler>,
    lease: Lease,
    shutdown: CancellationToken,
) {
    let config = &runtime.config;
    let ctx = JobContext::new(shutdown.child_token(), lease.job.attempts);
    runtime.publish(&lease.job).await;

    let work = {
        let job = lease.job.clone();
        let ctx = ctx.clone();
        async move {
            AssertUnwindSafe(handler.run(&job, ctx))
                .catch_unwind()
                .await
        }
    };
    tokio::pin!(work);

    let every = (config.lease / 3).max(Duration::from_millis(10));
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stop: Option<Stop> = None;
    // When to stop waiting for a handler that was asked to stop.
    let mut give_up: Option<Instant> = None;
    let mut last_published: Option<Instant> = None;
    let mut publish_at: Option<Instant> = None;
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);

    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break Some(outcome),
            _ = heartbeat.tick(), if stop != Some(Stop::Lost) => {
                let progress = ctx.take_unsent();
                match runtime.queue.heartbeat(&lease, progress.as_ref(), config.lease).await {
                    Ok(Heartbeat::Extended) => {}
                    Ok(Heartbeat::CancelRequested) => {
                        if stop.is_none() {
                            stop = Some(Stop::Cancel);
                            ctx.inner.token.cancel();
                            give_up = Some(Instant::now() + config.drain);
                        }
                    }
                    Ok(Heartbeat::Lost) => {
                        tracing::warn!(job = %lease.job.id, kind = lease.job.kind, "job lease lost");
                        stop = Some(Stop::Lost);
                        ctx.inner.token.cancel();
                        give_up.get_or_insert_with(|| Instant::now() + config.drain);
                    }
                    Err(e) => {
                        tracing::warn!(job = %lease.job.id, error = %e, "job heartbeat failed");
                        if progress.is_some() {
                            ctx.mark_unsent();
                        }
                    }
                }
            }
            () = shutdown.cancelled(), if stop.is_none() => {
                stop = Some(Stop::Shutdown);
                give_up = Some(Instant::now() + config.drain);
            }
            () = ctx.inner.changed.notified() => {
                let now = Instant::now();
                let at = last_published.map_or(now, |t| (t + PROGRESS_EVERY).max(now));
                publish_at.get_or_insert(at);
            }
            () = tokio::time::sleep_until(publish_at.unwrap_or_else(far)), if publish_at.is_some() => {
                publish_at = None;
                last_published = Some(Instant::now());
                runtime.publish(&with_progress(&lease.job, ctx.latest())).await;
            }
            () = tokio::time::sleep_until(give_up.unwrap_or_else(far)), if give_up.is_some() => {
                break None;
            }
        }
    };

    // The handler's token is a child of `shutdown`: the handler may return before this loop
    // saw the shutdown itself.
    if stop.is_none() && shutdown.is_cancelled() {
        stop = Some(Stop::Shutdown);
    }
    let failure = match outcome {
        Some(Ok(Ok(result))) => {
            match runtime.queue.complete(&lease, result).await {
                Ok(true) => {
                    runtime.observe(&lease.job.kind, RunOutcome::Succeeded);
                    let mut job = with_progress(&lease.job, ctx.latest());
                    job.state = JobState::Succeeded;
                    job.error = None;
                    runtime.publish(&job).await;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = %lease.job.id, error = %e, "completing a job failed")
                }
            }
            return;
        }
        Some(Ok(Err(failure))) => failure,
        Some(Err(panic)) => JobFailure::Retry(format!("handler panicked: {}", panic_text(&*panic))),
        None => JobFailure::Retry("the handler did not stop in time".to_owned()),
    };
    match stop {
        Some(Stop::Cancel) => match runtime.queue.cancelled(&lease).await {
            Ok(true) => {
                let mut job = with_progress(&lease.job, ctx.latest());
                job.state = JobState::Cancelled;
                runtime.publish(&job).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = %lease.job.id, error = %e, "recording a cancellation failed")
            }
        },
        // The lease is someone else's, or left to expire so the job runs after the restart.
        Some(Stop::Lost | Stop::Shutdown) => {}
        None => {
            let (retry, error) = match &failure {
                JobFailure::Retry(e) => (true, e.as_str()),
                JobFailure::Fatal(e) => (false, e.as_str()),
            };
            tracing::info!(job = %lease.job.id, kind = lease.job.kind, attempt = lease.job.attempts, retry, error, "job attempt failed");
            let backoff = config.backoff(lease.job.attempts);
            match runtime.queue.fail(&lease, error, retry, backoff).await {
                Ok(Some(job)) => {
                    let outcome = if job.state == JobState::Queued {
                        RunOutcome::Retried
                    } else {
                        RunOutcome::Failed
                    };
                    runtime.observe(&job.kind, outcome);
                    runtime.publish(&with_progress(&job, ctx.latest())).await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %lease.job.id, error = %e, "recording a failure failed")
                }
            }
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn with_progress(job: &Job, progress: Option<Progress>) -> Job {
    let mut job = job.clone();
    if let Some(progress) = progress {
        job.progress = progress.percent;
        job.progress_message = progress.message;
    }
    job
}

/// What `job.updated` events carry.
pub fn job_event_data(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "created_by": job.created_by,
    })
}

impl Runtime {
    fn observe(&self, kind: &str, outcome: RunOutcome) {
        if let Some(observer) = &self.observer {
            observer(kind, outcome);
        }
    }

    /// Publishes a job's state to the jobs topic and to its creator's.
    async fn publish(&self, job: &Job) {
        let data = job_event_data(job);
        if let Some(user) = job.created_by {
            let event = Envelope::new(user_topic(user), JOB_UPDATED, data.clone());
            if let Err(e) = self.events.publish(event).await {
                tracing::warn!(job = %job.id, error = %e, "publishing a job update failed");
            }
        }
        if let Err(e) = self
            .events
            .publish(Envelope::new(JOBS_TOPIC, JOB_UPDATED, data))
            .await
        {
            tracing::warn!(job = %job.id, error = %e, "publishing a job update failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let config = WorkerConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..WorkerConfig::default()
        };
        for _ in 0..200 {
            assert!(config.backoff(1) <= Duration::from_millis(100));
            assert!(config.backoff(3) <= Duration::from_millis(400));
            assert!(config.backoff(40) <= Duration::from_millis(1000));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| config.backoff(5)).collect();
        assert!(spread.len() > 10, "random, not fixed");
    }

    #[test]
    fn panics_are_described() {
        let panic = std::panic::catch_unwind(|| std::panic::panic_any("boom")).unwrap_err();
        assert_eq!(panic_text(&*panic), "boom");
        let panic =
            std::panic::catch_unwind(|| std::panic::panic_any(format!("n = {}", 3))).unwrap_err();
        assert_eq!(panic_text(&*panic), "n = 3");
    }
}
