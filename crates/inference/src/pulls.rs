//! Model pulls as background jobs: started by an admin, run on the process's task tracker,
//! reporting progress (bytes, total, percent, rate) that clients poll or subscribe to, and
//! recorded in the database so a pull interrupted by a restart resumes (its partial file is
//! continued with a range request).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_store::{Db, StoreError};
use parking_lot::Mutex;
use serde::Serialize;
use sqlx::Row;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;
use uuid::Uuid;

use confab_bus::events::ModelPulled;
use confab_bus::{Envelope, EventBus, JobError, JobQueue, JobState, NewJob};
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::extract::ClientMeta;

use crate::models::{ModelStore, Source};
use crate::ollama::OllamaClient;

/// The prefix of a source pulled by an Ollama provider: `ollama:<provider>/<model>`.
pub const OLLAMA_PREFIX: &str = "ollama:";

/// What a pull fetches: a GGUF into the local store, or a model onto an Ollama server.
#[derive(Debug, Clone)]
enum Target {
    Local(Source),
    Ollama {
        client: Arc<OllamaClient>,
        model: String,
    },
}

impl Target {
    fn model_name(&self) -> String {
        match self {
            Target::Local(source) => source.model_name(),
            Target::Ollama { client, model } => format!("{OLLAMA_PREFIX}{}/{model}", client.name),
        }
    }
}

/// Where a pull stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl PullState {
    fn as_str(self) -> &'static str {
        match self {
            PullState::Queued => "queued",
            PullState::Running => "running",
            PullState::Completed => "completed",
            PullState::Failed => "failed",
            PullState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => PullState::Queued,
            "running" => PullState::Running,
            "completed" => PullState::Completed,
            "cancelled" => PullState::Cancelled,
            _ => PullState::Failed,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            PullState::Completed | PullState::Failed | PullState::Cancelled
        )
    }
}

/// A pull as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PullStatus {
    pub id: Uuid,
    pub source: String,
    pub model: String,
    pub state: PullState,
    pub bytes: u64,
    pub total: Option<u64>,
    pub percent: Option<f64>,
    /// Bytes per second.
    pub rate: f64,
    pub error: Option<String>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

struct Job {
    status: watch::Sender<PullStatus>,
    cancel: CancellationToken,
}

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

