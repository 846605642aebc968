//! Prometheus metrics: one registry per process (never a global, so tests can run several
//! apps in one process), HTTP request counts and latency histograms by route template and
//! status, and hooks that refresh gauges (such as pool sizes) when `/metrics` is scraped.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route template (`/api/v1/users/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// Collects metrics while the app is assembled; [`MetricsBuilder::finish`] freezes it.
pub struct MetricsBuilder {
    registry: Registry,
    hooks: Vec<ScrapeHook>,
}

impl Default for MetricsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsBuilder {
    pub fn new() -> Self {
        Self {
            registry: Registry::with_prefix("confab"),
            hooks: Vec::new(),
        }
    }

    /// Where components register their own metrics.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Runs `hook` before every scrape, e.g. to copy pool sizes into gauges.
    pub fn on_scrape(&mut self, hook: impl Fn() + Send + Sync + 'static) {
        self.hooks.push(Box::new(hook));
    }

    pub fn finish(mut self) -> Arc<Metrics> {
        let requests = Family::<HttpLabels, Counter>::default();
        self.registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<HttpLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        self.registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            durations.clone(),
        );
        Arc::new(Metrics {
            registry: self.registry,
            hooks: self.hooks,
            requests,
            durations,
        })
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    hooks: Vec<ScrapeHook>,
    requests: Family<HttpLabels, Counter>,
    durations: Family<HttpLabels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.durations.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        for hook in &self.hooks {
            hook();
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_histograms() {
        let metrics = MetricsBuilder::new().finish();
        metrics.observe_request(
            HttpLabels {
                method: "GET".into(),
                route: "/x/{id}".into(),
                status: 200,
            },
            0.003,
        );
        let text = metrics.render();
        assert!(
            text.contains(
                "confab_http_requests_total{method=\"GET\",route=\"/x/{id}\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("confab_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
