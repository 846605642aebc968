//! The contract suite of the [`Workers`] runtime over any [`JobQueue`], run here against the
//! SQL queue: [`workers_contract`] runs every case of [`workers_cases`] (`cargo nextest run
//! -p confab-bus workers::`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_bus::{
    EventBus, Job, JobContext, JobFailure, JobHandler, JobQueue, JobState, MemoryBus, NewJob,
    Received, WorkerConfig, Workers,
};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::jobs::{get, kind};
use crate::{Fixture, Make, suite};

/// Runs every case of the workers runtime against queues from `make`.
#[expect(dead_code, reason = "used by other adapters' modules")]
pub async fn workers_contract(make: Make<dyn JobQueue>) {
    crate::run_cases("workers", make, workers_cases()).await;
}

suite!(dyn JobQueue, workers_cases, sql_workers, crate::jobs::sql_fixture;
    workers_run_a_job,
    workers_retry_then_succeed,
    workers_fail_fatal_failures_at_once,
    workers_treat_a_panic_as_a_retry,
    workers_stop_a_job_an_admin_cancels,
    workers_report_progress,
    workers_leave_interrupted_jobs_for_the_next_start,
    workers_complete_what_finishes_during_shutdown,
);

/// Quick settings for tests: short leases, polls and backoffs.
fn test_config(name: &str) -> WorkerConfig {
    WorkerConfig {
        name: name.to_owned(),
        lease: Duration::from_millis(900),
        poll: Duration::from_millis(50),
        drain: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
    }
}

/// Handlers written as closures returning boxed futures.
type HandlerFn = dyn Fn(
        Job,
        JobContext,
    ) -> futures::future::BoxFuture<'static, Result<serde_json::Value, JobFailure>>
    + Send
    + Sync;

struct FnHandler(Box<HandlerFn>);

#[async_trait]
impl JobHandler for FnHandler {
    async fn run(&self, job: &Job, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        (self.0)(job.clone(), ctx).await
    }
}

fn handler<F, Fut>(f: F) -> Arc<dyn JobHandler>
where
    F: Fn(Job, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, JobFailure>> + Send + 'static,
{
    Arc::new(FnHandler(Box::new(move |job, ctx| Box::pin(f(job, ctx)))))
}

/// Workers running `handler` for `kind`; cancel the token, then close and wait for the
/// tracker, to stop them.
struct Running {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Running {
    fn start(
        queue: &Arc<dyn JobQueue>,
        events: Arc<dyn EventBus>,
        config: WorkerConfig,
        kind: &str,
        handler: Arc<dyn JobHandler>,
    ) -> Self {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let mut workers = Workers::new(Arc::clone(queue), events, config);
        workers.register(kind, 4, handler);
        workers.start(&tasks, shutdown.clone());
        Self { tasks, shutdown }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("workers stop within the drain");
    }
}

/// Waits (up to 15 s) until the job satisfies `done`.
async fn wait_for(queue: &dyn JobQueue, id: Uuid, done: impl Fn(&Job) -> bool) -> Job {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let job = get(queue, id).await;
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never got there: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settled(job: &Job) -> bool {
    job.state.is_final()
}

pub async fn workers_run_a_job(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("work");
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler(
            |job, ctx| async move { Ok(json!({"echo": job.payload, "attempt": ctx.attempt()})) },
        ),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!("hi")))
        .await
        .unwrap()
        .id;
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.result, Some(json!({"echo": "hi", "attempt": 1})));
    assert_eq!(job.attempts, 1);
    workers.stop().await;
}

pub async fn workers_retry_then_succeed(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("flaky");
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler(|_job, ctx| async move {
            if ctx.attempt() < 3 {
                Err(JobFailure::Retry(format!("not yet ({})", ctx.attempt())))
            } else {
                Ok(json!("third time"))
            }
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(5))
        .await
        .unwrap()
        .id;
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(
        (job.state, job.attempts, job.result),
        (JobState::Succeeded, 3, Some(json!("third time")))
    );
    workers.stop().await;
}

pub async fn workers_fail_fatal_failures_at_once(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("fatal");
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler(|_job, _ctx| async move { Err(JobFailure::Fatal("bad payload".to_owned())) }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(5))
        .await
        .unwrap()
        .id;
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(
        (job.state, job.attempts, job.error.as_deref()),
        (JobState::Failed, 1, Some("bad payload"))
    );
    workers.stop().await;
}

pub async fn workers_treat_a_panic_as_a_retry(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("panics");
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler(|_job, ctx| async move {
            assert!(ctx.attempt() > 1, "first attempts panic");
            Ok(json!("recovered"))
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(3))
        .await
        .unwrap()
        .id;
    let job = wait_for(&*q, id, settled).await;
    assert_eq!((job.state, job.attempts), (JobState::Succeeded, 2));

    // Out of attempts, the panic is the error.
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(1))
        .await
        .unwrap()
        .id;
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("first attempts panic"));
    workers.stop().await;
}

