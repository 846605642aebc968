//! The background jobs this process runs, and their handlers: each adapts a service's
//! operation to the job queue's [`JobHandler`] (payload in, progress and cancellation
//! through the [`JobContext`], failures classified for retries). Every handler is
//! idempotent: a job whose worker died runs again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_auth::{AuthService, PURGE_USER_JOB, PurgeRun};
use confab_bus::{Job, JobContext, JobFailure, JobHandler, Workers};
use confab_chat::{ChatService, TITLE_JOB, TitleJob};
use confab_files::service::{FileJob, FilesService, JobOutcome, SCAN_JOB, VARIANTS_JOB};
use confab_inference::pulls::{PULL_JOB, PullJobError, Pulls};
use confab_seo::{GENERATE_JOB, GenerateJob, SeoService};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Every job kind the code enqueues: the only values of the metrics' `kind` label.
pub const KINDS: [&str; 6] = [
    PULL_JOB,
    TITLE_JOB,
    GENERATE_JOB,
    PURGE_USER_JOB,
    SCAN_JOB,
    VARIANTS_JOB,
];

/// The services whose jobs this process runs (`None`: not in this process).
#[derive(Default)]
pub struct Handlers {
    pub auth: Option<Arc<AuthService>>,
    pub chat: Option<Arc<ChatService>>,
    pub pulls: Option<Arc<Pulls>>,
    pub seo: Option<Arc<SeoService>>,
    pub files: Option<Arc<FilesService>>,
}

/// Registers the handlers of the services in `handlers`, with `concurrency` jobs of each kind
/// at a time, and answers the kinds it registered. A job kind nobody here handles waits for a
/// process that does.
pub fn register(
    workers: &mut Workers,
    concurrency: usize,
    handlers: Handlers,
) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if let Some(pulls) = handlers.pulls {
        workers.register(PULL_JOB, concurrency, Arc::new(PullHandler { pulls }));
        kinds.push(PULL_JOB);
    }
    if let Some(chat) = &handlers.chat {
        workers.register(
            TITLE_JOB,
            concurrency,
            Arc::new(TitleHandler { chat: chat.clone() }),
        );
        kinds.push(TITLE_JOB);
    }
    if let Some(seo) = &handlers.seo {
        workers.register(
            GENERATE_JOB,
            concurrency,
            Arc::new(GenerateHandler { seo: seo.clone() }),
        );
        kinds.push(GENERATE_JOB);
    }
    if let Some(files) = &handlers.files {
        workers.register(
            SCAN_JOB,
            concurrency,
            Arc::new(FilesHandler {
                files: files.clone(),
                scan: true,
            }),
        );
        workers.register(
            VARIANTS_JOB,
            concurrency,
            Arc::new(FilesHandler {
                files: files.clone(),
                scan: false,
            }),
        );
        kinds.extend([SCAN_JOB, VARIANTS_JOB]);
    }
    // The purge asks every service for its part through durable events; it runs where the
    // accounts are.
    if let Some(auth) = handlers.auth {
        workers.register(
            PURGE_USER_JOB,
            concurrency,
            Arc::new(PurgeUserHandler { auth }),
        );
        kinds.push(PURGE_USER_JOB);
    }
    kinds
}

fn payload<T: for<'de> Deserialize<'de>>(job: &Job) -> Result<T, JobFailure> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| JobFailure::Fatal(format!("bad payload for {}: {e}", job.kind)))
}

/// `model.pull`: downloads a model (resuming its partial file), with progress.
struct PullHandler {
    pulls: Arc<Pulls>,
}

#[derive(Deserialize)]
struct PullPayload {
    pull_id: Uuid,
}

#[async_trait]
impl JobHandler for PullHandler {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let PullPayload { pull_id } = payload(job)?;
        let last_attempt = ctx.attempt() >= job.max_attempts;
        let reporter = ctx.clone();
        self.pulls
            .run_job(
                pull_id,
                ctx.cancelled().clone(),
                last_attempt,
                move |percent, message| reporter.progress(percent, Some(&message)),
            )
            .await
            .map_err(|e| match e {
                PullJobError::Retry(message) => JobFailure::Retry(message),
                PullJobError::Fatal(message) => JobFailure::Fatal(message),
            })
    }
}

