//! The adapters under test: the in-process ones, and Redis ones on a fresh key prefix.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::{
    Admission, Cache, Counters, Membership, MemoryCache, MemoryCounters, MemoryMembership,
    MemoryRateLimiter, Paired, RateLimiter, RedisAdmission, RedisCache, RedisConnection,
    RedisCounters, RedisMembership, RedisMetrics, RedisRateLimiter,
};
use confab_core::config::RedisConfig;
use uuid::Uuid;

/// The server under test, or `None` (after a note) when none was given.
#[expect(
    clippy::print_stderr,
    reason = "the note says why a test passed without running"
)]
pub(crate) fn redis_url(test: &str) -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "{test}: Redis part skipped, TEST_REDIS_URL is not set (scripts/test.sh starts Redis)"
            );
            None
        }
    }
}

/// A key prefix no other test uses.
pub(crate) fn fresh_prefix() -> String {
    format!("t{}", Uuid::now_v7().simple())
}

pub(crate) fn config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig {
        url: Some(url.to_owned()),
        key_prefix: prefix.to_owned(),
        // Generous: the machine running the tests is small and shared.
        timeout_ms: 2_000,
    }
}

/// One process's adapters of every port.
pub(crate) struct Adapters {
    pub(crate) name: &'static str,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) rate: Arc<dyn RateLimiter>,
    pub(crate) counters: Arc<dyn Counters>,
    pub(crate) membership: Arc<dyn Membership>,
    /// Over the same state as `rate` and `counters`.
    pub(crate) admission: Arc<dyn Admission>,
}

pub(crate) fn memory() -> Adapters {
    let rate: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
    let counters: Arc<dyn Counters> = Arc::new(MemoryCounters::new(1_000));
    Adapters {
        name: "memory",
        cache: Arc::new(MemoryCache::new(1_000)),
        admission: Arc::new(Paired {
            rate: rate.clone(),
            counters: counters.clone(),
        }),
        rate,
        counters,
        membership: Arc::new(MemoryMembership::new(1_000)),
    }
}

/// Redis adapters over a connection of their own: another replica when given the same
/// prefix.
pub(crate) fn redis(url: &str, prefix: &str) -> Adapters {
    let conn = RedisConnection::new(&config(url, prefix), RedisMetrics::detached()).unwrap();
    Adapters {
        name: "redis",
        cache: Arc::new(RedisCache::new(conn.clone())),
        rate: Arc::new(RedisRateLimiter::new(conn.clone())),
        counters: Arc::new(RedisCounters::new(conn.clone())),
        admission: Arc::new(RedisAdmission::new(conn.clone())),
        membership: Arc::new(RedisMembership::new(conn)),
    }
}

/// The in-process adapters, and Redis's when a server was given.
pub(crate) fn every_adapter(test: &str) -> Vec<Adapters> {
    let mut all = vec![memory()];
    if let Some(url) = redis_url(test) {
        all.push(redis(&url, &fresh_prefix()));
    }
    all
}

/// Two replicas sharing state: the same in-process adapters twice, or two Redis connections
/// on one prefix.
pub(crate) fn replica_pairs(test: &str) -> Vec<(Adapters, Adapters)> {
    let one = memory();
    let same = Adapters {
        name: one.name,
        cache: Arc::clone(&one.cache),
        rate: Arc::clone(&one.rate),
        counters: Arc::clone(&one.counters),
        membership: Arc::clone(&one.membership),
        admission: Arc::clone(&one.admission),
    };
    let mut pairs = vec![(one, same)];
    if let Some(url) = redis_url(test) {
        let prefix = fresh_prefix();
        pairs.push((redis(&url, &prefix), redis(&url, &prefix)));
    }
    pairs
}

/// Time for a window to pass, with room for a loaded machine.
pub(crate) const SLACK: Duration = Duration::from_millis(60);
