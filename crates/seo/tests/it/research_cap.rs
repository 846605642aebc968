//! The research cap of two SEO replicas sharing their counters: a user's researches an hour
//! are counted once across both. Over one set of in-process counters shared by both
//! (always) and over two Redis connections on one key prefix (when `TEST_REDIS_URL` names a
//! server; `scripts/test.sh` starts one).

use std::sync::Arc;

use confab_cache::{Counters, MemoryCounters, RedisCounters};
use confab_seo::SeoError;
use confab_seo::service::ResearchCap;
use uuid::Uuid;

#[tokio::test]
async fn the_research_cap_holds_across_replicas() {
    let shared: Arc<dyn Counters> = Arc::new(MemoryCounters::new(1_000));
    let pairs =
        confab_testkit::redis::replicas("the_research_cap_holds_across_replicas", shared, |conn| {
            Arc::new(RedisCounters::new(conn)) as Arc<dyn Counters>
        })
        .unwrap();
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
