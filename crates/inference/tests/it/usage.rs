//! The contract of the `UsageLog` port: batches appended whole, each record published once
//! (oldest first, until marked), tokens summed per user or key and UTC day without cached
//! answers, totals per day, user and model; and the writer over it, which delays events on a
//! failing bus but loses none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_bus::{BusError, Delivery, DurableEvents, Envelope};
use confab_inference::usage::{
    SqlUsageLog, Subject, USAGE_BATCH, USAGE_TOPIC, UsageBatch, UsageEvent, UsageLog, UsageRecord,
    UsageRecorder, day_of,
};
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// 2026-11-22T10:06:18Z.
const DAY: i64 = 1_795_308_378_000;
const DAY_MS: i64 = 86_400_000;

fn record(at: i64, user: Uuid, key: Option<Uuid>, model: &str, tokens: (u32, u32)) -> UsageRecord {
    UsageRecord {
        at,
        user_id: Some(user),
        api_key_id: key,
        model: model.into(),
        backend: "b".into(),
        prompt_tokens: tokens.0,
        completion_tokens: tokens.1,
        ttft_ms: Some(3),
        latency_ms: 7,
        status: "ok".into(),
        cached: false,
    }
}

#[tokio::test]
async fn tokens_are_summed_per_subject_and_day_without_cached_answers() {
    let (db, _test_db) = super::database().await;
    let log = SqlUsageLog::new(db.clone());
    let (user, other, key) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut cached = record(DAY, user, Some(key), "m", (1000, 1000));
    cached.cached = true;
    log.append(&[
        record(DAY, user, None, "m", (10, 5)),
        record(DAY + 1000, user, Some(key), "n", (20, 2)),
        cached,
        record(DAY + DAY_MS, user, Some(key), "m", (100, 100)),
        record(DAY, other, None, "m", (7, 7)),
    ])
    .await
    .unwrap();
    let today = day_of(DAY);
    assert_eq!(
        log.tokens_used(Subject::User(user), &today).await.unwrap(),
        37
    );
    assert_eq!(
        log.tokens_used(Subject::Key(key), &today).await.unwrap(),
        22
    );
    assert_eq!(
        log.tokens_used(Subject::User(user), &day_of(DAY + DAY_MS))
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        log.tokens_used(Subject::User(other), &today).await.unwrap(),
        14
    );
    // Nothing recorded: zero, not an error.
    assert_eq!(
        log.tokens_used(Subject::Key(Uuid::now_v7()), &today)
            .await
            .unwrap(),
        0
    );
    db.close().await;
}

#[tokio::test]
async fn totals_are_per_day_user_and_model() {
    let (db, _test_db) = super::database().await;
    let log = SqlUsageLog::new(db.clone());
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut failed = record(DAY, alice, None, "m", (1, 0));
    failed.status = "upstream_error".into();
    log.append(&[
        record(DAY, alice, None, "m", (3, 4)),
        record(DAY + 5, alice, None, "m", (3, 4)),
        failed,
        record(DAY, alice, None, "n", (1, 1)),
        record(DAY + DAY_MS, alice, None, "m", (1, 1)),
        record(DAY, bob, None, "m", (9, 9)),
    ])
    .await
    .unwrap();
    // An empty batch writes nothing and is no error.
    log.append(&[]).await.unwrap();
    let (first, second) = (day_of(DAY), day_of(DAY + DAY_MS));
    let rows = log
        .daily_totals(Some(alice), &first, &second)
        .await
        .unwrap();
    let summary: Vec<(&str, &str, i64, i64, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.day.as_str(),
                r.model.as_str(),
                r.requests,
                r.errors,
                r.prompt_tokens,
                r.completion_tokens,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (first.as_str(), "m", 3, 1, 7, 8),
            (first.as_str(), "n", 1, 0, 1, 1),
            (second.as_str(), "m", 1, 0, 1, 1),
        ]
    );
    assert!(rows.iter().all(|r| r.user_id == Some(alice.to_string())));
    let everyone = log.daily_totals(None, &first, &first).await.unwrap();
    assert_eq!(everyone.iter().map(|r| r.requests).sum::<i64>(), 5);
    db.close().await;
}