/// `chat.title`: names a conversation after its first exchange.
struct TitleHandler {
    chat: Arc<ChatService>,
}

#[async_trait]
impl JobHandler for TitleHandler {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<Value, JobFailure> {
        let title: TitleJob = payload(job)?;
        match self.chat.run_title_job(&title).await {
            Ok(title) => Ok(json!({ "title": title })),
            Err(e) => Err(JobFailure::Retry(e.to_string())),
        }
    }
}

/// `seo.generate`: writes a project's metadata package, with progress. A retaken job whose
/// version was stored already returns it.
struct GenerateHandler {
    seo: Arc<SeoService>,
}

#[async_trait]
impl JobHandler for GenerateHandler {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let payload: GenerateJob = payload(job)?;
        let reporter = ctx.clone();
        let generated = self
            .seo
            .run_generation(
                job.id,
                &payload,
                ctx.cancelled().clone(),
                Box::new(move |percent, message| reporter.progress(Some(percent), Some(message))),
            )
            .await
            // The job's error is shown to its owner: the safe message (the service logged
            // the detail).
            .map_err(|e| {
                if e.retryable() {
                    JobFailure::Retry(e.public_message())
                } else {
                    JobFailure::Fatal(e.public_message())
                }
            })?;
        Ok(json!({
            "version": generated.version.number,
            "score": generated.version.score,
            "stats": generated.stats,
        }))
    }
}

/// `files.scan` (a pending file through the virus scanner; retried while it is down) and
/// `files.variants` (an image's thumbnail and preview).
struct FilesHandler {
    files: Arc<FilesService>,
    scan: bool,
}

#[async_trait]
impl JobHandler for FilesHandler {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<Value, JobFailure> {
        let file: FileJob = payload(job)?;
        let outcome = if self.scan {
            self.files.run_scan(&file).await
        } else {
            self.files.run_variants(&file).await
        };
        match outcome {
            JobOutcome::Done(value) => Ok(value),
            JobOutcome::Retry(message) => Err(JobFailure::Retry(message)),
            JobOutcome::Fatal(message) => Err(JobFailure::Fatal(message)),
        }
    }
}

/// `user.purge`: asks every data-holding service to delete a deleted user's data (a durable
/// event each handles for its own tables), waits for their answers, then deletes the account
/// (`AuthService::run_purge`). An attempt waits up to [`PURGE_WAIT`] with heartbeats and
/// progress naming the services still silent; then it is retried with backoff, so a service
/// that is down delays the deletion without failing it (the job has 48 attempts).
struct PurgeUserHandler {
    auth: Arc<AuthService>,
}

/// How long one attempt of `user.purge` waits for the services' answers.
const PURGE_WAIT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct PurgePayload {
    user_id: Uuid,
}

#[async_trait]
impl JobHandler for PurgeUserHandler {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let PurgePayload { user_id } = payload(job)?;
        ctx.progress(
            Some(0.0),
            Some("asking the services to delete the user's data"),
        );
        let reporter = ctx.clone();
        let report =
            move |percent: f64, message: &str| reporter.progress(Some(percent), Some(message));
        let run = tokio::select! {
            run = self.auth.run_purge(user_id, PURGE_WAIT, &report) => run,
            () = ctx.cancelled().cancelled() => {
                return Err(JobFailure::Retry("interrupted while waiting for the services".into()));
            }
        };
        match run.map_err(|e| JobFailure::Retry(e.to_string()))? {
            PurgeRun::Done {
                account_deleted,
                services,
            } => Ok(json!({
                "account_deleted": account_deleted,
                "services": services,
            })),
            PurgeRun::Waiting { missing } => Err(JobFailure::Retry(format!(
                "waiting for {} to delete the user's data",
                missing.join(", ")
            ))),
        }
    }
}
