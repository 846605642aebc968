//! The contract of the `UsageStatsStore` port: events fold into one row per day, user and
//! model; an event delivered again (in the same batch, a later one, or a redelivered one) is
//! counted once while its id is remembered; rows are read by range and user, and paged in
//! day, user and model order for the export.

use std::sync::Arc;

use confab_admin::ports::UsageStatsStore;
use confab_admin::usage::{
    DailyUsage, DateRange, GroupBy, REMEMBER_IDS_MS, SqlUsageStats, USAGE_RECORDED, UsageEvent,
    UsageKey, UsageProjection, UsageQuery, UsageReadModel, parse_day,
};
use confab_bus::Envelope;
use futures::TryStreamExt;
use uuid::Uuid;

/// 2026-11-22T10:06:18Z.
const DAY: i64 = 1_795_308_378_000;
const DAY_MS: i64 = 86_400_000;

fn event(
    id: &str,
    at: i64,
    user: Option<&str>,
    model: &str,
    latency_ms: i64,
    ok: bool,
) -> UsageEvent {
    UsageEvent {
        id: id.into(),
        at,
        user_id: user.map(Into::into),
        api_key_id: None,
        model: model.into(),
        backend: "b".into(),
        prompt_tokens: 3,
        completion_tokens: 5,
        latency_ms,
        ttft_ms: Some(1),
        status: if ok { "ok" } else { "upstream_error" }.into(),
        outcome: if ok { "ok" } else { "error" }.into(),
        cached: false,
    }
}

fn range(from: &str, to: &str) -> DateRange {
    DateRange::parse(Some(from), Some(to), parse_day("2027-01-01").unwrap()).unwrap()
}

async fn rows(
    store: &dyn UsageStatsStore,
    range: DateRange,
    user: Option<Uuid>,
) -> Vec<DailyUsage> {
    let mut rows: Vec<DailyUsage> = store.rows(range, user).try_collect().await.unwrap();
    rows.sort_by_key(DailyUsage::key);
    rows
}

#[tokio::test]
async fn events_fold_into_one_row_per_day_user_and_model() {
    let (db, _test_db) = super::database().await;
    let store = SqlUsageStats::new(db.clone());
    let user = Uuid::now_v7().to_string();
    let applied = store
        .apply(
            &[
                event("a", DAY, Some(&user), "m", 10, true),
                event("b", DAY, Some(&user), "m", 100, false),
                event("c", DAY + DAY_MS, Some(&user), "m", 1, true),
                event("d", DAY, None, "m", 1, true),
            ],
            DAY,
        )
        .await
        .unwrap();
    assert_eq!(applied, 4);
    // A later batch adds to the same row, histogram included.
    assert_eq!(
        store
            .apply(&[event("e", DAY, Some(&user), "m", 1000, true)], DAY)
            .await
            .unwrap(),
        1
    );
    let all = rows(&store, range("2026-11-22", "2026-11-23"), None).await;
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.day.as_str(), r.user_id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("2026-11-22", ""),
            ("2026-11-22", user.as_str()),
            ("2026-11-23", user.as_str())
        ]
    );
    let summed = &all[1];
    assert_eq!((summed.requests, summed.errors), (3, 1));
    assert_eq!((summed.prompt_tokens, summed.completion_tokens), (9, 15));
    assert_eq!(summed.latency_ms_sum, 1110);
    assert_eq!(summed.latency.count(), 3);
    assert_eq!(summed.stats().latency_avg_ms, Some(370));
    db.close().await;
}

#[tokio::test]
async fn an_event_delivered_again_is_counted_once() {
    let (db, _test_db) = super::database().await;
    let store = SqlUsageStats::new(db.clone());
    let batch = [
        event("e1", DAY, Some("u"), "m", 10, true),
        event("e2", DAY, Some("u"), "m", 100, false),
        // Repeated inside the batch.
        event("e1", DAY, Some("u"), "m", 10, true),
    ];
    assert_eq!(store.apply(&batch, DAY).await.unwrap(), 2);
    // The same batch again (a redelivery), then a later one overlapping it.
    assert_eq!(store.apply(&batch, DAY + 1).await.unwrap(), 0);
    let later = [
        event("e2", DAY, Some("u"), "m", 100, false),
        event("e3", DAY, Some("u"), "m", 1, true),
    ];
    assert_eq!(store.apply(&later, DAY + 2).await.unwrap(), 1);
    let all = rows(&store, range("2026-11-22", "2026-11-22"), None).await;
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].requests, all[0].errors), (3, 1));
    assert_eq!(all[0].latency.count(), 3);
    db.close().await;
}

