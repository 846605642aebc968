//! Logging setup: JSON lines (or pretty text for a terminal), each carrying the fields of the
//! spans it happened in, so every line logged while serving a request has its `request_id`
//! and `trace_id`; and, when `telemetry.otlp_endpoint` is set, the OpenTelemetry layer that
//! exports those spans ([`otel`]).

pub mod otel;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat, TelemetryConfig};

pub use otel::Tracing;

/// Installs the global subscriber. Call once, from the binary, inside the tokio runtime when
/// `telemetry` names an endpoint (the span exporter runs on it). `service` is the default
/// `service.name` (`confab-<services>`). The returned [`Tracing`] flushes the spans at
/// shutdown.
pub fn init(
    config: &LogConfig,
    telemetry: &TelemetryConfig,
    service: &str,
) -> Result<Tracing, String> {
    // llama.cpp reports every load step at info; keep it to warnings unless asked for.
    let directives = if config.level.contains("llama") {
        config.level.clone()
    } else {
        format!("{},llama-cpp-2=warn", config.level)
    };
    let filter = EnvFilter::try_new(&directives)
        .map_err(|e| format!("log.level `{}`: {e}", config.level))?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    // `log.level` filters the log lines only: the spans exported have their own filter, so a
    // quiet log (`warn`) still yields every request's trace.
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match config.format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt.with_filter(filter).boxed(),
    }];
    let mut tracing = Tracing::off();
    if let Some((layer, provider)) = otel::layer::<Registry>(telemetry, service)? {
        layers.push(layer);
        tracing = Tracing::on(provider);
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(tracing)
}

/// The trace id of a W3C `traceparent` value (32 lowercase hex digits, not all zero), for the
/// logs of a process that does not export spans itself.
pub fn traceparent_trace_id(value: &str) -> Option<&str> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex(version, 2) && version != "ff" && hex(trace, 32) && trace.bytes().any(|b| b != b'0'))
        .then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_yields_its_trace_id_when_well_formed() {
        assert_eq!(
            traceparent_trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f35-00f067aa0ba902b7-01",
        ] {
            assert_eq!(traceparent_trace_id(bad), None, "{bad}");
        }
    }
}
