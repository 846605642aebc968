//! The span of one model call with OpenTelemetry's GenAI semantic-convention attributes
//! (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.system`, `gen_ai.usage.*`,
//! `gen_ai.response.finish_reasons`), exported when `telemetry.otlp_endpoint` is set; a
//! disabled span otherwise, so nothing is recorded or allocated for it.

use confab_core::telemetry::otel;
use tracing::field::Empty;

use crate::types::{FinishReason, Usage};

/// A model name longer than this is cut in the span (names are the caller's strings).
const MAX_MODEL_CHARS: usize = 128;

/// The span of one chat completion or embeddings call, ended when dropped.
#[derive(Debug)]
pub(super) struct ModelSpan(tracing::Span);

impl ModelSpan {
    /// `operation` is `chat` or `embeddings`.
    pub(super) fn start(operation: &'static str, model: &str) -> Self {
        if !otel::enabled() {
            return Self(tracing::Span::none());
        }
        let model: String = model.chars().take(MAX_MODEL_CHARS).collect();
        let span = tracing::info_span!(
            "model",
            otel.name = format!("{operation} {model}"),
            otel.kind = "client",
            otel.status_code = Empty,
            request_id = Empty,
            gen_ai.operation.name = operation,
            gen_ai.request.model = model,
            gen_ai.system = Empty,
            gen_ai.response.model = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            error.type = Empty,
        );
        if let Some(id) = confab_core::http::current_request_id() {
            span.record("request_id", id);
        }
        Self(span)
    }

    /// The span, to make the upstream calls its children.
    pub(super) fn span(&self) -> &tracing::Span {
        &self.0
    }

    /// The backend that answers, `provider:model`.
    pub(super) fn routed(&self, backend: &str) {
        if self.0.is_disabled() {
            return;
        }
        let (system, model) = backend.split_once(':').unwrap_or((backend, ""));
        self.0.record("gen_ai.system", system);
        if !model.is_empty() {
            self.0.record("gen_ai.response.model", model);
        }
    }

    pub(super) fn finished(&self, reason: FinishReason) {
        self.0.record(
            "gen_ai.response.finish_reasons",
            match reason {
                FinishReason::Stop => "stop",
                FinishReason::Length => "length",
            },
        );
    }

    /// How the call ended: its token counts, and `status` (`ok` or an error code).
    pub(super) fn ended(&self, usage: Usage, status: &str) {
        if self.0.is_disabled() {
            return;
        }
        self.0
            .record("gen_ai.usage.input_tokens", i64::from(usage.prompt_tokens));
        self.0.record(
            "gen_ai.usage.output_tokens",
            i64::from(usage.completion_tokens),
        );
        if status != "ok" {
            self.0.record("error.type", status);
            self.0.record("otel.status_code", "ERROR");
        }
    }
}