/// How one run of a pull ended.
enum Ended {
    Completed,
    /// Why, and whether another attempt cannot help (a refused source, a file too large).
    Failed(String, bool),
    Cancelled,
    /// The process is stopping: the pull stays running for the next start.
    Shutdown,
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
    db: Option<Db>,
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
        db: Option<Db>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            ollama,
            db,
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
        if let Some(db) = &self.db {
            sqlx::query("UPDATE model_pulls SET job_id = $1 WHERE id = $2")
                .bind(job.id.to_string())
                .bind(id.to_string())
                .execute(db.pool())
                .await
                .map_err(StoreError::from)?;
        }
        Ok(())
    }

    /// Restarts pulls that were queued or running when the process stopped. With a job queue
    /// their jobs do that (an expired lease is retaken); only a pull whose job is missing or
    /// ended (recorded before jobs, or cut off between the row and its job) is queued again.
    pub async fn resume_interrupted(self: &Arc<Self>) -> Result<usize, PullError> {
        let Some(db) = &self.db else { return Ok(0) };
        let rows = sqlx::query(
            "SELECT id, source, sha256, model, created_at, job_id, created_by FROM model_pulls \
             WHERE state IN ('queued', 'running')",
        )
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
        let mut resumed = 0;
        for row in rows {
            let id: String = row.try_get("id").map_err(StoreError::from)?;
            let Ok(id) = Uuid::parse_str(&id) else {
                continue;
            };
            if let Some(queue) = self.queue.get() {
                let job_id: Option<String> = row.try_get("job_id").map_err(StoreError::from)?;
                let job = match job_id.and_then(|j| Uuid::parse_str(&j).ok()) {
                    Some(job_id) => queue.get(job_id).await.ok().flatten(),
                    None => None,
                };
                if job.is_none_or(|j| j.state.is_final()) {
                    let actor: Option<String> =
                        row.try_get("created_by").map_err(StoreError::from)?;
                    let actor = actor.and_then(|a| Uuid::parse_str(&a).ok());
                    tracing::info!(%id, "queueing an interrupted model pull again");
                    self.enqueue(queue, id, actor).await?;
                    resumed += 1;
                }
                continue;
            }
            let source: String = row.try_get("source").map_err(StoreError::from)?;
            let sha256: Option<String> = row.try_get("sha256").map_err(StoreError::from)?;
            let created_at: i64 = row.try_get("created_at").map_err(StoreError::from)?;
            match self.target(&source) {
                Ok(parsed) => {
                    tracing::info!(%id, %source, "resuming an interrupted model pull");
                    self.launch(id, source, parsed, sha256, created_at);
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
        if let Some(db) = &self.db {
            sqlx::query(
                "INSERT INTO model_pulls (id, source, sha256, model, state, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6)",
            )
            .bind(id.to_string())
            .bind(source)
            .bind(sha256.clone())
            .bind(parsed.model_name())
            .bind(actor.map(|a| a.to_string()))
            .bind(now)
            .execute(db.pool())
            .await
            .map_err(StoreError::from)?;
        }
        if let Some(queue) = self.queue.get()
            && self.db.is_some()
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
        let Some(db) = &self.db else {
            return Err(PullJobError::Fatal("pull jobs need the database".into()));
        };
        let row = sqlx::query(
            "SELECT id, source, sha256, model, state, bytes, total, error, created_at FROM model_pulls WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await
        .map_err(|e| PullJobError::Retry(e.to_string()))?;
        let Some(row) = row else {
            return Ok(serde_json::json!({"skipped": "no such pull"}));
        };
        let recorded = row_status(&row).map_err(|e| PullJobError::Retry(e.to_string()))?;
        if recorded.state.is_final() {
            return Ok(serde_json::json!({"state": recorded.state}));
        }
        let sha256: Option<String> = row
            .try_get("sha256")
            .map_err(|e| PullJobError::Retry(e.to_string()))?;
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
        match ended {
            Ended::Completed => {
                let model = job.status.borrow().model.clone();
                Ok(serde_json::json!({"model": model}))
            }
            Ended::Shutdown => Err(PullJobError::Retry("the server stopped".into())),
            Ended::Cancelled => {
                self.finish(id, &job, PullState::Cancelled, None).await;
                Err(PullJobError::Fatal("cancelled".into()))
            }
            Ended::Failed(error, permanent) if last_attempt || permanent => {
                self.finish(id, &job, PullState::Failed, Some(error.clone()))
                    .await;
                Err(PullJobError::Fatal(error))
            }
            Ended::Failed(error, _) => {
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
                PullState::Completed => ("model.pull_completed", Outcome::Success),
                PullState::Cancelled => ("model.pull_cancelled", Outcome::Success),
                _ => ("model.pull_failed", Outcome::Failure),
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

    /// Reads a source: `ollama:<provider>/<model>` for an Ollama provider, else a GGUF source
    /// for the local store (an URL, `org/repo/file.gguf` on Hugging Face, or a file in the
    /// import directory: pulls come from the API, which may not name other server paths).
    fn target(&self, source: &str) -> Result<Target, PullError> {
        let Some(rest) = source.trim().strip_prefix(OLLAMA_PREFIX) else {
            let import_dir = self.store.settings().import_dir.as_deref();
            return Ok(Target::Local(Source::parse_confined(source, import_dir)?));
        };
        let (provider, model) = rest.split_once('/').unwrap_or(("", rest));
        if model.is_empty() {
            return Err(PullError::Provider(format!(
                "`{source}`: write ollama:<provider>/<model>, e.g. ollama:ollama/llama3.2"
            )));
        }
        let client = self.ollama.get(provider).ok_or_else(|| {
            let mut known: Vec<&str> = self.ollama.keys().map(String::as_str).collect();
            known.sort_unstable();
            PullError::Provider(format!(
                "no Ollama provider named `{provider}` (configured: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        Ok(Target::Ollama {
            client: client.clone(),
            model: model.to_owned(),
        })
    }

    /// The Ollama provider and model a name like `ollama:<provider>/<model>` stands for.
    pub fn ollama_model(&self, name: &str) -> Option<(Arc<OllamaClient>, String)> {
        if !name.trim().starts_with(OLLAMA_PREFIX) {
            return None;
        }
        match self.target(name).ok()? {
            Target::Ollama { client, model } => Some((client, model)),
            Target::Local(_) => None,
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

    /// Pulls a GGUF into the local store; the model's size when done, else why not and
    /// whether that is permanent.
    async fn pull_local(
        &self,
        source: &Source,
        sha256: Option<&str>,
        status: &watch::Sender<PullStatus>,
    ) -> Result<Option<u64>, (String, bool)> {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let model = self
            .store
            .pull(source, sha256, |p| {
                if last_sent.elapsed() >= Duration::from_millis(200) || p.total == Some(p.bytes) {
                    last_sent = Instant::now();
                    status.send_modify(|s| {
                        s.bytes = p.bytes;
                        s.total = p.total;
                        s.percent = p.percent();
                        s.rate = p.rate;
                    });
                }
            })
            .await
            .map_err(|e| (e.to_string(), e.is_permanent()))?;
        Ok(Some(model.size_bytes))
    }

    /// Has an Ollama server pull `model`, relaying its progress. Ollama downloads a model as
    /// several layers and reports each (`completed` of `total` bytes); the status shows the
    /// layer in progress, and Ollama itself resumes a pull that was cut off.
    async fn pull_ollama(
        client: &OllamaClient,
        model: &str,
        status: &watch::Sender<PullStatus>,
    ) -> Result<Option<u64>, (String, bool)> {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let mut layer: Option<(String, Instant)> = None;
        client
            .pull(model, |step| {
                let (Some(digest), Some(total)) = (step.digest.clone(), step.total) else {
                    return;
                };
                let completed = step.completed.unwrap_or(0);
                if layer.as_ref().is_none_or(|(d, _)| *d != digest) {
                    layer = Some((digest, Instant::now()));
                }
                let started = layer.as_ref().map_or_else(Instant::now, |(_, at)| *at);
                if last_sent.elapsed() >= Duration::from_millis(200) || completed == total {
                    last_sent = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    status.send_modify(|s| {
                        s.bytes = completed;
                        s.total = Some(total);
                        s.percent = (total > 0).then(|| completed as f64 * 100.0 / total as f64);
                        s.rate = if secs > 0.0 {
                            completed as f64 / secs
                        } else {
                            0.0
                        };
                    });
                }
            })
            .await
            .map_err(|e| (e.to_string(), false))?;
        Ok(None)
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
        let Some(db) = &self.db else { return };
        let result = sqlx::query(
            "UPDATE model_pulls SET state = $1, bytes = $2, total = $3, error = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(state.as_str())
        .bind(confab_store::to_i64(bytes))
        .bind(total.map(confab_store::to_i64))
        .bind(error)
        .bind(confab_core::now_ms())
        .bind(id.to_string())
        .execute(db.pool())
        .await;
        if let Err(e) = result {
            tracing::warn!(%id, error = %e, "cannot record a model pull's state");
        }
    }

    /// A pull's status: live if it runs in this process, else as recorded.
    pub async fn status(&self, id: Uuid) -> Result<Option<PullStatus>, PullError> {
        if let Some(job) = self.jobs.lock().get(&id) {
            return Ok(Some(job.status.borrow().clone()));
        }
        let Some(db) = &self.db else { return Ok(None) };
        let row = sqlx::query(
            "SELECT id, source, model, state, bytes, total, error, created_at FROM model_pulls WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)?;
        row.map(|row| row_status(&row))
            .transpose()
            .map_err(|e| PullError::Store(e.into()))
    }

    /// Recent pulls, newest first.
    pub async fn list(&self) -> Result<Vec<PullStatus>, PullError> {
        let Some(db) = &self.db else {
            return Ok(self
                .jobs
                .lock()
                .values()
                .map(|j| j.status.borrow().clone())
                .collect());
        };
        let rows = sqlx::query(
            "SELECT id, source, model, state, bytes, total, error, created_at FROM model_pulls \
             ORDER BY created_at DESC LIMIT 100",
        )
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
        let mut out = Vec::new();
        for row in rows {
            let recorded = row_status(&row).map_err(|e| PullError::Store(e.into()))?;
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
        let (Some(queue), Some(db)) = (self.queue.get(), &self.db) else {
            return Ok(local.is_some_and(|j| j.cancel.is_cancelled()));
        };
        let row = sqlx::query("SELECT state, job_id FROM model_pulls WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(db.pool())
            .await
            .map_err(StoreError::from)?;
        let Some(row) = row else { return Ok(false) };
        let state = PullState::parse(
            &row.try_get::<String, _>("state")
                .map_err(StoreError::from)?,
        );
        if state.is_final() {
            return Ok(false);
        }
        let job_id: Option<String> = row.try_get("job_id").map_err(StoreError::from)?;
        if let Some(job_id) = job_id.and_then(|j| Uuid::parse_str(&j).ok()) {
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

fn row_status(row: &sqlx::any::AnyRow) -> Result<PullStatus, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let bytes = u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0);
    let total = row
        .try_get::<Option<i64>, _>("total")?
        .and_then(|t| u64::try_from(t).ok());
    Ok(PullStatus {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        source: row.try_get("source")?,
        model: row.try_get("model")?,
        state: PullState::parse(&row.try_get::<String, _>("state")?),
        bytes,
        total,
        percent: total
            .filter(|t| *t > 0)
            .map(|t| bytes as f64 * 100.0 / t as f64),
        rate: 0.0,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
    })
}
