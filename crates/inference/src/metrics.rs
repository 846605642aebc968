//! Inference metrics: requests and tokens by model and backend, time to first token,
//! upstream time, the gateway's own overhead, cache hits, retries and circuit states.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use confab_core::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub model: String,
    pub backend: String,
    /// `ok`, or the error code.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub outcome: &'static str,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn fine_seconds() -> Histogram {
    // 10 µs to about 0.3 s: the gateway's own time per request.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 15))
}

#[derive(Debug)]
pub struct InferenceMetrics {
    requests: Family<RequestLabels, Counter>,
    ttft: Family<BackendLabels, Histogram, fn() -> Histogram>,
    upstream: Family<BackendLabels, Histogram, fn() -> Histogram>,
    overhead: Family<BackendLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    retries: Family<BackendLabels, Counter>,
    circuit: Family<BackendLabels, Gauge<i64, AtomicI64>>,
}

impl InferenceMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Arc<Self> {
        let metrics = Arc::new(Self {
            requests: Family::default(),
            ttft: Family::new_with_constructor(seconds as fn() -> Histogram),
            upstream: Family::new_with_constructor(seconds as fn() -> Histogram),
            overhead: Family::new_with_constructor(fine_seconds as fn() -> Histogram),
            tokens: Family::default(),
            cache: Family::default(),
            retries: Family::default(),
            circuit: Family::default(),
        });
        let r = builder.registry();
        r.register(
            "inference_requests",
            "Inference requests by model, backend and outcome",
            metrics.requests.clone(),
        );
        r.register(
            "inference_ttft_seconds",
            "Time to the first token, retries included",
            metrics.ttft.clone(),
        );
        r.register(
            "inference_upstream_seconds",
            "Time spent in the backend per request",
            metrics.upstream.clone(),
        );
        r.register(
            "inference_overhead_seconds",
            "The gateway's own time per request: total minus upstream",
            metrics.overhead.clone(),
        );
        r.register(
            "inference_tokens",
            "Prompt and completion tokens by model",
            metrics.tokens.clone(),
        );
        r.register(
            "inference_cache",
            "Response cache lookups by outcome",
            metrics.cache.clone(),
        );
        r.register(
            "inference_retries",
            "Attempts after the first, by backend",
            metrics.retries.clone(),
        );
        r.register(
            "inference_circuit_state",
            "Circuit breaker per backend: 0 closed, 1 half-open, 2 open",
            metrics.circuit.clone(),
        );
        metrics
    }

    pub fn request(&self, model: &str, backend: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                model: model.to_owned(),
                backend: backend.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    fn backend(backend: &str) -> BackendLabels {
        BackendLabels {
            backend: backend.to_owned(),
        }
    }

    pub fn ttft(&self, backend: &str, seconds: f64) {
        self.ttft
            .get_or_create(&Self::backend(backend))
            .observe(seconds);
    }

    pub fn upstream(&self, backend: &str, seconds: f64) {
        self.upstream
            .get_or_create(&Self::backend(backend))
            .observe(seconds);
    }

    pub fn overhead(&self, backend: &str, seconds: f64) {
        self.overhead
            .get_or_create(&Self::backend(backend))
            .observe(seconds.max(0.0));
    }

    pub fn tokens(&self, model: &str, prompt: u32, completion: u32) {
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            self.tokens
                .get_or_create(&TokenLabels {
                    model: model.to_owned(),
                    kind,
                })
                .inc_by(u64::from(n));
        }
    }

    pub fn cache(&self, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                outcome: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    pub fn retry(&self, backend: &str) {
        self.retries.get_or_create(&Self::backend(backend)).inc();
    }

    pub fn circuit(&self, backend: &str, state: i64) {
        self.circuit
            .get_or_create(&Self::backend(backend))
            .set(state);
    }
}
