//! Model pulls as background jobs: started by an admin, run on the process's task tracker,
//! reporting progress (bytes, total, percent, rate) that clients poll or subscribe to, and
//! recorded in the database so a pull interrupted by a restart resumes (its partial file is
//! continued with a range request).
//!
//! Where a pull stands and how a run's end moves it on are pure ([`state`]); fetching is in
//! `fetch.rs`; the records are kept through the [`PullStore`] port, whose SQL adapter is
//! [`SqlPullStore`] (`model_pulls`).

mod fetch;
pub mod state;
mod store;

use crate::actions::ModelAction;
use std::collections::HashMap;
use std::sync::Arc;

use confab_store::StoreError;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use confab_bus::events::ModelPulled;
use confab_bus::{Envelope, EventBus, JobError, JobQueue, JobState, NewJob};
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::extract::ClientMeta;

use crate::models::ModelStore;
use crate::ollama::OllamaClient;
use crate::ports::PullStore;
use fetch::Target;
use state::{Ended, Next};

pub use state::{NewPull, PullProgress, PullRecord, PullState, PullStatus};
pub use store::SqlPullStore;

/// The prefix of a source pulled by an Ollama provider: `ollama:<provider>/<model>`.
pub const OLLAMA_PREFIX: &str = "ollama:";

struct Job {
    status: watch::Sender<PullStatus>,
    cancel: CancellationToken,
}

/// Pulls listed at most, newest first.
const LISTED: usize = 100;

/// The job kind of a model pull (payload `{"pull_id": …}`).
pub const PULL_JOB: &str = "model.pull";

/// How a pull run as a job ended badly.
#[derive(Debug, Clone, PartialEq)]
pub enum PullJobError {
    /// Worth another attempt (network, server errors); the pull is queued again.
    Retry(String),
    /// Not worth another attempt (a bad source, a checksum mismatch, cancelled).
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Source(#[from] crate::models::ModelStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Provider(String),
}

pub struct Pulls {
    store: ModelStore,
    /// Ollama providers by name, for `ollama:` sources.
    ollama: HashMap<String, Arc<OllamaClient>>,
    /// Where pulls are recorded; `None` (the CLI): only in this process, not resumed.
    records: Option<Arc<dyn PullStore>>,
    jobs: Mutex<HashMap<Uuid, Arc<Job>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Where pulls are queued as durable [`PULL_JOB`]s; unset: they run on `tasks`.
    queue: std::sync::OnceLock<Arc<dyn JobQueue>>,
    /// Where pulls that end are recorded.
    audit: std::sync::OnceLock<Arc<dyn AuditLog>>,
    /// Where `model.pulled` is published.
    events: std::sync::OnceLock<Arc<dyn EventBus>>,
}

impl std::fmt::Debug for Pulls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulls").finish_non_exhaustive()
    }
}