#[tokio::test]
async fn ids_are_remembered_for_a_week_then_forgotten() {
    let (db, _test_db) = super::database().await;
    let store = SqlUsageStats::new(db.clone());
    let first = [event("old", DAY, Some("u"), "m", 1, true)];
    assert_eq!(store.apply(&first, DAY).await.unwrap(), 1);
    // Within the week: still a repeat.
    assert_eq!(
        store
            .apply(&first, DAY + REMEMBER_IDS_MS - 1)
            .await
            .unwrap(),
        0
    );
    // Another event a week later clears ids older than a week; the old one counts again.
    let later = DAY + REMEMBER_IDS_MS + 1;
    assert_eq!(
        store
            .apply(&[event("new", later, Some("u"), "m", 1, true)], later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.apply(&first, later).await.unwrap(), 1);
    let all = rows(&store, range("2026-11-22", "2026-11-22"), None).await;
    assert_eq!(all[0].requests, 2);
    db.close().await;
}

#[tokio::test]
async fn rows_are_read_by_range_and_user() {
    let (db, _test_db) = super::database().await;
    let store = SqlUsageStats::new(db.clone());
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (a, b) = (alice.to_string(), bob.to_string());
    let events: Vec<UsageEvent> = (0..4)
        .flat_map(|d| {
            [
                event(&format!("a{d}"), DAY + d * DAY_MS, Some(&a), "m", 1, true),
                event(&format!("b{d}"), DAY + d * DAY_MS, Some(&b), "n", 1, true),
            ]
        })
        .collect();
    store.apply(&events, DAY).await.unwrap();
    // Both ends of the range are included; days outside are not.
    let middle = rows(&store, range("2026-11-23", "2026-11-24"), None).await;
    let days: Vec<&str> = middle.iter().map(|r| r.day.as_str()).collect();
    assert_eq!(
        days,
        ["2026-11-23", "2026-11-23", "2026-11-24", "2026-11-24"]
    );
    let mine = rows(&store, range("2026-11-01", "2026-11-30"), Some(bob)).await;
    assert_eq!(mine.len(), 4);
    assert!(mine.iter().all(|r| r.user_id == b && r.model == "n"));
    assert!(
        rows(&store, range("2026-11-01", "2026-11-21"), None)
            .await
            .is_empty()
    );
    db.close().await;
}

#[tokio::test]
async fn pages_follow_day_user_and_model_order() {
    let (db, _test_db) = super::database().await;
    let store = SqlUsageStats::new(db.clone());
    let mut events = Vec::new();
    for d in [1, 0] {
        for user in ["u2", "u1"] {
            for model in ["b", "a"] {
                let id = format!("{d}{user}{model}");
                events.push(event(&id, DAY + d * DAY_MS, Some(user), model, 1, true));
            }
        }
    }
    store.apply(&events, DAY).await.unwrap();
    let whole = range("2026-11-22", "2026-11-23");
    let mut seen: Vec<UsageKey> = Vec::new();
    let mut after: Option<UsageKey> = None;
    loop {
        let page = store.page(whole, None, after.as_ref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = page.last().map(DailyUsage::key);
        seen.extend(page.iter().map(DailyUsage::key));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 8);
    assert_eq!(
        (
            seen[0].day.as_str(),
            seen[0].user_id.as_str(),
            seen[0].model.as_str()
        ),
        ("2026-11-22", "u1", "a")
    );
    // A page of one user only.
    let one = store
        .page(whole, None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.user_id == "u1")
        .count();
    assert_eq!(one, 4);
    db.close().await;
}

fn envelope(event: &UsageEvent) -> Envelope {
    let mut envelope = Envelope::new(
        "usage.inference",
        USAGE_RECORDED,
        serde_json::to_value(event).unwrap(),
    );
    envelope.at = event.at;
    envelope
}

/// The projection and the read model over the SQL adapter: what the admin API serves.
#[tokio::test]
async fn the_projection_counts_redeliveries_once_and_the_read_model_reports_them() {
    let (db, _test_db) = super::database().await;
    let store: Arc<dyn UsageStatsStore> = Arc::new(SqlUsageStats::new(db.clone()));
    let user = Uuid::now_v7();
    let u = user.to_string();
    let batch = vec![
        envelope(&event("e1", DAY, Some(&u), "m", 10, true)),
        envelope(&event("e2", DAY, Some(&u), "m", 100, false)),
        envelope(&event("e3", DAY, Some(&u), "other", 1000, true)),
        // Repeated inside the batch, and an event of another kind.
        envelope(&event("e1", DAY, Some(&u), "m", 10, true)),
        Envelope::new("usage.inference", "usage.other", serde_json::json!({})),
    ];
    assert_eq!(
        UsageProjection::apply(store.as_ref(), &batch)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        UsageProjection::apply(store.as_ref(), &batch)
            .await
            .unwrap(),
        0
    );
    let later = vec![
        envelope(&event("e2", DAY, Some(&u), "m", 100, false)),
        envelope(&event("e4", DAY, Some(&u), "m", 1, true)),
    ];
    assert_eq!(
        UsageProjection::apply(store.as_ref(), &later)
            .await
            .unwrap(),
        1
    );

    let model = UsageReadModel::new(store);
    let day = range("2026-11-22", "2026-11-22");
    let report = model
        .report(&UsageQuery {
            group_by: GroupBy::Model,
            range: day,
            user: Some(user),
        })
        .await
        .unwrap();
    assert_eq!(report.totals.requests, 4);
    assert_eq!(report.totals.errors, 1);
    assert_eq!(report.totals.prompt_tokens, 12);
    assert_eq!(report.totals.completion_tokens, 20);
    assert_eq!(report.rows[0].key, "m");
    assert_eq!(report.rows[0].stats.requests, 3);
    assert_eq!(report.rows[0].stats.latency_avg_ms, Some(37));
    let exported: Vec<DailyUsage> = model.export(day, None).try_collect().await.unwrap();
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0].latency.count(), 3);
    db.close().await;
}
