//! The contract suite of the [`JobQueue`] port, run here against [`SqlJobQueue`] on the
//! backend under test, one test per case (`cargo nextest run -p confab-bus jobs::`).
//!
//! To run it against another adapter, from another module of this test binary:
//!
//! ```ignore
//! let make: Make<dyn JobQueue> = Arc::new(|| Box::pin(async {
//!     Ok(Fixture { port: Arc::new(MyQueue::connect(..).await?) as Arc<dyn JobQueue>, guard: Box::new(()) })
//! }));
//! crate::jobs::job_queue_contract(make).await;
//! ```
//!
//! or pick cases from [`job_queue_cases`]. Every case uses job kinds of its own, so cases
//! may share one server. Lease expiry is tested with leases of [`SHORT_TTL`].
//!
//! The [`Workers`] runtime has its own suite over any queue: [`workers_contract`] (cases in
//! [`workers_cases`]), here against the SQL queue too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_bus::{
    EventBus, Heartbeat, Job, JobContext, JobError, JobFailure, JobFilter, JobHandler, JobQueue,
    JobState, MemoryBus, NewJob, Progress, Received, SqlJobQueue, WorkerConfig, Workers,
};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{Fixture, Make, suite};

/// The lease of the expiry cases.
pub const SHORT_TTL: Duration = Duration::from_millis(300);
const LONG_TTL: Duration = Duration::from_secs(60);

/// A fresh [`SqlJobQueue`] on the backend under test.
pub async fn sql_fixture() -> anyhow::Result<Fixture<dyn JobQueue>> {
    let (db, guard) = crate::test_db().await?;
    Ok(Fixture {
        port: Arc::new(SqlJobQueue::new(db)),
        guard: Box::new(guard),
    })
}

/// Runs every case against fixtures from `make`.
#[cfg_attr(
    not(feature = "nats"),
    expect(dead_code, reason = "used by the NATS adapters' module")
)]
pub async fn job_queue_contract(make: Make<dyn JobQueue>) {
    crate::run_cases("job_queue", make, job_queue_cases()).await;
}

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

suite!(dyn JobQueue, job_queue_cases, sql, crate::jobs::sql_fixture;
    enqueue_and_get,
    lease_order_is_priority_then_run_after,
    future_jobs_wait_until_due,
    kinds_filter,
    lease_is_exclusive,
    heartbeat_extends_and_records_progress,
    expired_lease_is_retaken_and_the_old_one_is_lost,
    fail_with_retry_requeues_with_backoff,
    attempts_run_out,
    expired_lease_without_attempts_left_fails,
    cancel_queued,
    cancel_running,
    cancel_running_whose_lease_expires,
    retry_failed_and_cancelled,
    final_jobs_refuse_cancel_and_retry,
    list_filters_and_cursor,
    unknown_ids,
);

/// A job kind no other case uses.
fn kind(name: &str) -> String {
    format!("{name}_{}", Uuid::now_v7().simple())
}

fn now_ms() -> i64 {
    confab_core::now_ms()
}

async fn get(queue: &dyn JobQueue, id: Uuid) -> Job {
    queue.get(id).await.unwrap().expect("the job exists")
}

pub async fn enqueue_and_get(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("enqueue");
    let user = Uuid::now_v7();
    let before = now_ms();
    let job = q
        .enqueue(
            NewJob::new(k.clone(), json!({"model": "x", "n": [1, 2]}))
                .priority(3)
                .max_attempts(4)
                .created_by(user),
        )
        .await
        .unwrap();
    assert_eq!(job.kind, k);
    assert_eq!(job.payload, json!({"model": "x", "n": [1, 2]}));
    assert_eq!(
        (job.priority, job.state, job.attempts, job.max_attempts),
        (3, JobState::Queued, 0, 4)
    );
    assert!(job.run_after >= before && job.run_after <= now_ms());
    assert_eq!(job.created_by, Some(user));
    assert!(!job.cancel_requested);
    assert_eq!(
        (job.progress, job.result.clone(), job.error.clone()),
        (None, None, None)
    );
    let stored = get(&*q, job.id).await;
    assert_eq!(stored, job);
}

