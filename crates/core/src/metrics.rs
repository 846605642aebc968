//! Prometheus metrics: one registry per process (never a global, so tests can run several
//! apps in one process), HTTP request counts and latency histograms by route template and
//! status, and hooks that refresh gauges (such as pool sizes) when `/metrics` is scraped.
//! Every process also exports the common metrics: `confab_build_info`, the standard
//! `process_*` metrics ([`process`]), `confab_sse_streams_active` ([`streams`]) and, given
//! its data directory, that directory's disk space ([`disk`]).

pub mod disk;
pub mod process;
pub mod streams;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route template (`/api/v1/users/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

/// The labels of `confab_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
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

    /// `confab_build_info{version,commit} 1`.
    pub fn build_info(&mut self, version: &str, commit: &str) {
        let info = Family::<BuildLabels, Gauge>::default();
        info.get_or_create(&BuildLabels {
            version: version.to_owned(),
            commit: commit.to_owned(),
        })
        .set(1);
        self.registry.register(
            "build_info",
            "The version and commit of the running binary (always 1)",
            info,
        );
    }

    /// Reports the disk space of the file system holding `data_dir` at every scrape.
    pub fn data_dir(&mut self, data_dir: &std::path::Path) {
        self.registry
            .register_collector(Box::new(disk::DataDirCollector {
                path: data_dir.to_owned(),
            }));
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
        let sse_streams = Gauge::default();
        self.registry.register(
            "sse_streams_active",
            "Responses streamed as server-sent events now",
            sse_streams.clone(),
        );
        // The standard process metrics keep their standard names, without the prefix.
        let mut unprefixed = Registry::default();
        unprefixed.register_collector(Box::new(process::ProcessCollector));
        Arc::new(Metrics {
            registry: self.registry,
            unprefixed,
            hooks: self.hooks,
            requests,
            durations,
            sse_streams,
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
    unprefixed: Registry,
    hooks: Vec<ScrapeHook>,
    requests: Family<HttpLabels, Counter>,
    durations: Family<HttpLabels, Histogram>,
    sse_streams: Gauge,
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
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        if encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.unprefixed))
            .and_then(|()| encode_eof(&mut out))
            .is_err()
        {
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
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }

    #[test]
    fn renders_the_common_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = MetricsBuilder::new();
        builder.build_info("1.2.3", "abc123");
        builder.data_dir(dir.path());
        let text = builder.finish().render();
        assert!(
            text.contains("confab_build_info{version=\"1.2.3\",commit=\"abc123\"} 1"),
            "{text}"
        );
        assert!(text.contains("confab_sse_streams_active 0"), "{text}");
        assert!(text.contains("confab_data_dir_capacity_bytes "), "{text}");
        assert!(text.contains("confab_data_dir_available_bytes "), "{text}");
        #[cfg(target_os = "linux")]
        for name in [
            "\nprocess_resident_memory_bytes ",
            "\nprocess_virtual_memory_bytes ",
            "\nprocess_cpu_seconds_total ",
            "\nprocess_open_fds ",
            "\nprocess_max_fds ",
            "\nprocess_threads ",
            "\nprocess_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
    }
}
