//! The contract of [`QuotaLedger`], written against `Arc<dyn QuotaLedger>` and run on the SQL
//! adapter: atomic reservations under concurrency, all-or-nothing across buckets, exhaustion
//! until the reset, and quota days that follow Los Angeles' midnight across DST changes.

use std::sync::Arc;
use std::time::Duration;

use confab_core::config::DatabaseConfig;
use confab_seo::quota::{
    Bucket, BucketLimits, ManualClock, Method, QuotaError, QuotaLedger, QuotaSettings,
    SqlQuotaLedger,
};
use confab_store::Db;
use confab_testkit::TestDb;
use jiff::Timestamp;

/// A migrated SQL ledger on a fresh database; keep the `TestDb` alive for the test.
pub async fn sql_ledger(
    settings: QuotaSettings,
    clock: ManualClock,
) -> (Arc<dyn QuotaLedger>, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    confab_seo::migrations().run(&db).await.unwrap();
    (
        Arc::new(SqlQuotaLedger::new(db, settings, Arc::new(clock))),
        test_db,
    )
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn limits(daily_units: u64, search_calls: u64) -> QuotaSettings {
    QuotaSettings {
        limits: BucketLimits {
            daily_units,
            search_calls,
            insert_calls: 100,
        },
        ..QuotaSettings::default()
    }
}

async fn used(ledger: &dyn QuotaLedger, bucket: Bucket) -> (u64, bool) {
    let usage = ledger.usage(1).await.unwrap();
    let row = usage.iter().find(|u| u.bucket == bucket).unwrap();
    (row.used, row.exhausted)
}

/// The contract, for any adapter.
async fn contract(
    make: impl AsyncFn(QuotaSettings, ManualClock) -> (Arc<dyn QuotaLedger>, TestDb),
) {
    // 50 concurrent reservations against a bucket of 10 spend exactly 10.
    let clock = ManualClock::new(at("2026-06-01T12:00:00Z"));
    let (ledger, _db) = make(limits(10, 100), clock.clone()).await;
    let results =
        futures::future::join_all((0..50).map(|_| ledger.reserve(Method::VideosList))).await;
    let granted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(granted, 10);
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(refused, QuotaError::Exhausted { bucket: Bucket::DailyUnits, resets_at } if *resets_at == at("2026-06-02T07:00:00Z")),
            "{refused:?}"
        );
    }
    assert_eq!(used(ledger.as_ref(), Bucket::DailyUnits).await, (10, false));

    // A reservation is all or nothing across its buckets: the refused 4th search takes no units.
    let (ledger, _db) = make(limits(10_000, 3), clock.clone()).await;
    for _ in 0..3 {
        let r = ledger.reserve(Method::SearchList).await.unwrap();
        assert_eq!(r.charges.len(), 2);
        assert_eq!(r.day.to_string(), "2026-06-01");
    }
    assert!(matches!(
        ledger.reserve(Method::SearchList).await,
        Err(QuotaError::Exhausted {
            bucket: Bucket::SearchCalls,
            ..
        })
    ));
    assert_eq!(
        used(ledger.as_ref(), Bucket::DailyUnits).await,
        (300, false)
    );
    assert_eq!(used(ledger.as_ref(), Bucket::SearchCalls).await, (3, false));
    // Other methods still spend units.
    ledger.reserve(Method::VideosList).await.unwrap();

    // Exhausted until the next midnight in Los Angeles, then a fresh day.
    ledger.mark_exhausted(Bucket::DailyUnits).await.unwrap();
    assert!(ledger.reserve(Method::ChannelsList).await.is_err());
    assert_eq!(used(ledger.as_ref(), Bucket::DailyUnits).await, (301, true));
    clock.set(at("2026-06-02T06:59:59Z"));
    assert!(ledger.reserve(Method::ChannelsList).await.is_err());
    clock.set(at("2026-06-02T07:00:00Z"));
    ledger.reserve(Method::ChannelsList).await.unwrap();
    let usage = ledger.usage(2).await.unwrap();
    assert_eq!(usage.len(), 6);
    assert_eq!(usage[0].day, "2026-06-01");
    assert_eq!((usage[0].used, usage[0].exhausted), (301, true));
    assert_eq!(usage[3].day, "2026-06-02");
    assert_eq!(
        (usage[3].bucket, usage[3].used, usage[3].limit),
        (Bucket::DailyUnits, 1, 10_000)
    );
    assert_eq!(usage[4].used, 0);
}

#[tokio::test]
async fn sql_ledger_meets_the_contract() {
    contract(sql_ledger).await;
}

#[tokio::test]
async fn quota_days_cross_the_march_dst_change() {
    // 07:30 UTC on 8 March 2026 is 23:30 PST on the 7th; clocks jump to PDT at 02:00 on the 8th.
    let clock = ManualClock::new(at("2026-03-08T07:30:00Z"));
    let (ledger, _db) = sql_ledger(limits(1, 100), clock.clone()).await;
    ledger.reserve(Method::VideosList).await.unwrap();
    assert_eq!(ledger.next_reset(), at("2026-03-08T08:00:00Z"));
    assert!(ledger.reserve(Method::VideosList).await.is_err());
    clock.advance(Duration::from_secs(30 * 60));
    // Midnight PST: a new day, which has only 23 hours.
    let r = ledger.reserve(Method::VideosList).await.unwrap();
    assert_eq!(r.day.to_string(), "2026-03-08");
    assert_eq!(ledger.next_reset(), at("2026-03-09T07:00:00Z"));
    clock.set(at("2026-03-09T06:59:59Z"));
    assert!(ledger.reserve(Method::VideosList).await.is_err());
    clock.set(at("2026-03-09T07:00:00Z"));
    assert_eq!(
        ledger
            .reserve(Method::VideosList)
            .await
            .unwrap()
            .day
            .to_string(),
        "2026-03-09"
    );
}

#[tokio::test]
async fn quota_days_cross_the_november_dst_change() {
    // 1 November 2026 starts at 07:00 UTC (PDT) and, with the hour repeated, ends at 08:00 UTC
    // on the 2nd (PST): 25 hours.
    let clock = ManualClock::new(at("2026-11-01T07:00:00Z"));
    let (ledger, _db) = sql_ledger(limits(10, 100), clock.clone()).await;
    assert_eq!(ledger.next_reset(), at("2026-11-02T08:00:00Z"));
    ledger.reserve(Method::VideosList).await.unwrap();
    ledger.mark_exhausted(Bucket::DailyUnits).await.unwrap();
    // 07:30 UTC on the 2nd is 23:30 PST on the 1st: still spent.
    clock.set(at("2026-11-02T07:30:00Z"));
    assert!(matches!(
        ledger.reserve(Method::VideosList).await,
        Err(QuotaError::Exhausted { resets_at, .. }) if resets_at == at("2026-11-02T08:00:00Z")
    ));
    clock.set(at("2026-11-02T08:00:00Z"));
    assert_eq!(
        ledger
            .reserve(Method::VideosList)
            .await
            .unwrap()
            .day
            .to_string(),
        "2026-11-02"
    );
    assert_eq!(ledger.next_reset(), at("2026-11-03T08:00:00Z"));
}