pub async fn lease_order_is_priority_then_run_after(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("order");
    let now = now_ms();
    let mut ids = Vec::new();
    for (priority, ago) in [(0, 3000), (5, 1000), (5, 2000), (-1, 5000)] {
        let job = q
            .enqueue(
                NewJob::new(k.clone(), json!(null))
                    .priority(priority)
                    .run_after(now - ago),
            )
            .await
            .unwrap();
        ids.push(job.id);
    }
    let mut leased = Vec::new();
    while let Some(lease) = q.lease(&[&k], "w1", LONG_TTL).await.unwrap() {
        assert_eq!(lease.job.state, JobState::Running);
        assert_eq!(lease.job.attempts, 1);
        assert_eq!(lease.job.worker.as_deref(), Some("w1"));
        let until = lease.job.lease_until.unwrap();
        assert!(until >= now + 59_000 && until <= now_ms() + 60_000);
        leased.push(lease.job.id);
    }
    assert_eq!(leased, vec![ids[2], ids[1], ids[0], ids[3]]);
    let stored = get(&*q, ids[0]).await;
    assert_eq!(
        (stored.state, stored.attempts, stored.worker.as_deref()),
        (JobState::Running, 1, Some("w1"))
    );
}

pub async fn future_jobs_wait_until_due(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("future");
    let job = q
        .enqueue(NewJob::new(k.clone(), json!(1)).run_after(now_ms() + 600))
        .await
        .unwrap();
    assert!(q.lease(&[&k], "w", LONG_TTL).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(lease.job.id, job.id);
}

pub async fn kinds_filter(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let (a, b, c) = (kind("a"), kind("b"), kind("c"));
    let job_a = q.enqueue(NewJob::new(a.clone(), json!("a"))).await.unwrap();
    let job_b = q.enqueue(NewJob::new(b.clone(), json!("b"))).await.unwrap();
    assert!(q.lease(&[&c], "w", LONG_TTL).await.unwrap().is_none());
    assert!(q.lease(&[], "w", LONG_TTL).await.unwrap().is_none());
    let lease = q.lease(&[&b], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(lease.job.id, job_b.id);
    let lease = q
        .lease(&[&c, &a, &b], "w", LONG_TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.job.id, job_a.id);
    assert!(q.lease(&[&a, &b], "w", LONG_TTL).await.unwrap().is_none());
}

pub async fn lease_is_exclusive(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("exclusive");
    let mut enqueued = HashSet::new();
    for i in 0..50 {
        enqueued.insert(
            q.enqueue(NewJob::new(k.clone(), json!(i)))
                .await
                .unwrap()
                .id,
        );
    }
    let mut leasers = JoinSet::new();
    for w in 0..20 {
        let q = Arc::clone(&q);
        let k = k.clone();
        leasers.spawn(async move {
            let mut mine = Vec::new();
            while let Some(lease) = q.lease(&[&k], &format!("w{w}"), LONG_TTL).await.unwrap() {
                mine.push(lease.job.id);
            }
            mine
        });
    }
    let mut leased = Vec::new();
    while let Some(mine) = leasers.join_next().await {
        leased.extend(mine.unwrap());
    }
    assert_eq!(leased.len(), 50, "every job leased exactly once");
    assert_eq!(leased.into_iter().collect::<HashSet<_>>(), enqueued);
}

pub async fn heartbeat_extends_and_records_progress(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("heartbeat");
    q.enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap();
    let lease = q
        .lease(&[&k], "w", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let first_until = lease.job.lease_until.unwrap();
    let progress = Progress {
        percent: Some(42.5),
        message: Some("half way".to_owned()),
    };
    assert_eq!(
        q.heartbeat(&lease, Some(&progress), LONG_TTL)
            .await
            .unwrap(),
        Heartbeat::Extended
    );
    let job = get(&*q, lease.job.id).await;
    assert_eq!(job.progress, Some(42.5));
    assert_eq!(job.progress_message.as_deref(), Some("half way"));
    assert!(job.lease_until.unwrap() >= first_until + 50_000);
    assert_eq!(
        q.heartbeat(&lease, None, LONG_TTL).await.unwrap(),
        Heartbeat::Extended
    );
    let job = get(&*q, lease.job.id).await;
    assert_eq!(
        job.progress,
        Some(42.5),
        "a heartbeat without progress keeps it"
    );
    assert_eq!(job.state, JobState::Running);
}

pub async fn expired_lease_is_retaken_and_the_old_one_is_lost(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("expiry");
    q.enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(3))
        .await
        .unwrap();
    let old = q.lease(&[&k], "w1", SHORT_TTL).await.unwrap().unwrap();
    assert!(
        q.lease(&[&k], "w2", LONG_TTL).await.unwrap().is_none(),
        "not before it expires"
    );
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(200)).await;
    let new = q.lease(&[&k], "w2", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(new.job.id, old.job.id);
    assert_ne!(new.token, old.token);
    assert_eq!(new.job.attempts, 2);
    assert_eq!(new.job.worker.as_deref(), Some("w2"));

    assert_eq!(
        q.heartbeat(&old, None, LONG_TTL).await.unwrap(),
        Heartbeat::Lost
    );
    assert!(!q.complete(&old, json!("old")).await.unwrap());
    assert!(
        q.fail(&old, "old", true, Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!q.cancelled(&old).await.unwrap());
    let job = get(&*q, new.job.id).await;
    assert_eq!((job.state, job.attempts), (JobState::Running, 2));

    assert!(q.complete(&new, json!({"ok": true})).await.unwrap());
    let job = get(&*q, new.job.id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.result, Some(json!({"ok": true})));
    assert_eq!(job.lease_until, None);
    assert!(!q.complete(&new, json!("twice")).await.unwrap());
    assert_eq!(
        q.heartbeat(&new, None, LONG_TTL).await.unwrap(),
        Heartbeat::Lost
    );
}

pub async fn fail_with_retry_requeues_with_backoff(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("retry");
    q.enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(3))
        .await
        .unwrap();
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    let before = now_ms();
    let job = q
        .fail(&lease, "boom", true, Duration::from_millis(700))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.error.as_deref(), Some("boom"));
    assert_eq!(job.attempts, 1);
    assert!(job.run_after >= before + 700);
    assert_eq!(get(&*q, job.id).await.error.as_deref(), Some("boom"));
    assert!(
        q.lease(&[&k], "w", LONG_TTL).await.unwrap().is_none(),
        "not during the backoff"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(lease.job.attempts, 2);
    assert!(q.complete(&lease, json!(2)).await.unwrap());
}

pub async fn attempts_run_out(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("exhausted");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(2))
        .await
        .unwrap()
        .id;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    let job = q
        .fail(&lease, "first", true, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Queued);
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(lease.job.attempts, 2);
    let job = q
        .fail(&lease, "second", true, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("second"));
    assert!(q.lease(&[&k], "w", LONG_TTL).await.unwrap().is_none());
    assert_eq!(get(&*q, id).await.state, JobState::Failed);

    // A fatal failure ends the job whatever attempts are left.
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(5))
        .await
        .unwrap()
        .id;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    let job = q
        .fail(&lease, "fatal", false, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.state, job.attempts), (id, JobState::Failed, 1));
}

