//! The limits of two replicas of the inference service sharing their limiter ports: the
//! requests per minute and the tokens per day hold exactly across them. Run over one set of
//! in-process adapters shared by both (always) and over two Redis connections on one key
//! prefix (when `TEST_REDIS_URL` names a server; `scripts/test.sh` starts one).

use std::sync::Arc;

use confab_cache::{MemoryCounters, MemoryRateLimiter, Paired, RedisAdmission, RedisCounters};
use confab_core::auth::{Credential, Principal, Role, Scope};
use confab_core::config::{ConcurrencyConfig, LimitsConfig};
use confab_inference::limits::{LimitPorts, Limits};
use uuid::Uuid;

/// The Redis server under test, or `None` after a note.
/// Two replicas' ports: one in-process set twice, and two Redis connections on one prefix.
fn replica_ports(test: &str) -> Vec<(&'static str, LimitPorts, LimitPorts)> {
    let counters = Arc::new(MemoryCounters::new(1_000));
    let one = LimitPorts {
        admission: Arc::new(Paired {
            rate: Arc::new(MemoryRateLimiter::new()),
            counters: counters.clone(),
        }),
        counters,
    };
    confab_testkit::redis::replicas(test, one, |conn| LimitPorts {
        admission: Arc::new(RedisAdmission::new(conn.clone())),
        counters: Arc::new(RedisCounters::new(conn)),
    })
    .unwrap()
}

fn replicas(limits: &LimitsConfig, a: LimitPorts, b: LimitPorts) -> [Limits; 2] {
    let concurrency = ConcurrencyConfig::default();
    [
        Limits::new(limits, &concurrency, None, a),
        Limits::new(limits, &concurrency, None, b),
    ]
}

fn key_principal() -> Principal {
    Principal {
        user_id: Uuid::now_v7(),
        role: Role::User,
        credential: Credential::ApiKey {
            key_id: Uuid::now_v7(),
            scopes: vec![Scope::Inference],
        },
    }
}

fn header<'a>(allowance: &'a confab_inference::limits::Allowance, name: &str) -> Option<&'a str> {
    allowance
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.to_str().ok())
}

#[tokio::test]
async fn requests_per_minute_hold_across_replicas() {
    for (name, a, b) in replica_ports("requests_per_minute_hold_across_replicas") {
        let config = LimitsConfig {
            key_requests_per_minute: 5,
            ..LimitsConfig::default()
        };
        let [a, b] = replicas(&config, a, b);
        let p = key_principal();
        // Alternating replicas, the five requests of the minute are taken once in all.
        for i in 0..5_u32 {
            let replica = if i % 2 == 0 { &a } else { &b };
            let allowed = replica.check(&p).await.unwrap();
            assert_eq!(
                header(&allowed, "x-ratelimit-remaining-requests"),
                Some((4 - i).to_string().as_str()),
                "{name}: request {i}"
            );
        }
        for replica in [&a, &b] {
            let refused = replica.check(&p).await.unwrap_err();
            assert_eq!(refused.code(), "rate_limit_exceeded", "{name}");
            assert!(refused.retry_after_secs().unwrap() >= 1, "{name}");
        }
        // Another key of another user is not affected.
        a.check(&key_principal()).await.unwrap();
    }
}

#[tokio::test]
async fn requests_per_minute_are_exact_under_concurrency_across_replicas() {
    for (name, a, b) in replica_ports("requests_per_minute_are_exact_under_concurrency") {
        let config = LimitsConfig {
            user_requests_per_minute: 20,
            ..LimitsConfig::default()
        };
        let [a, b] = replicas(&config, a, b);
        let p = key_principal();
        let checks = (0..60).map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b };
            replica.check(&p)
        });
        let allowed = futures::future::join_all(checks)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        assert_eq!(allowed, 20, "{name}: exactly the burst, never more");
    }
}

#[tokio::test]
async fn tokens_per_day_hold_across_replicas() {
    for (name, a, b) in replica_ports("tokens_per_day_hold_across_replicas") {
        let config = LimitsConfig {
            user_tokens_per_day: 100,
            ..LimitsConfig::default()
        };
        let [a, b] = replicas(&config, a, b);
        let p = key_principal();
        let first = a.check(&p).await.unwrap();
        assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), Some("100"));
        a.add_tokens(&p, 60).await;
        let seen = b.check(&p).await.unwrap();
        assert_eq!(
            header(&seen, "x-ratelimit-remaining-tokens"),
            Some("40"),
            "{name}: the other replica sees the tokens used"
        );
        b.add_tokens(&p, 60).await;
        for replica in [&a, &b] {
            let refused = replica.check(&p).await.unwrap_err();
            assert_eq!(refused.code(), "tokens_exceeded", "{name}");
        }
    }
}
