//! The per-IP throttle and the sign-in guard of two auth replicas sharing their limiter
//! ports: an address has one allowance across both, and failed sign-ins spread over them
//! are counted once. Over one set of in-process adapters shared by both (always) and over
//! two Redis connections on one key prefix (when `TEST_REDIS_URL` names a server;
//! `scripts/test.sh` starts one).

use std::sync::Arc;

use confab_auth::guard::{GuardPolicy, LoginGuard, Verdict};
use confab_auth::throttle::IpThrottle;
use confab_cache::{
    Counters, MemoryCounters, MemoryRateLimiter, RateLimiter, RedisCounters, RedisRateLimiter,
};
use confab_testkit::redis::replicas;
use uuid::Uuid;

#[tokio::test]
async fn the_ip_throttle_holds_across_replicas() {
    let shared: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
    let pairs = replicas("the_ip_throttle_holds_across_replicas", shared, |conn| {
        Arc::new(RedisRateLimiter::new(conn)) as Arc<dyn RateLimiter>
    })
    .unwrap();
    for (name, a, b) in pairs {
        let (a, b) = (IpThrottle::new(1, 4, a), IpThrottle::new(1, 4, b));
        let ip = Some("192.0.2.7".parse().unwrap());
        // A burst of four, spread over both replicas, then both refuse.
        for replica in [&a, &b, &a, &b] {
            assert!(replica.check(ip).await.is_ok(), "{name}");
        }
        for replica in [&a, &b] {
            let refused = replica.check(ip).await.unwrap_err();
            assert_eq!(refused.status.as_u16(), 429, "{name}");
            assert!(refused.retry_after_secs.unwrap() >= 1, "{name}");
        }
        // Another address has its own allowance.
        assert!(
            b.check(Some("192.0.2.8".parse().unwrap())).await.is_ok(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn sign_in_failures_spread_over_replicas_are_counted_once() {
    let shared: Arc<dyn Counters> = Arc::new(MemoryCounters::new(1_000));
    let pairs = replicas(
        "sign_in_failures_spread_over_replicas_are_counted_once",
        shared,
        |conn| Arc::new(RedisCounters::new(conn)) as Arc<dyn Counters>,
    )
    .unwrap();
    let policy = GuardPolicy {
        threshold: 3,
        first_wait_ms: 10_000,
        max_wait_ms: 60_000,
        account_failures_per_hour: 100,
    };
    for (name, a, b) in pairs {
        let (a, b) = (LoginGuard::new(policy, a), LoginGuard::new(policy, b));
        let account = format!("{}@example.com", Uuid::now_v7().simple());
        let attacker = Some("203.0.113.9".parse().unwrap());
        let now = confab_core::now_ms();
        // Three wrong guesses over two replicas: the third starts the wait on both.
        assert_eq!(a.failed(&account, attacker, now).await, None, "{name}");
        assert_eq!(b.failed(&account, attacker, now).await, None, "{name}");
        assert_eq!(a.failed(&account, attacker, now).await, Some(10), "{name}");
        for guard in [&a, &b] {
            assert_eq!(
                guard.check(&account, attacker, now + 1_000).await,
                Verdict::Wait {
                    retry_after_secs: 9
                },
                "{name}"
            );
        }
        // The user's own address is not held back.
        let home = Some("198.51.100.1".parse().unwrap());
        assert_eq!(
            b.check(&account, home, now).await,
            Verdict::Proceed,
            "{name}"
        );
        // An administrator's unlock on one replica ends the wait on the other.
        a.forget(&account).await;
        assert_eq!(
            b.check(&account, attacker, now + 1_000).await,
            Verdict::Proceed,
            "{name}"
        );
    }
}
