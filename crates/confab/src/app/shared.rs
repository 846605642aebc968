//! The state a process shares with its replicas, chosen once from `[redis]`: the caches (the
//! inference exact-match cache, the SEO research cache) and the limiter ports (rate limits,
//! windowed counters, expiring memberships, and the admission that asks a rate limit and
//! counters in one call). With `redis.url` set, the Redis adapters, each
//! limiter wrapped in its `Fallback` (per-process limits while Redis is away, counted in
//! `confab_redis_fallbacks_total`); without it, the in-process adapters (all-in-one). Redis
//! is never a readiness dependency: every use of it degrades.

use std::sync::Arc;

use confab_cache::{
    Admission, Cache, CacheMetrics, CacheName, Counters, FallbackAdmission, FallbackCounters,
    FallbackMembership, FallbackRateLimiter, Membership, MemoryCache, MemoryCounters,
    MemoryMembership, MemoryRateLimiter, Metered, Paired, RateLimiter, RedisAdmission, RedisCache,
    RedisConnection, RedisCounters, RedisMembership, RedisMetrics, RedisRateLimiter,
};
use confab_core::config::{Config, RedisConfig};
use confab_core::metrics::MetricsBuilder;

/// Keys the in-process counters and memberships hold at most (the least used go first).
const MAX_LOCAL_KEYS: u64 = 100_000;
/// Research answers the in-process SEO cache holds.
const RESEARCH_CACHE_ENTRIES: u64 = 1_000;
/// Answers the gateway's in-process response cache holds.
const RESPONSE_CACHE_ENTRIES: u64 = 1_000;

/// The shared state's ports, built once per process and handed to the services by name.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The inference service's exact-match answer cache.
    pub(crate) inference_cache: Arc<dyn Cache>,
    /// The SEO studio's research cache.
    pub(crate) research_cache: Arc<dyn Cache>,
    /// The gateway's response cache (public GETs).
    pub(crate) response_cache: Arc<dyn Cache>,
    /// Requests per minute (inference) and per-IP throttles (auth).
    pub(crate) rate: Arc<dyn RateLimiter>,
    /// Tokens per day (inference), sign-in failures (auth) and researches per hour (SEO).
    pub(crate) counters: Arc<dyn Counters>,
    /// Open sockets per user (chat).
    pub(crate) membership: Arc<dyn Membership>,
    /// Rate checks and counter reads in one call (inference's requests per minute and tokens
    /// of the day), over the same state as `rate` and `counters`.
    pub(crate) admission: Arc<dyn Admission>,
    /// What the gateway's further serving threads make their own limiter and cache from.
    edge: EdgeParts,
}

