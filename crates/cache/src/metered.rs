//! `confab_cache_requests_total{cache,result}`: hits and misses of each named cache, counted
//! by [`Metered`], a [`Cache`] adapter around another. Cache names are fixed by the
//! composition root ([`CacheName`]), never taken from a request.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use confab_core::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::Cache;

/// The caches behind the `Cache` port, the only values of the `cache` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheName {
    /// The inference service's exact-match answers.
    InferenceAnswers,
    /// The SEO studio's research results.
    SeoResearch,
    /// The gateway's public GET responses.
    GatewayResponses,
}

impl CacheName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InferenceAnswers => "inference_answers",
            Self::SeoResearch => "seo_research",
            Self::GatewayResponses => "gateway_responses",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

/// The counters, registered once per process.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    requests: Family<CacheLabels, Counter>,
}

impl CacheMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Arc<Self> {
        let metrics = Arc::new(Self::default());
        builder.registry().register(
            "cache_requests",
            "Cache lookups by cache and result (hit or miss)",
            metrics.requests.clone(),
        );
        metrics
    }

    /// The hit and miss counters of `cache` (creates its two series).
    fn counters(&self, cache: CacheName) -> [Counter; 2] {
        [true, false].map(|hit| {
            self.requests
                .get_or_create(&CacheLabels {
                    cache: cache.as_str(),
                    result: if hit { "hit" } else { "miss" },
                })
                .clone()
        })
    }

    /// The count of `cache`'s lookups with that result so far.
    pub fn get(&self, cache: CacheName, hit: bool) -> u64 {
        self.requests
            .get_or_create(&CacheLabels {
                cache: cache.as_str(),
                result: if hit { "hit" } else { "miss" },
            })
            .get()
    }
}

/// A cache whose lookups are counted under its name. A lookup costs one atomic add: the
/// counters are looked up in the family once, at the first lookup.
pub struct Metered {
    inner: Arc<dyn Cache>,
    name: CacheName,
    metrics: Arc<CacheMetrics>,
    /// Hit and miss, created at the first lookup: a process exports only the caches it uses.
    counters: OnceLock<[Counter; 2]>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Cache>, name: CacheName, metrics: Arc<CacheMetrics>) -> Self {
        Self {
            inner,
            name,
            metrics,
            counters: OnceLock::new(),
        }
    }

    fn count(&self, hit: bool) {
        let [hits, misses] = self
            .counters
            .get_or_init(|| self.metrics.counters(self.name));
        let counter = if hit { hits } else { misses };
        counter.inc();
    }
}

#[async_trait]
impl Cache for Metered {
    async fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let value = self.inner.get(key).await;
        self.count(value.is_some());
        value
    }

    async fn set(&self, key: String, value: Vec<u8>, ttl: Duration) {
        self.inner.set(key, value, ttl).await;
    }

    async fn remove(&self, key: &str) {
        self.inner.remove(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryCache;

    #[tokio::test]
    async fn lookups_are_counted_by_cache_and_result() {
        let mut builder = MetricsBuilder::new();
        let metrics = CacheMetrics::register(&mut builder);
        let cache = Metered::new(
            Arc::new(MemoryCache::new(10)),
            CacheName::SeoResearch,
            metrics.clone(),
        );
        assert!(cache.get("k").await.is_none());
        cache
            .set("k".into(), b"v".to_vec(), Duration::from_secs(60))
            .await;
        assert_eq!(cache.get("k").await.unwrap().as_slice(), b"v");
        assert!(cache.get("k").await.is_some());
        assert_eq!(metrics.get(CacheName::SeoResearch, true), 2);
        assert_eq!(metrics.get(CacheName::SeoResearch, false), 1);
        let text = builder.finish().render();
        assert!(
            text.contains("confab_cache_requests_total{cache=\"seo_research\",result=\"hit\"} 2"),
            "{text}"
        );
        // A cache without lookups has no series.
        assert!(!text.contains("gateway_responses"), "{text}");
    }
}
