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

#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    #[error("{message}")]
    InvalidRequest {
        param: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    ContextLengthExceeded(String),
    #[error("{0}")]
    Unsupported(String),
    /// The upstream answered with an error.
    #[error("upstream {provider} answered {status}: {message}")]
    Upstream {
        provider: String,
        status: u16,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// No backend could be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("the model did not answer in time")]
    Timeout,
    /// The engine failed (our fault).
    #[error("engine: {0}")]
    Engine(String),
}

impl InferenceError {
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        InferenceError::InvalidRequest {
            param: Some(param),
            message: message.into(),
        }
    }
}

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
        let message = error.to_string();
        match error {
            InferenceError::ModelNotFound(_) => OpenAiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                message,
                Some("model"),
            ),
            InferenceError::InvalidRequest { param, message } => {
                OpenAiError::new(StatusCode::BAD_REQUEST, "invalid_request", message, param)
            }
            InferenceError::ContextLengthExceeded(message) => OpenAiError::new(
                StatusCode::BAD_REQUEST,
                "context_length_exceeded",
                message,
                Some("messages"),
            ),
            InferenceError::Unsupported(message) => {
                OpenAiError::new(StatusCode::BAD_REQUEST, "unsupported", message, None)
            }
            InferenceError::Upstream {
                status,
                retry_after_secs,
                ref provider,
                ..
            } => {
                // Client errors and rate limits pass through; anything else is a bad gateway.
                let passed = StatusCode::from_u16(status)
                    .ok()
                    .filter(|s| s.is_client_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let mut e = OpenAiError::new(
                    passed,
                    if passed == StatusCode::TOO_MANY_REQUESTS {
                        "rate_limit_exceeded"
                    } else {
                        "upstream_error"
                    },
                    if passed.is_server_error() {
                        format!("the model backend `{provider}` failed; retry shortly")
                    } else {
                        message.clone()
                    },
                    None,
                );
                e.retry_after_secs = retry_after_secs;
                e.internal = Some(message);
                e
            }
            InferenceError::Unavailable(detail) => {
                let mut e = OpenAiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "no model backend is available; retry shortly",
                    None,
                );
                e.internal = Some(detail);
                e
            }
            InferenceError::Timeout => {
                OpenAiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message, None)
            }
            InferenceError::Engine(detail) => {
                let mut e = OpenAiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the model failed; see the server log for this request id",
                    None,
                );
                e.internal = Some(detail);
                e
            }
        }
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