/// The parts of [`Shared::edge_ports`]: the process's one per-process rate limiter (the
/// state, or the fallback's), and where Redis is when it is configured.
#[derive(Clone)]
struct EdgeParts {
    local_rate: Arc<dyn RateLimiter>,
    response_cache: Arc<dyn Cache>,
    cache_metrics: Arc<CacheMetrics>,
    redis: Option<(RedisConfig, Arc<RedisMetrics>)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Redis adapters when `redis.url` is set (their metrics registered in `metrics`), else
    /// in-process ones. Never waits for Redis: the connection is made on first use.
    pub(crate) fn build(config: &Config, metrics: &mut MetricsBuilder) -> anyhow::Result<Self> {
        let local_cache =
            || -> Arc<dyn Cache> { Arc::new(MemoryCache::new(config.inference.cache.max_entries)) };
        // One per-process rate limiter and one set of counters: all-in-one they are the
        // state; in split mode the fallbacks' (the admission's local side reads and takes
        // what the rate limiter's and the counters' local sides count).
        let local_rate: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
        let local_counters: Arc<dyn Counters> = Arc::new(MemoryCounters::new(MAX_LOCAL_KEYS));
        let local_admission: Arc<dyn Admission> = Arc::new(Paired {
            rate: local_rate.clone(),
            counters: local_counters.clone(),
        });
        let local_membership =
            || -> Arc<dyn Membership> { Arc::new(MemoryMembership::new(MAX_LOCAL_KEYS)) };
        // Every cache's lookups are counted under its name (`confab_cache_requests_total`).
        let cache_metrics = CacheMetrics::register(metrics);
        let metered = |inner: Arc<dyn Cache>, name: CacheName| -> Arc<dyn Cache> {
            Arc::new(Metered::new(inner, name, cache_metrics.clone()))
        };
        if config.redis.url.is_none() {
            let response_cache = metered(
                Arc::new(MemoryCache::new(RESPONSE_CACHE_ENTRIES)),
                CacheName::GatewayResponses,
            );
            return Ok(Self {
                inference_cache: metered(local_cache(), CacheName::InferenceAnswers),
                research_cache: metered(
                    Arc::new(MemoryCache::new(RESEARCH_CACHE_ENTRIES)),
                    CacheName::SeoResearch,
                ),
                response_cache: response_cache.clone(),
                rate: local_rate.clone(),
                counters: local_counters,
                membership: local_membership(),
                admission: local_admission,
                edge: EdgeParts {
                    local_rate,
                    response_cache,
                    cache_metrics,
                    redis: None,
                },
            });
        }
        let redis_metrics = RedisMetrics::register(metrics);
        let conn = RedisConnection::new(&config.redis, redis_metrics.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(
            redis = ?config.redis,
            "caches, rate limits, counters and socket counts are shared through Redis"
        );
        let edge = EdgeParts {
            local_rate: local_rate.clone(),
            response_cache: metered(
                Arc::new(RedisCache::new(conn.clone())),
                CacheName::GatewayResponses,
            ),
            cache_metrics: cache_metrics.clone(),
            redis: Some((config.redis.clone(), redis_metrics.clone())),
        };
        Ok(Self {
            inference_cache: metered(
                Arc::new(RedisCache::new(conn.clone())),
                CacheName::InferenceAnswers,
            ),
            research_cache: metered(
                Arc::new(RedisCache::new(conn.clone())),
                CacheName::SeoResearch,
            ),
            response_cache: edge.response_cache.clone(),
            rate: Arc::new(FallbackRateLimiter::new(
                Arc::new(RedisRateLimiter::new(conn.clone())),
                local_rate,
                redis_metrics.clone(),
            )),
            counters: Arc::new(FallbackCounters::new(
                Arc::new(RedisCounters::new(conn.clone())),
                local_counters,
                redis_metrics.clone(),
            )),
            admission: Arc::new(FallbackAdmission::new(
                Arc::new(RedisAdmission::new(conn.clone())),
                local_admission,
                redis_metrics.clone(),
            )),
            membership: Arc::new(FallbackMembership::new(
                Arc::new(RedisMembership::new(conn)),
                local_membership(),
                redis_metrics,
            )),
            edge,
        })
    }

    /// The gateway's rate limiter and response cache for one more serving thread: with
    /// Redis, over a connection of its own (whose task then runs on the thread that first
    /// uses it), falling back to the process's one per-process limiter; without, the
    /// process's own.
    pub(crate) fn edge_ports(&self) -> anyhow::Result<(Arc<dyn RateLimiter>, Arc<dyn Cache>)> {
        let edge = &self.edge;
        let Some((config, redis_metrics)) = &edge.redis else {
            return Ok((edge.local_rate.clone(), edge.response_cache.clone()));
        };
        let conn = RedisConnection::new(config, redis_metrics.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rate: Arc<dyn RateLimiter> = Arc::new(FallbackRateLimiter::new(
            Arc::new(RedisRateLimiter::new(conn.clone())),
            edge.local_rate.clone(),
            redis_metrics.clone(),
        ));
        let cache: Arc<dyn Cache> = Arc::new(Metered::new(
            Arc::new(RedisCache::new(conn)),
            CacheName::GatewayResponses,
            edge.cache_metrics.clone(),
        ));
        Ok((rate, cache))
    }

    /// The inference service's limiter ports.
    pub(crate) fn inference_limits(&self) -> confab_inference::limits::LimitPorts {
        confab_inference::limits::LimitPorts {
            admission: self.admission.clone(),
            counters: self.counters.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use confab_cache::Rate;

    use super::*;

    /// Without `redis.url`, in-process adapters and no Redis metrics; with it, two
    /// processes' limiters are one (when `TEST_REDIS_URL` names a server), and Redis
    /// metrics are registered.
    #[tokio::test]
    async fn shared_limits_are_in_process_alone_and_in_redis_when_configured() {
        let mut metrics = MetricsBuilder::new();
        let alone = Shared::build(&Config::default(), &mut metrics).unwrap();
        let rate = Rate::per_minute(1);
        assert!(alone.rate.check("k", rate, 1).await.unwrap().allowed);
        assert!(!alone.rate.check("k", rate, 1).await.unwrap().allowed);
        assert!(!metrics.finish().render().contains("confab_redis_up"));

        let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return;
        };
        let mut config = Config::default();
        config.redis.url = Some(url);
        config.redis.key_prefix = format!("t{}", uuid::Uuid::now_v7().simple());
        let mut metrics = MetricsBuilder::new();
        let one = Shared::build(&config, &mut metrics).unwrap();
        let other = Shared::build(&config, &mut MetricsBuilder::new()).unwrap();
        assert!(one.rate.check("k", rate, 1).await.unwrap().allowed);
        assert!(!other.rate.check("k", rate, 1).await.unwrap().allowed);
        assert!(metrics.finish().render().contains("confab_redis_up 1"));
    }
}
