//! Inference errors and their OpenAI-shaped responses:
//! `{"error": {"message", "type", "param", "code"}}` with the statuses the SDKs map to their
//! exception classes.

use axum::Json;
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::error::ErrorLog;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The inference service's errors are the model-calling vocabulary's: callers in other
/// services see the same variants through the `ModelClient` port.
pub use confab_model_client::ModelError as InferenceError;

/// The OpenAI error body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// An error as OpenAI-compatible routes send it.
#[derive(Debug, Clone)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub body: OpenAiErrorDetail,
    pub retry_after_secs: Option<u64>,
    /// Logged, never sent.
    pub internal: Option<String>,
}

fn kind_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

impl OpenAiError {
    pub fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        Self {
            status,
            body: OpenAiErrorDetail {
                message: message.into(),
                kind: kind_for(status).to_owned(),
                param: param.map(str::to_owned),
                code: Some(code.to_owned()),
            },
            retry_after_secs: None,
            internal: None,
        }
    }
}

impl From<InferenceError> for OpenAiError {
    fn from(error: InferenceError) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut e = OpenAiError::new(status, error.code(), error.public_message(), error.param());
        e.retry_after_secs = error.retry_after_secs();
        e.internal = error.internal().map(str::to_owned);
        e
    }
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        let mut e = OpenAiError::new(error.status, &error.code, error.message, None);
        e.retry_after_secs = error.retry_after_secs;
        e.internal = error.internal;
        e
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let code = self.body.code.clone().unwrap_or_default();
        let mut response =
            (self.status, Json(OpenAiErrorBody { error: self.body })).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response.extensions_mut().insert(ErrorLog {
            code: code.into(),
            detail: self.internal,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let e = OpenAiError::from(InferenceError::ModelNotFound("x".into()));
        assert_eq!(
            (e.status.as_u16(), e.body.code.as_deref()),
            (404, Some("model_not_found"))
        );
        let e = OpenAiError::from(InferenceError::ContextLengthExceeded("too long".into()));
        assert_eq!(
            (e.status.as_u16(), e.body.code.as_deref()),
            (400, Some("context_length_exceeded"))
        );
        let e = OpenAiError::from(InferenceError::Upstream {
            provider: "p".into(),
            status: 500,
            message: "secret detail".into(),
            retry_after_secs: None,
        });
        assert_eq!(e.status.as_u16(), 502);
        assert!(!e.body.message.contains("secret"));
        let e = OpenAiError::from(InferenceError::Upstream {
            provider: "p".into(),
            status: 429,
            message: "slow down".into(),
            retry_after_secs: Some(3),
        });
        assert_eq!((e.status.as_u16(), e.retry_after_secs), (429, Some(3)));
    }
}