#[tokio::test]
async fn each_record_is_published_once_oldest_first() {
    let (db, _test_db) = super::database().await;
    let log = SqlUsageLog::new(db.clone());
    let user = Uuid::now_v7();
    let mut failed = record(DAY + 2, user, None, "m", (1, 0));
    failed.status = "cancelled".into();
    failed.cached = true;
    let stored = log
        .append(&[
            record(DAY + 3, user, None, "m", (1, 1)),
            failed,
            record(DAY + 1, user, None, "m", (2, 2)),
        ])
        .await
        .unwrap();
    let pending = log.unpublished(10).await.unwrap();
    // `append` answers the events of what it stored, in the batch's order: the same events
    // the outbox offers, oldest first.
    let stored_ats: Vec<i64> = stored.iter().map(|e| e.at).collect();
    assert_eq!(stored_ats, [DAY + 3, DAY + 2, DAY + 1]);
    let mut by_time = stored.clone();
    by_time.sort_by_key(|e| e.at);
    assert_eq!(by_time, pending);
    let ats: Vec<i64> = pending.iter().map(|e| e.at).collect();
    assert_eq!(ats, [DAY + 1, DAY + 2, DAY + 3]);
    let ids: std::collections::HashSet<&str> = pending.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each record has an id of its own");
    let second = &pending[1];
    assert_eq!(
        (
            second.status.as_str(),
            second.outcome.as_str(),
            second.cached
        ),
        ("cancelled", "error", true)
    );
    assert_eq!(second.user_id, Some(user.to_string()));
    assert_eq!(pending[0].outcome, "ok");
    // A page at a time; marked ones are not offered again.
    assert_eq!(log.unpublished(2).await.unwrap().len(), 2);
    log.mark_published(&[pending[0].id.clone(), "no-such-id".into()])
        .await
        .unwrap();
    let rest: Vec<i64> = log
        .unpublished(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(rest, [DAY + 2, DAY + 3]);
    log.mark_published(&[]).await.unwrap();
    let all: Vec<String> = pending.iter().map(|e| e.id.clone()).collect();
    log.mark_published(&all).await.unwrap();
    assert!(log.unpublished(10).await.unwrap().is_empty());
    db.close().await;
}

/// A bus that refuses the first publishes, then keeps what it is given.
struct Flaky {
    failures: AtomicU64,
    events: parking_lot::Mutex<Vec<Envelope>>,
}

#[async_trait::async_trait]
impl DurableEvents for Flaky {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BusError::Unavailable("down".into()));
        }
        self.events.lock().push(event);
        Ok(())
    }

    async fn consume(
        &self,
        _consumer: &str,
        _topic_prefix: &str,
    ) -> Result<BoxStream<'static, Result<Delivery, BusError>>, BusError> {
        Err(BusError::Unavailable("not for consuming".into()))
    }
}

#[tokio::test]
async fn a_failing_bus_delays_usage_events_but_loses_none() {
    let (db, _test_db) = super::database().await;
    let log: Arc<dyn UsageLog> = Arc::new(SqlUsageLog::new(db.clone()));
    let bus = Arc::new(Flaky {
        failures: AtomicU64::new(2),
        events: parking_lot::Mutex::new(Vec::new()),
    });
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let recorder =
        UsageRecorder::start_with_events(log.clone(), Some(bus.clone()), &tasks, shutdown.clone());
    for (i, status) in ["ok", "upstream_error", "ok"].into_iter().enumerate() {
        let mut r = record(
            confab_core::now_ms(),
            Uuid::now_v7(),
            None,
            "m",
            (1, u32::try_from(i).unwrap()),
        );
        r.status = status.into();
        recorder.record(r);
    }
    // The writer publishes in the background; poll (bounded) until all is published.
    let rows = || -> Vec<UsageEvent> {
        bus.events
            .lock()
            .iter()
            .flat_map(|e| {
                assert_eq!(
                    (e.topic.as_str(), e.kind.as_str()),
                    (USAGE_TOPIC, USAGE_BATCH)
                );
                serde_json::from_value::<UsageBatch>(e.data.clone())
                    .unwrap()
                    .rows
            })
            .collect()
    };
    for _ in 0..500 {
        if rows().len() >= 3 && log.unpublished(10).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(log.unpublished(10).await.unwrap().is_empty());
    let data = rows();
    assert_eq!(data.len(), 3, "{data:?}");
    let ids: std::collections::HashSet<&str> = data.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    let mut outcomes: Vec<&str> = data.iter().map(|d| d.outcome.as_str()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["error", "ok", "ok"]);
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    db.close().await;
}
