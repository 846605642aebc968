//! The cases of the [`JobQueue`] contract about what an admin does to jobs: cancel (queued,
//! running, with an expiring lease), retry, refusals on final jobs, listing with filters and
//! cursor, and unknown ids. Listed in `crate::jobs`'s suite.

use std::time::Duration;

use confab_bus::{Heartbeat, Job, JobError, JobFilter, JobQueue, JobState, NewJob};
use serde_json::json;
use uuid::Uuid;

use crate::Fixture;
use crate::jobs::{LONG_TTL, SHORT_TTL, get, kind, now_ms};

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
