//! The `RateLimiter` contract: bursts, costs taken whole or not at all, refill, and exactness
//! when two replicas hammer one key.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::{Rate, RateCheck, RateLimiter};
use futures::future::join_all;

use crate::support::{SLACK, every_adapter, replica_pairs};

fn rate(limit: u32, period: Duration, burst: u32) -> Rate {
    Rate {
        limit,
        period,
        burst,
    }
}

#[tokio::test]
async fn a_burst_is_allowed_then_refused_with_retry_after() {
    for adapters in every_adapter("a_burst_is_allowed_then_refused_with_retry_after") {
        let limiter = &adapters.rate;
        let name = adapters.name;
        // One cell every 100 ms, three at once.
        let r = rate(10, Duration::from_secs(1), 3);
        for expected in [2, 1, 0] {
            let d = limiter.check("k", r, 1).await.unwrap();
            assert!(d.allowed, "{name}: {d:?}");
            assert_eq!((d.limit, d.remaining), (3, expected), "{name}: {d:?}");
            assert!(d.retry_after.is_none(), "{name}: {d:?}");
            assert!(d.reset_after <= Duration::from_millis(300), "{name}: {d:?}");
        }
        let refused = limiter.check("k", r, 1).await.unwrap();
        assert!(!refused.allowed, "{name}: {refused:?}");
        assert_eq!(refused.remaining, 0, "{name}: {refused:?}");
        let retry = refused.retry_after.unwrap();
        assert!(
            retry > Duration::ZERO && retry <= Duration::from_millis(100),
            "{name}: {refused:?}"
        );
        assert!(
            refused.reset_after > Duration::from_millis(150)
                && refused.reset_after <= Duration::from_millis(300),
            "{name}: {refused:?}"
        );
        // Other keys are untouched.
        assert!(
            limiter.check("other", r, 1).await.unwrap().allowed,
            "{name}"
        );
        // After the wait, one more fits.
        tokio::time::sleep(retry + SLACK / 4).await;
        assert!(limiter.check("k", r, 1).await.unwrap().allowed, "{name}");
    }
}

#[tokio::test]
async fn a_cost_is_taken_whole_or_not_at_all() {
    for adapters in every_adapter("a_cost_is_taken_whole_or_not_at_all") {
        let limiter = &adapters.rate;
        let name = adapters.name;
        let r = rate(5, Duration::from_secs(3600), 5);
        let d = limiter.check("k", r, 3).await.unwrap();
        assert!(d.allowed && d.remaining == 2, "{name}: {d:?}");
        let d = limiter.check("k", r, 3).await.unwrap();
        assert!(!d.allowed && d.remaining == 2, "{name}: {d:?}");
        assert!(d.retry_after.is_some(), "{name}: {d:?}");
        let d = limiter.check("k", r, 2).await.unwrap();
        assert!(d.allowed && d.remaining == 0, "{name}: {d:?}");
        // More than the burst never fits.
        let d = limiter.check("big", r, 6).await.unwrap();
        assert!(!d.allowed && d.retry_after.is_none(), "{name}: {d:?}");
        // Cost 0 counts as 1.
        let d = limiter.check("zero", r, 0).await.unwrap();
        assert!(d.allowed && d.remaining == 4, "{name}: {d:?}");
    }
}

#[tokio::test]
async fn a_rate_of_zero_allows_everything() {
    for adapters in every_adapter("a_rate_of_zero_allows_everything") {
        for _ in 0..20 {
            let d = adapters
                .rate
                .check("k", Rate::per_minute(0), 5)
                .await
                .unwrap();
            assert!(d.allowed, "{}: {d:?}", adapters.name);
        }
    }
}

#[tokio::test]
async fn checks_made_together_go_in_order_and_stop_at_the_first_refusal() {
    for adapters in every_adapter("checks_made_together_go_in_order_and_stop_at_the_first_refusal")
    {
        let limiter = &adapters.rate;
        let name = adapters.name;
        let wide = rate(5, Duration::from_secs(3600), 5);
        let narrow = rate(1, Duration::from_secs(3600), 1);
        let check = |key, rate| RateCheck { key, rate, cost: 1 };
        assert!(limiter.check_all(&[]).await.unwrap().is_empty(), "{name}");
        let all = [
            check("a", wide),
            check("free", Rate::per_minute(0)),
            check("b", narrow),
            check("c", wide),
        ];
        let first = limiter.check_all(&all).await.unwrap();
        let remaining: Vec<_> = first.iter().map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(
            remaining,
            [(true, 4), (true, 0), (true, 0), (true, 4)],
            "{name}: {first:?}"
        );
        // `b` refuses: `a` keeps what it took, `c` is not asked.
        let second = limiter.check_all(&all).await.unwrap();
        assert_eq!(second.len(), 3, "{name}: {second:?}");
        assert!(
            second[0].allowed && second[0].remaining == 3,
            "{name}: {second:?}"
        );
        assert!(
            !second[2].allowed && second[2].retry_after.is_some(),
            "{name}: {second:?}"
        );
        let c = limiter.check("c", wide, 1).await.unwrap();
        assert!(c.allowed && c.remaining == 3, "{name}: {c:?}");
        // One check alone is the same as `check`.
        let alone = limiter.check_all(&[check("a", wide)]).await.unwrap();
        assert_eq!(alone.len(), 1, "{name}");
        assert!(
            alone[0].allowed && alone[0].remaining == 2,
            "{name}: {alone:?}"
        );
    }
}

#[tokio::test]
async fn two_replicas_allow_exactly_the_burst() {
    for (a, b) in replica_pairs("two_replicas_allow_exactly_the_burst") {
        let r = rate(50, Duration::from_secs(3600), 50);
        let checks = (0..200).map(|i| {
            let limiter: Arc<dyn RateLimiter> =
                Arc::clone(if i % 2 == 0 { &a.rate } else { &b.rate });
            async move { limiter.check("hot", r, 1).await.unwrap().allowed }
        });
        let allowed = join_all(checks).await.into_iter().filter(|ok| *ok).count();
        assert_eq!(allowed, 50, "{}", a.name);
    }
}
