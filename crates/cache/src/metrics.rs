//! The Redis metrics of a split deployment: whether Redis answers (`confab_redis_up`), how
//! often a limiter answered from the per-process fallback instead
//! (`confab_redis_fallbacks_total{port}`), and the cache's errors, which are misses
//! (`confab_redis_cache_errors_total`).

use std::sync::Arc;

use confab_core::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// The limiter ports, the only values of the `port` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimiterPort {
    RateLimiter,
    Counters,
    Membership,
    Admission,
}

impl LimiterPort {
    pub const ALL: [Self; 4] = [
        Self::RateLimiter,
        Self::Counters,
        Self::Membership,
        Self::Admission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimiter => "rate_limiter",
            Self::Counters => "counters",
            Self::Membership => "membership",
            Self::Admission => "admission",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: &'static str,
}

/// Register once per process with [`RedisMetrics::register`], or make a detached set
/// ([`RedisMetrics::detached`]) where nothing scrapes them.
#[derive(Debug, Default)]
pub struct RedisMetrics {
    fallbacks: Family<PortLabels, Counter>,
    up: Gauge,
    cache_errors: Counter,
}

impl RedisMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Arc<Self> {
        let metrics = Self::detached();
        for port in LimiterPort::ALL {
            // Present at zero from the start, so a rate() over them works at once.
            let _ = metrics.fallbacks.get_or_create(&PortLabels {
                port: port.as_str(),
            });
        }
        let r = builder.registry();
        r.register(
            "redis_fallbacks",
            "Limiter answers given by the per-process adapter because Redis was unavailable, by port",
            metrics.fallbacks.clone(),
        );
        r.register(
            "redis_up",
            "1 when the last Redis command got an answer, 0 after a connection failure or timeout",
            metrics.up.clone(),
        );
        r.register(
            "redis_cache_errors",
            "Redis cache commands that failed (each a miss, or a value not stored)",
            metrics.cache_errors.clone(),
        );
        metrics
    }

    /// Metrics that no registry holds.
    pub fn detached() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn fallback(&self, port: LimiterPort) {
        self.fallbacks
            .get_or_create(&PortLabels {
                port: port.as_str(),
            })
            .inc();
    }

    #[cfg_attr(
        not(any(feature = "redis", test)),
        expect(dead_code, reason = "only the Redis adapters report these")
    )]
    pub(crate) fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    #[cfg_attr(
        not(any(feature = "redis", test)),
        expect(dead_code, reason = "only the Redis adapters report these")
    )]
    pub(crate) fn cache_error(&self) {
        self.cache_errors.inc();
    }

    /// Answers given by the fallback for `port` so far.
    pub fn fallbacks(&self, port: LimiterPort) -> u64 {
        self.fallbacks
            .get_or_create(&PortLabels {
                port: port.as_str(),
            })
            .get()
    }

    /// Whether the last command got an answer.
    pub fn up(&self) -> bool {
        self.up.get() == 1
    }

    /// Cache commands that failed so far.
    pub fn cache_errors(&self) -> u64 {
        self.cache_errors.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_fixed_labels() {
        let mut builder = MetricsBuilder::new();
        let metrics = RedisMetrics::register(&mut builder);
        metrics.fallback(LimiterPort::Counters);
        metrics.set_up(true);
        metrics.cache_error();
        let text = builder.finish().render();
        assert!(
            text.contains("confab_redis_fallbacks_total{port=\"counters\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("confab_redis_fallbacks_total{port=\"membership\"} 0"),
            "{text}"
        );
        assert!(text.contains("confab_redis_up 1"), "{text}");
        assert!(text.contains("confab_redis_cache_errors_total 1"), "{text}");
    }
}
