//! The cache port: byte values under string keys with a time to live. The in-process adapter
//! is moka (a concurrent TinyLFU cache with per-entry expiry); the Redis adapters (feature
//! `redis`, split mode) implement the same traits. The limiter ports (`limit`) hold the state
//! that must be shared by replicas: rate limits, windowed counters and expiring memberships,
//! with in-process adapters in `memory` and, for split mode, `fallback` wrappers that answer
//! from this process while Redis is away. `revocable` holds per-user lookups (credentials)
//! that a revocation drops at once.

pub mod fallback;
pub mod limit;
pub mod memory;
pub mod metered;
pub mod metrics;
#[cfg(feature = "redis")]
pub mod redis;
pub mod revocable;
mod warn;

pub use fallback::{
    Fallback, FallbackAdmission, FallbackCounters, FallbackMembership, FallbackRateLimiter,
};
pub use limit::{
    Admission, Admitted, Counters, Decision, Membership, Paired, Rate, RateCheck, RateLimiter,
    Taken, Unavailable,
};
pub use memory::{MemoryCounters, MemoryMembership, MemoryRateLimiter};
pub use metered::{CacheMetrics, CacheName, Metered};
pub use metrics::{LimiterPort, RedisMetrics};
#[cfg(feature = "redis")]
pub use redis::{
    RedisAdmission, RedisCache, RedisConnection, RedisCounters, RedisMembership, RedisRateLimiter,
    RedisSetupError,
};
pub use revocable::{RevocableCache, Ticket};

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Option<Arc<Vec<u8>>>;
    async fn set(&self, key: String, value: Vec<u8>, ttl: Duration);
    async fn remove(&self, key: &str);
}

#[derive(Clone)]
struct Entry {
    value: Arc<Vec<u8>>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The in-process adapter.
pub struct MemoryCache {
    inner: moka::future::Cache<String, Entry>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_entries` values.
    pub fn new(max_entries: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        self.inner.get(key).await.map(|e| e.value)
    }

    async fn set(&self, key: String, value: Vec<u8>, ttl: Duration) {
        self.inner
            .insert(
                key,
                Entry {
                    value: Arc::new(value),
                    ttl,
                },
            )
            .await;
    }

    async fn remove(&self, key: &str) {
        self.inner.invalidate(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every adapter keeps.
    async fn contract(cache: &dyn Cache) {
        assert!(cache.get("a").await.is_none());
        cache
            .set("a".into(), b"1".to_vec(), Duration::from_secs(60))
            .await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"1".to_vec()));
        cache
            .set("a".into(), b"2".to_vec(), Duration::from_secs(60))
            .await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"2".to_vec()));
        cache.remove("a").await;
        assert!(cache.get("a").await.is_none());
        cache
            .set("short".into(), b"x".to_vec(), Duration::from_millis(50))
            .await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            cache.get("short").await.is_none(),
            "expired entries are gone"
        );
    }

    #[tokio::test]
    async fn memory_cache_keeps_the_contract() {
        contract(&MemoryCache::new(100)).await;
    }
}
