//! The research cap of two SEO replicas sharing their counters: a user's researches an hour
//! are counted once across both. Over one set of in-process counters shared by both
//! (always) and over two Redis connections on one key prefix (when `TEST_REDIS_URL` names a
//! server; `scripts/test.sh` starts one).

use std::sync::Arc;

use confab_cache::{Counters, MemoryCounters, RedisConnection, RedisCounters, RedisMetrics};
use confab_core::config::RedisConfig;
use confab_seo::SeoError;
use confab_seo::service::ResearchCap;
use uuid::Uuid;

#[expect(clippy::print_stderr, reason = "the note says why a part did not run")]
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: Redis part skipped, TEST_REDIS_URL is not set");
            None
        }
    }
}

fn redis_counters(url: &str, prefix: &str) -> Arc<dyn Counters> {
    let config = RedisConfig {
        url: Some(url.to_owned()),
        key_prefix: prefix.to_owned(),
        timeout_ms: 2_000,
    };
    let conn = RedisConnection::new(&config, RedisMetrics::detached()).unwrap();
    Arc::new(RedisCounters::new(conn))
}

#[tokio::test]
async fn the_research_cap_holds_across_replicas() {
    let shared: Arc<dyn Counters> = Arc::new(MemoryCounters::new(1_000));
    let mut pairs = vec![("memory", shared.clone(), shared)];
    if let Some(url) = redis_url("the_research_cap_holds_across_replicas") {
        let prefix = format!("t{}", Uuid::now_v7().simple());
        pairs.push((
            "redis",
            redis_counters(&url, &prefix),
            redis_counters(&url, &prefix),
        ));
    }
    for (name, a, b) in pairs {
        let (a, b) = (ResearchCap::new(a, 5), ResearchCap::new(b, 5));
        let user = Uuid::now_v7();
        // Twenty researches at once, half on each replica: five go ahead in all.
        let takes = (0..20).map(|i| {
            if i % 2 == 0 {
                a.take(user)
            } else {
                b.take(user)
            }
        });
        let results = futures::future::join_all(takes).await;
        let taken = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(taken, 5, "{name}: exactly the cap, never more");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(()) | Err(SeoError::TooManyResearches { per_hour: 5 }))),
            "{name}"
        );
        // Another user has their own.
        assert!(b.take(Uuid::now_v7()).await.is_ok(), "{name}");
    }
}
