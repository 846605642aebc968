//! OpenTelemetry traces over OTLP/HTTP (protobuf), and the W3C trace context of calls between
//! processes: extracted from a request's `traceparent`, injected into the calls it makes.
//!
//! Off unless `telemetry.otlp_endpoint` is set: then no layer is installed, no exporter task
//! runs, and [`inject`], [`trace_headers`] and [`set_parent`] return at once after one atomic
//! load. On, `tracing` spans become OpenTelemetry spans (their fields the attributes, so
//! `gen_ai.request.model = …` on a span is the semantic-convention attribute), batched on the
//! tokio runtime and posted to `<endpoint>/v1/traces`; [`Tracing::shutdown`] flushes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

use crate::config::TelemetryConfig;

/// The exporting layer, boxed to sit beside the log layer.
type SpanLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// Set once, when an exporter was installed.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// How long one export may take before it is given up (spans are dropped, never retried
/// forever).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether spans are exported from this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter of a process, to flush and stop at shutdown. Holds nothing when tracing is off.
#[derive(Debug, Default)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// No exporter: what a process without `telemetry.otlp_endpoint` has.
    pub fn off() -> Self {
        Self { provider: None }
    }

    pub(super) fn on(provider: SdkTracerProvider) -> Self {
        Self {
            provider: Some(provider),
        }
    }

    /// Whether an exporter is installed.
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued and stops the exporter. Blocks until done (bounded by
    /// the export timeout): call it outside the runtime's tasks, while the runtime still runs
    /// (the exporter is one of its tasks).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            ENABLED.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "could not flush the last spans");
            }
        }
    }
}

/// The OTLP/HTTP traces URL for a configured base endpoint: `<base>/v1/traces`, unless the
/// base already names that path.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The span layer and its provider when `config` names an endpoint, `None` otherwise. Must
/// run inside the tokio runtime: the batch exporter is spawned on it.
pub(super) fn layer<S>(
    config: &TelemetryConfig,
    default_service: &str,
) -> Result<Option<(SpanLayer<S>, SdkTracerProvider)>, String>
where
    S: tracing::Subscriber
        + for<'span> tracing_subscriber::registry::LookupSpan<'span>
        + Send
        + Sync
        + 'static,
{
    let Some(endpoint) = config.otlp_endpoint.as_deref() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("telemetry.otlp_endpoint `{endpoint}`: {e}"))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let service = config
        .service_name
        .clone()
        .unwrap_or_else(|| default_service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(service)
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("confab");
    // Confab's own spans and events at info and above: dependencies' spans (hyper, h2, sqlx)
    // would multiply the spans without naming anything an operator looks for.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
        .with_filter(Targets::new().with_target("confab", LevelFilter::INFO));
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((Box::new(layer), provider)))
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(key),
            HeaderValue::try_from(value.as_str()),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the trace context in `headers` (`traceparent`, `tracestate`),
/// when tracing is on and the headers carry a valid one.
pub fn set_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderReader(headers));
    if parent.span().span_context().is_valid() {
        // Fails only for a span that is disabled or already entered: then it keeps its own.
        let _ = span.set_parent(parent);
    }
}

/// Writes the current span's context into `headers` as `traceparent` (and `tracestate`), for
/// a call to another process. Returns whether it wrote one (tracing on, a span current).
pub fn inject(headers: &mut HeaderMap) -> bool {
    if !enabled() {
        return false;
    }
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return false;
    }
    TraceContextPropagator::new().inject_context(&context, &mut HeaderWriter(headers));
    true
}

/// The headers that carry the current span's context to another process; empty when tracing
/// is off (add them to an outgoing request with `RequestBuilder::headers`).
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    headers
}

/// The headers that carry `span`'s context to another process; empty when tracing is off.
pub fn span_headers(span: &tracing::Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if enabled() {
        let context = span.context();
        if context.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(&context, &mut HeaderWriter(&mut headers));
        }
    }
    headers
}

/// A span for one call to another process (`otel.kind = client`), a child of the current
/// span, named `<method> <path>` (a fixed route, e.g. `POST /v1/chat/completions`, never a
/// client's string); a disabled span when tracing is off, so logs and costs stay as they were.
pub fn client_span(method: &str, path: &str, server: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "call",
        otel.name = format!("{method} {path}"),
        http.request.method = method,
        otel.kind = "client",
        server.address = server,
        request_id = tracing::field::Empty,
    );
    if let Some(id) = crate::http::current_request_id() {
        span.record("request_id", id);
    }
    span
}

/// The trace id of `span` as 32 lowercase hex digits, when tracing is on.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let context: Context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn without_an_endpoint_nothing_is_installed() {
        let layer = layer::<tracing_subscriber::Registry>(&TelemetryConfig::default(), "confab");
        assert!(matches!(layer, Ok(None)));
        assert!(!enabled());
        let mut headers = HeaderMap::new();
        assert!(!inject(&mut headers));
        assert!(trace_headers().is_empty());
        assert!(!Tracing::off().is_on());
    }
}