pub async fn expired_lease_without_attempts_left_fails(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("expired_last");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(1))
        .await
        .unwrap()
        .id;
    let _lease = q.lease(&[&k], "w", SHORT_TTL).await.unwrap().unwrap();
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(200)).await;
    assert!(q.lease(&[&k], "w2", LONG_TTL).await.unwrap().is_none());
    let job = get(&*q, id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.error.as_deref(), Some("lease expired after 1 attempts"));
}

pub async fn cancel_queued(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("cancel_queued");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    let job = q.cancel(id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(q.lease(&[&k], "w", LONG_TTL).await.unwrap().is_none());
    assert_eq!(get(&*q, id).await.state, JobState::Cancelled);
}

pub async fn cancel_running(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("cancel_running");
    q.enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap();
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    let job = q.cancel(lease.job.id).await.unwrap();
    assert_eq!(
        job.state,
        JobState::Running,
        "it runs until its worker stops"
    );
    assert!(job.cancel_requested);
    assert_eq!(
        q.heartbeat(&lease, None, LONG_TTL).await.unwrap(),
        Heartbeat::CancelRequested
    );
    assert!(q.cancelled(&lease).await.unwrap());
    let job = get(&*q, lease.job.id).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(
        q.heartbeat(&lease, None, LONG_TTL).await.unwrap(),
        Heartbeat::Lost
    );
    assert!(q.lease(&[&k], "w", LONG_TTL).await.unwrap().is_none());
}

pub async fn cancel_running_whose_lease_expires(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("cancel_expired");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(5))
        .await
        .unwrap()
        .id;
    let _lease = q.lease(&[&k], "w", SHORT_TTL).await.unwrap().unwrap();
    q.cancel(id).await.unwrap();
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(200)).await;
    assert!(
        q.lease(&[&k], "w2", LONG_TTL).await.unwrap().is_none(),
        "a cancelled job is not retaken"
    );
    assert_eq!(get(&*q, id).await.state, JobState::Cancelled);
}