pub async fn workers_stop_a_job_an_admin_cancels(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("cancelled");
    let saw_cancel = Arc::new(Mutex::new(false));
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler({
            let saw_cancel = Arc::clone(&saw_cancel);
            move |_job, ctx| {
                let saw_cancel = Arc::clone(&saw_cancel);
                async move {
                    tokio::select! {
                        () = ctx.cancelled().cancelled() => {
                            *saw_cancel.lock() = true;
                            Err(JobFailure::Retry("stopped".to_owned()))
                        }
                        () = tokio::time::sleep(Duration::from_secs(30)) => Ok(json!("never cancelled")),
                    }
                }
            }
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    wait_for(&*q, id, |j| j.state == JobState::Running).await;
    q.cancel(id).await.unwrap();
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(*saw_cancel.lock(), "the handler saw its token fire");
    workers.stop().await;
}

pub async fn workers_report_progress(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("progress");
    let user = Uuid::now_v7();
    let bus = Arc::new(MemoryBus::default());
    let mut jobs_topic = bus.subscribe(confab_bus::JOBS_TOPIC);
    let mut user_topic = bus.subscribe(&confab_bus::user_topic(user));
    let release = Arc::new(tokio::sync::Notify::new());
    let workers = Running::start(
        &q,
        bus.clone(),
        test_config("w"),
        &k,
        handler({
            let release = Arc::clone(&release);
            move |_job, ctx| {
                let release = Arc::clone(&release);
                async move {
                    ctx.progress(Some(50.0), Some("half way"));
                    release.notified().await;
                    Ok(json!("done"))
                }
            }
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).created_by(user))
        .await
        .unwrap()
        .id;
    // The heartbeat (every third of the lease) stores it.
    let job = wait_for(&*q, id, |j| j.progress.is_some()).await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(
        (job.progress, job.progress_message.as_deref()),
        (Some(50.0), Some("half way"))
    );
    release.notify_one();
    wait_for(&*q, id, settled).await;

    for topic in [&mut jobs_topic, &mut user_topic] {
        let mut seen = Vec::new();
        while let Ok(Some(received)) =
            tokio::time::timeout(Duration::from_secs(5), topic.next()).await
        {
            let Received::Event(event) = received else {
                panic!("lagged")
            };
            assert_eq!(event.kind, confab_bus::JOB_UPDATED);
            if event.data["id"] != json!(id) {
                continue;
            }
            let state = event.data["state"].as_str().unwrap().to_owned();
            seen.push((state.clone(), event.data["progress"].clone()));
            if state == "succeeded" {
                assert_eq!(event.data["kind"], json!(k));
                assert_eq!(event.data["created_by"], json!(user));
                assert_eq!(event.data["attempts"], json!(1));
                break;
            }
        }
        assert_eq!(seen.first(), Some(&("running".to_owned(), json!(null))));
        assert!(
            seen.contains(&("running".to_owned(), json!(50.0))),
            "progress published: {seen:?}"
        );
        assert_eq!(seen.last().map(|s| s.0.as_str()), Some("succeeded"));
    }
    workers.stop().await;
}

pub async fn workers_leave_interrupted_jobs_for_the_next_start(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("interrupted");
    // What each attempt did, by the job's id (the handler's idempotency key).
    let completions: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let first = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("first"),
        &k,
        handler(|_job, ctx| async move {
            ctx.cancelled().cancelled().await;
            Err(JobFailure::Retry("interrupted".to_owned()))
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(3))
        .await
        .unwrap()
        .id;
    wait_for(&*q, id, |j| j.state == JobState::Running).await;
    first.stop().await;
    let job = get(&*q, id).await;
    assert_eq!(
        (job.state, job.attempts, job.error),
        (JobState::Running, 1, None),
        "shutdown records nothing"
    );

    let second = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("second"),
        &k,
        handler({
            let completions = Arc::clone(&completions);
            move |job, _ctx| {
                let completions = Arc::clone(&completions);
                async move {
                    *completions.lock().entry(job.id).or_default() += 1;
                    Ok(json!("resumed"))
                }
            }
        }),
    );
    let job = wait_for(&*q, id, settled).await;
    assert_eq!(
        (job.state, job.attempts, job.worker),
        (JobState::Succeeded, 2, None)
    );
    second.stop().await;
    assert_eq!(completions.lock().get(&id), Some(&1));
}

pub async fn workers_complete_what_finishes_during_shutdown(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("quick_stop");
    let workers = Running::start(
        &q,
        Arc::new(MemoryBus::default()),
        test_config("w"),
        &k,
        handler(|_job, ctx| async move {
            ctx.cancelled().cancelled().await;
            Ok(json!("saved before stopping"))
        }),
    );
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    wait_for(&*q, id, |j| j.state == JobState::Running).await;
    workers.stop().await;
    let job = get(&*q, id).await;
    assert_eq!(
        (job.state, job.result),
        (JobState::Succeeded, Some(json!("saved before stopping")))
    );
}
