//! The gateway's errors: [`GatewayError`] for building it, and the refusals it answers itself,
//! written as the route expects (Confab's envelope, or OpenAI's error body under `/v1`).

use axum::Json;
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::error::ErrorLog;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::routes::Flavor;

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway.upstreams.{service}: {reason}")]
    Upstream {
        service: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Tls(String),
}

/// The OpenAI error `type` for a status.
fn openai_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `error` as a response in the route's flavour.
pub fn refuse(flavor: Flavor, error: ApiError) -> Response {
    match flavor {
        Flavor::Envelope => error.into_response(),
        Flavor::OpenAi => {
            let body = json!({
                "error": {
                    "message": error.message,
                    "type": openai_kind(error.status),
                    "param": null,
                    "code": error.code,
                }
            });
            let mut response = (error.status, Json(body)).into_response();
            if let Some(secs) = error.retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if error.status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response.extensions_mut().insert(ErrorLog {
                code: error.code,
                detail: error.internal,
            });
            response
        }
    }
}

/// A service whose circuit is open, or with no instance to take the request.
pub fn service_unavailable(service: &str, retry_after_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        format!("the {service} service is unavailable; retry in {retry_after_secs} s"),
    )
    .with_retry_after(retry_after_secs)
}

/// An instance that failed to answer in time or at all.
pub fn bad_gateway(service: &str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        format!("the {service} service did not answer"),
    )
    .with_internal(detail)
}

/// An instance that did not send its response headers within the timeout.
pub fn gateway_timeout(service: &str) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        format!("the {service} service took too long to answer"),
    )
}