impl Pulls {
    pub fn new(
        store: ModelStore,
        ollama: HashMap<String, Arc<OllamaClient>>,
        records: Option<Arc<dyn PullStore>>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            ollama,
            records,
            jobs: Mutex::new(HashMap::new()),
            tasks,
            shutdown,
            queue: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Publishes `model.pulled` on `events` when a pull completes, from now on.
    pub fn use_events(&self, events: Arc<dyn EventBus>) {
        let _ = self.events.set(events);
    }

    /// Records how each pull ends in `audit` from now on.
    pub fn use_audit(&self, audit: Arc<dyn AuditLog>) {
        let _ = self.audit.set(audit);
    }

    /// Runs pulls as durable jobs on `queue` from now on (the composition root registers
    /// [`Pulls::run_job`] as the handler of [`PULL_JOB`]).
    pub fn use_jobs(&self, queue: Arc<dyn JobQueue>) {
        let _ = self.queue.set(queue);
    }

    /// Queues the job of a recorded pull and notes its id on the row.
    async fn enqueue(
        &self,
        queue: &Arc<dyn JobQueue>,
        id: Uuid,
        actor: Option<Uuid>,
    ) -> Result<(), PullError> {
        let mut job = NewJob::new(PULL_JOB, serde_json::json!({"pull_id": id})).max_attempts(3);
        if let Some(actor) = actor {
            job = job.created_by(actor);
        }
        let job = queue
            .enqueue(job)
            .await
            .map_err(|e| PullError::Provider(format!("cannot queue the pull: {e}")))?;
        if let Some(records) = &self.records {
            records.set_job(id, job.id).await?;
        }
        Ok(())
    }

    /// Restarts pulls that were queued or running when the process stopped. With a job queue
    /// their jobs do that (an expired lease is retaken); only a pull whose job is missing or
    /// ended (recorded before jobs, or cut off between the row and its job) is queued again.
    pub async fn resume_interrupted(self: &Arc<Self>) -> Result<usize, PullError> {
        let Some(records) = &self.records else {
            return Ok(0);
        };
        let mut resumed = 0;
        for pull in records.unfinished().await? {
            let id = pull.id;
            if let Some(queue) = self.queue.get() {
                let job = match pull.job_id {
                    Some(job_id) => queue.get(job_id).await.ok().flatten(),
                    None => None,
                };
                if job.is_none_or(|j| j.state.is_final()) {
                    tracing::info!(%id, "queueing an interrupted model pull again");
                    self.enqueue(queue, id, pull.created_by).await?;
                    resumed += 1;
                }
                continue;
            }
            match self.target(&pull.source) {
                Ok(parsed) => {
                    tracing::info!(%id, source = %pull.source, "resuming an interrupted model pull");
                    self.launch(id, pull.source, parsed, pull.sha256, pull.created_at);
                    resumed += 1;
                }
                Err(e) => {
                    self.persist_final(id, PullState::Failed, 0, None, Some(e.to_string()))
                        .await
                }
            }
        }
        Ok(resumed)
    }

    /// Starts a pull; returns its first status.
    pub async fn start(
        self: &Arc<Self>,
        source: &str,
        sha256: Option<String>,
        actor: Option<Uuid>,
    ) -> Result<PullStatus, PullError> {
        let parsed = self.target(source)?;
        if let Target::Local(local) = &parsed {
            // A refused target is answered now, not as a failed pull later.
            self.store.check(local).await?;
        }
        let id = Uuid::now_v7();
        let now = confab_core::now_ms();
        if let Some(records) = &self.records {
            records
                .insert(&NewPull {
                    id,
                    source: source.to_owned(),
                    sha256: sha256.clone(),
                    model: parsed.model_name(),
                    created_by: actor,
                    created_at: now,
                })
                .await?;
        }
        if let Some(queue) = self.queue.get()
            && self.records.is_some()
        {
            let status = self.initial_status(id, source.to_owned(), &parsed, now);
            self.track(id, status.clone());
            self.enqueue(queue, id, actor).await?;
            return Ok(status);
        }
        Ok(self.launch(id, source.to_owned(), parsed, sha256, now))
    }

    fn initial_status(
        &self,
        id: Uuid,
        source: String,
        target: &Target,
        created_at: i64,
    ) -> PullStatus {
        PullStatus {
            id,
            source,
            model: target.model_name(),
            state: PullState::Queued,
            bytes: 0,
            total: None,
            percent: None,
            rate: 0.0,
            error: None,
            created_at,
        }
    }

    /// The live status of a pull in this process (made on first use).
    fn track(&self, id: Uuid, status: PullStatus) -> Arc<Job> {
        self.jobs
            .lock()
            .entry(id)
            .or_insert_with(|| {
                let (sender, _) = watch::channel(status);
                Arc::new(Job {
                    status: sender,
                    cancel: self.shutdown.child_token(),
                })
            })
            .clone()
    }

    /// Runs the pull `id` as a job: resumes its partial file, relays progress to `progress`
    /// (percent, message) and to status subscribers, and records how it ended. `cancel`
    /// fires on an admin's cancellation (or the process stopping). `last_attempt`: a failure
    /// now is final. Idempotent: a pull already ended is left alone.
    pub async fn run_job(
        &self,
        id: Uuid,
        cancel: CancellationToken,
        last_attempt: bool,
        progress: impl Fn(Option<f64>, String) + Send + Sync,
    ) -> Result<serde_json::Value, PullJobError> {
        let Some(records) = &self.records else {
            return Err(PullJobError::Fatal("pull jobs need the database".into()));
        };
        let pull = records
            .get(id)
            .await
            .map_err(|e| PullJobError::Retry(e.to_string()))?;
        let Some(pull) = pull else {
            return Ok(serde_json::json!({"skipped": "no such pull"}));
        };
        if pull.state.is_final() {
            return Ok(serde_json::json!({"state": pull.state}));
        }
        let recorded = pull.status();
        let sha256 = pull.sha256;
        let target = match self.target(&recorded.source) {
            Ok(t) => t,
            Err(e) => {
                self.persist_final(id, PullState::Failed, 0, None, Some(e.to_string()))
                    .await;
                return Err(PullJobError::Fatal(e.to_string()));
            }
        };
        let job = self.track(id, recorded);
        // The job's token and this pull's own (cancelled by `cancel` here) both stop it.
        let own = job.cancel.clone();
        let stop = CancellationToken::new();
        let relay = {
            let stop = stop.clone();
            let own = own.clone();
            async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = own.cancelled() => {}
                }
                stop.cancel();
            }
        };
        let mut updates = job.status.subscribe();
        let forward = async {
            while updates.changed().await.is_ok() {
                let s = updates.borrow_and_update().clone();
                let message = match s.total {
                    Some(total) => format!("{} of {} bytes", s.bytes, total),
                    None => format!("{} bytes", s.bytes),
                };
                progress(s.percent, message);
            }
        };
        let ended = tokio::select! {
            ended = self.execute(id, &target, sha256.as_deref(), &job, &stop) => ended,
            () = relay => Ended::Cancelled,
            () = forward => Ended::Shutdown,
        };
        let ended = match ended {
            Ended::Cancelled if self.shutdown.is_cancelled() => Ended::Shutdown,
            other => other,
        };
        match ended.next(last_attempt) {
            Next::Done => {
                let model = job.status.borrow().model.clone();
                Ok(serde_json::json!({"model": model}))
            }
            Next::Interrupted => Err(PullJobError::Retry("the server stopped".into())),
            Next::End(state, error) => {
                self.finish(id, &job, state, error.clone()).await;
                Err(PullJobError::Fatal(
                    error.unwrap_or_else(|| state.as_str().to_owned()),
                ))
            }
            Next::Requeue(error) => {
                // Queued again by the job; the status says why meanwhile.
                job.status.send_modify(|s| {
                    s.state = PullState::Queued;
                    s.error = Some(error.clone());
                });
                let (bytes, total) = {
                    let s = job.status.borrow();
                    (s.bytes, s.total)
                };
                self.persist_final(id, PullState::Queued, bytes, total, Some(error.clone()))
                    .await;
                Err(PullJobError::Retry(error))
            }
        }
    }

    /// Records a final state, live and in the row.
    async fn finish(&self, id: Uuid, job: &Job, state: PullState, error: Option<String>) {
        job.status.send_modify(|s| {
            s.state = state;
            s.error = error.clone();
        });
        let (bytes, total) = {
            let s = job.status.borrow();
            (s.bytes, s.total)
        };
        self.persist_final(id, state, bytes, total, error.clone())
            .await;
        tracing::info!(%id, state = state.as_str(), "model pull ended");
        if state == PullState::Completed
            && let Some(events) = self.events.get()
        {
            let model = job.status.borrow().model.clone();
            let pulled = ModelPulled {
                pull_id: id,
                model,
                bytes,
            };
            if let Err(e) = events.publish(Envelope::typed(&pulled)).await {
                tracing::warn!(%id, error = %e, "model.pulled not published");
            }
        }
        if let Some(audit) = self.audit.get() {
            let (action, outcome) = match state {
                PullState::Completed => (ModelAction::PullCompleted, Outcome::Success),
                PullState::Cancelled => (ModelAction::PullCancelled, Outcome::Success),
                _ => (ModelAction::PullFailed, Outcome::Failure),
            };
            let model = job.status.borrow().model.clone();
            let _ = audit
                .record(
                    AuditEvent::new(action, outcome, &ClientMeta::default())
                        .target(model)
                        .details(serde_json::json!({"pull": id, "bytes": bytes, "error": error})),
                )
                .await;
        }
    }

    /// One run of a pull until it ends or `stop` fires; records `running` and `completed`.
    async fn execute(
        &self,
        id: Uuid,
        target: &Target,
        sha256: Option<&str>,
        job: &Job,
        stop: &CancellationToken,
    ) -> Ended {
        job.status.send_modify(|s| {
            s.state = PullState::Running;
            s.error = None;
        });
        self.persist_progress(id, PullState::Running, 0, None).await;
        let status = job.status.clone();
        let pull = async {
            match target {
                Target::Local(source) => self.pull_local(source, sha256, &status).await,
                Target::Ollama { client, model } => Self::pull_ollama(client, model, &status).await,
            }
        };
        let outcome = tokio::select! {
            result = pull => Some(result),
            () = stop.cancelled() => None,
        };
        match outcome {
            Some(Ok(size)) => {
                job.status.send_modify(|s| {
                    if let Some(size) = size {
                        s.bytes = size;
                        s.total = Some(size);
                    }
                    s.percent = Some(100.0);
                });
                self.finish(id, job, PullState::Completed, None).await;
                Ended::Completed
            }
            Some(Err((error, permanent))) => Ended::Failed(error, permanent),
            None if self.shutdown.is_cancelled() => Ended::Shutdown,
            None => Ended::Cancelled,
        }
    }

    fn launch(
        self: &Arc<Self>,
        id: Uuid,
        source: String,
        parsed: Target,
        sha256: Option<String>,
        created_at: i64,
    ) -> PullStatus {
        let status = self.initial_status(id, source, &parsed, created_at);
        let job = self.track(id, status.clone());
        let this = self.clone();
        self.tasks.spawn(async move {
            let stop = job.cancel.clone();
            match this
                .execute(id, &parsed, sha256.as_deref(), &job, &stop)
                .await
            {
                Ended::Completed | Ended::Shutdown => {}
                Ended::Failed(error, _) => {
                    this.finish(id, &job, PullState::Failed, Some(error)).await;
                }
                Ended::Cancelled => this.finish(id, &job, PullState::Cancelled, None).await,
            }
        });
        status
    }

    async fn persist_progress(&self, id: Uuid, state: PullState, bytes: u64, total: Option<u64>) {
        self.persist_final(id, state, bytes, total, None).await;
    }

    async fn persist_final(
        &self,
        id: Uuid,
        state: PullState,
        bytes: u64,
        total: Option<u64>,
        error: Option<String>,
    ) {
        let Some(records) = &self.records else {
            return;
        };
        let progress = PullProgress {
            state,
            bytes,
            total,
            error,
        };
        let result = records.update(id, &progress, confab_core::now_ms()).await;
        if let Err(e) = result {
            tracing::warn!(%id, error = %e, "cannot record a model pull's state");
        }
    }

    /// A pull's status: live if it runs in this process, else as recorded.
    pub async fn status(&self, id: Uuid) -> Result<Option<PullStatus>, PullError> {
        if let Some(job) = self.jobs.lock().get(&id) {
            return Ok(Some(job.status.borrow().clone()));
        }
        let Some(records) = &self.records else {
            return Ok(None);
        };
        Ok(records.get(id).await?.map(|pull| pull.status()))
    }

    /// Recent pulls, newest first.
    pub async fn list(&self) -> Result<Vec<PullStatus>, PullError> {
        let Some(records) = &self.records else {
            return Ok(self
                .jobs
                .lock()
                .values()
                .map(|j| j.status.borrow().clone())
                .collect());
        };
        let mut out = Vec::new();
        for pull in records.recent(LISTED).await? {
            let recorded = pull.status();
            let live = self
                .jobs
                .lock()
                .get(&recorded.id)
                .map(|j| j.status.borrow().clone());
            out.push(live.unwrap_or(recorded));
        }
        Ok(out)
    }

    /// Updates of a running pull, for server-sent events.
    pub fn subscribe(&self, id: Uuid) -> Option<watch::Receiver<PullStatus>> {
        self.jobs.lock().get(&id).map(|j| j.status.subscribe())
    }

    /// Cancels a pull that has not ended (its partial file stays, so pulling again
    /// resumes); `false` when there is no such pull or it ended.
    pub async fn cancel(&self, id: Uuid) -> Result<bool, PullError> {
        let local = self.jobs.lock().get(&id).cloned();
        if let Some(job) = &local
            && !job.status.borrow().state.is_final()
        {
            // Running here: stops at once (and the job, if any, ends cancelled).
            job.cancel.cancel();
        }
        let (Some(queue), Some(records)) = (self.queue.get(), &self.records) else {
            return Ok(local.is_some_and(|j| j.cancel.is_cancelled()));
        };
        let Some(pull) = records.get(id).await? else {
            return Ok(false);
        };
        if pull.state.is_final() {
            return Ok(false);
        }
        if let Some(job_id) = pull.job_id {
            match queue.cancel(job_id).await {
                // Queued (or already stopped): nothing runs it, so the pull ends here.
                Ok(job) if job.state == JobState::Cancelled => {}
                // Running elsewhere: its worker stops at the next heartbeat and records it.
                Ok(_) => return Ok(true),
                Err(JobError::Conflict(_) | JobError::NotFound) => {}
                Err(e) => return Err(PullError::Provider(e.to_string())),
            }
        }
        match local {
            Some(job) => self.finish(id, &job, PullState::Cancelled, None).await,
            None => {
                self.persist_final(id, PullState::Cancelled, 0, None, None)
                    .await
            }
        }
        Ok(true)
    }
}
