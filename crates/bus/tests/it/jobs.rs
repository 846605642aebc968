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
//! The admin's side of the contract (cancel, retry, list) is in `jobs_admin`; the suite of the
//! [`Workers`] runtime over any queue in `workers`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Heartbeat, Job, JobQueue, JobState, NewJob, Progress, SqlJobQueue};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::{Fixture, Make, suite};

use crate::jobs_admin::{
    cancel_queued, cancel_running, cancel_running_whose_lease_expires,
    final_jobs_refuse_cancel_and_retry, list_filters_and_cursor, retry_failed_and_cancelled,
    unknown_ids,
};

/// The lease of the expiry cases.
pub const SHORT_TTL: Duration = Duration::from_millis(300);
pub(crate) const LONG_TTL: Duration = Duration::from_secs(60);

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
pub(crate) fn kind(name: &str) -> String {
    format!("{name}_{}", Uuid::now_v7().simple())
}

pub(crate) fn now_ms() -> i64 {
    confab_core::now_ms()
}

pub(crate) async fn get(queue: &dyn JobQueue, id: Uuid) -> Job {
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