pub async fn retry_failed_and_cancelled(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("retry_admin");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)).max_attempts(1))
        .await
        .unwrap()
        .id;
    assert!(
        matches!(q.retry(id).await, Err(JobError::Conflict(_))),
        "queued"
    );
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert!(
        matches!(q.retry(id).await, Err(JobError::Conflict(_))),
        "running"
    );
    q.fail(&lease, "broken", true, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(get(&*q, id).await.state, JobState::Failed);

    let job = q.retry(id).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert!(!job.cancel_requested);
    assert!(job.run_after <= now_ms());
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!((lease.job.id, lease.job.attempts), (id, 1));

    // Cancelled while running, then retried: the cancellation does not stick.
    q.cancel(id).await.unwrap();
    assert!(q.cancelled(&lease).await.unwrap());
    let job = q.retry(id).await.unwrap();
    assert_eq!((job.state, job.cancel_requested), (JobState::Queued, false));
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert_eq!(
        q.heartbeat(&lease, None, LONG_TTL).await.unwrap(),
        Heartbeat::Extended
    );
}

pub async fn final_jobs_refuse_cancel_and_retry(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let k = kind("final");
    let id = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    assert!(q.complete(&lease, json!("done")).await.unwrap());
    assert!(matches!(q.cancel(id).await, Err(JobError::Conflict(_))));
    assert!(matches!(q.retry(id).await, Err(JobError::Conflict(_))));
    let cancelled = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    q.cancel(cancelled).await.unwrap();
    assert!(matches!(
        q.cancel(cancelled).await,
        Err(JobError::Conflict(_))
    ));
    let job = get(&*q, id).await;
    assert_eq!(
        (job.state, job.result),
        (JobState::Succeeded, Some(json!("done")))
    );
}

pub async fn list_filters_and_cursor(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let (k, other) = (kind("list"), kind("list_other"));
    let user = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut job = NewJob::new(k.clone(), json!(i));
        if i % 2 == 0 {
            job = job.created_by(user);
        }
        ids.push(q.enqueue(job).await.unwrap().id);
    }
    q.enqueue(NewJob::new(other.clone(), json!(null)))
        .await
        .unwrap();
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    let of_kind = |limit, before| JobFilter {
        kind: Some(k.clone()),
        limit,
        before,
        ..JobFilter::default()
    };
    let listed = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();

    assert_eq!(
        listed(q.list(&of_kind(100, None)).await.unwrap()),
        newest_first
    );
    let page = listed(q.list(&of_kind(2, None)).await.unwrap());
    assert_eq!(page, newest_first[..2]);
    let next = listed(q.list(&of_kind(2, Some(page[1]))).await.unwrap());
    assert_eq!(next, newest_first[2..4]);
    let last = listed(q.list(&of_kind(2, Some(next[1]))).await.unwrap());
    assert_eq!(last, newest_first[4..]);

    let mine = q
        .list(&JobFilter {
            created_by: Some(user),
            limit: 100,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed(mine), vec![ids[4], ids[2], ids[0]]);

    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    let running = q
        .list(&JobFilter {
            state: Some(JobState::Running),
            kind: Some(k.clone()),
            limit: 100,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed(running), vec![lease.job.id]);
    let queued = q
        .list(&JobFilter {
            state: Some(JobState::Queued),
            kind: Some(k.clone()),
            limit: 0,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "a limit of 0 means 1");
}

pub async fn unknown_ids(f: Fixture<dyn JobQueue>) {
    let q = f.port;
    let id = Uuid::now_v7();
    assert!(q.get(id).await.unwrap().is_none());
    assert!(matches!(q.cancel(id).await, Err(JobError::NotFound)));
    assert!(matches!(q.retry(id).await, Err(JobError::NotFound)));
}

// The workers runtime.

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

/// The SQL queue's retention: finished jobs older than the cut go; the rest stay.
#[tokio::test]
async fn sql_prune_removes_old_finished_jobs() {
    let (db, _guard) = crate::test_db().await.unwrap();
    let q = SqlJobQueue::new(db);
    let k = kind("prune");
    let done = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    let lease = q.lease(&[&k], "w", LONG_TTL).await.unwrap().unwrap();
    q.complete(&lease, json!(null)).await.unwrap();
    let waiting = q
        .enqueue(NewJob::new(k.clone(), json!(null)))
        .await
        .unwrap()
        .id;
    assert_eq!(q.prune(now_ms() - 60_000).await.unwrap(), 0);
    assert_eq!(q.prune(now_ms() + 1_000).await.unwrap(), 1);
    assert!(q.get(done).await.unwrap().is_none());
    assert!(q.get(waiting).await.unwrap().is_some());
}
