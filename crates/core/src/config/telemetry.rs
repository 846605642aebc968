//! `[telemetry]`: OpenTelemetry traces exported over OTLP/HTTP, off unless an endpoint is set.

use serde::{Deserialize, Serialize};

/// Where spans go, and how many.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector's base URL (e.g. `http://otel-collector:4318`; also
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`): spans are posted as protobuf to `<it>/v1/traces`. Unset,
    /// no exporter runs and no span is recorded beyond the log's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of this process's spans (also `OTEL_SERVICE_NAME`); unset:
    /// `confab-<services>`, e.g. `confab-gateway` or `confab-all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The share of new traces recorded, 0 to 1; a trace begun upstream keeps its caller's
    /// decision (the `traceparent`'s sampled flag).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: None,
            sample_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    /// What is wrong with the section, if anything.
    pub(super) fn problem(&self) -> Option<String> {
        if let Some(url) = &self.otlp_endpoint
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || super::check_http_url(url).is_err())
        {
            return Some(format!(
                "telemetry.otlp_endpoint `{url}` is not an http:// or https:// URL"
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Some("telemetry.sample_ratio must be between 0 and 1".into());
        }
        if let Some(name) = &self.service_name
            && (name.is_empty() || name.len() > 128)
        {
            return Some("telemetry.service_name must be 1 to 128 characters".into());
        }
        None
    }
}
