//! The HTTP error envelope: `{"error": {"code", "message", "request_id"}}`.
//!
//! Handlers return [`ApiError`]; its status and stable snake_case code are a contract. 5xx
//! bodies never carry internal detail: the detail goes to the log, once, in the envelope
//! middleware (see [`crate::http`]).

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable snake_case code.
    pub code: String,
    /// What went wrong and what to fix, for people.
    pub message: String,
    /// The request's id, also in the `x-request-id` header and in the logs.
    pub request_id: String,
    /// Itemised reasons, e.g. every rule a password breaks.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub details: Vec<String>,
}

/// Internal detail of a failure, attached to the response for the log only.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    pub code: Cow<'static, str>,
    pub detail: Option<String>,
}

/// An error as the HTTP edge shows it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub details: Vec<String>,
    pub retry_after_secs: Option<u64>,
    /// Logged, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            retry_after_secs: None,
            internal: None,
        }
    }

    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn validation(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after_secs} s"),
        )
        .with_retry_after(retry_after_secs)
    }

    /// A failure of ours: the client sees a generic message, the log sees `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log for this request id",
        )
        .with_internal(detail)
    }

    /// A dependency is down: the client may retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service temporarily unavailable; retry shortly",
        )
        .with_internal(detail)
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn with_internal(mut self, detail: impl Into<String>) -> Self {
        self.internal = Some(detail.into());
        self
    }

    /// The JSON body for this error, stamped with the current request's id.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_string(),
                message: self.message.clone(),
                request_id: crate::http::current_request_id().unwrap_or_default(),
                details: self.details.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.envelope())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorLog {
            code: self.code,
            detail: self.internal,
        });
        response
    }
}

/// The code used when a response without an envelope carries an error status.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// A human message for a bare error status.
pub fn message_for_status(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such route or resource".into(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that HTTP method".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than the server accepts".into(),
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was cancelled".into(),
        s if s.is_server_error() => "internal error; see the server log for this request id".into(),
        s => s.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
    }
}

/// OpenAPI declarations of the error statuses that shared extractors and middleware return,
/// so every operation lists what it can answer without repeating the same tuples by hand.
///
/// Each type is one class of failure; a handler's `#[utoipa::path(responses(...))]` names the
/// classes its extractors bring, e.g. `responses((status = 200, body = T), Authenticated,
/// JsonBody, NotFound)`. Put them before route-specific tuples: a later tuple for the same
/// status replaces the generic description with the route's own codes. The type parameter is
/// the error schema: [`ErrorEnvelope`] under `/api/v1`, the OpenAI error body under `/v1`.
pub mod responses {
    use std::collections::BTreeMap;
    use std::marker::PhantomData;

    use utoipa::openapi::response::{Response, ResponseBuilder};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr};
    use utoipa::{IntoResponses, ToSchema};

    use super::ErrorEnvelope;

    fn declare<B: ToSchema>(statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
        statuses
            .iter()
            .map(|(status, description)| {
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(B::name())))
                    .build();
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content("application/json", content)
                    .build();
                (status.to_string(), RefOr::T(response))
            })
            .collect()
    }

    macro_rules! class {
        ($(#[$doc:meta])* $name:ident: $(($status:literal, $description:literal)),+ $(,)?) => {
            $(#[$doc])*
            pub struct $name<B = ErrorEnvelope>(PhantomData<B>);

            impl<B: ToSchema> IntoResponses for $name<B> {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    declare::<B>(&[$(($status, $description)),+])
                }
            }
        };
    }

    class!(
        /// Routes behind a bearer credential: none, an invalid, expired or revoked one, and
        /// the credential not checkable now (the accounts database, or in split mode the auth
        /// service, unreachable).
        Authenticated:
        (401, "unauthorized, token_expired, token_revoked: sign in again or send a valid `Authorization: Bearer` credential"),
        (503, "unavailable: the credential cannot be checked now (accounts unreachable); retry later"),
    );
    class!(
        /// Internal routes (`/internal/v1/...`), called by another Confab service as itself
        /// (`InternalCaller`), never by users.
        InternalOnly:
        (401, "unauthorized: internal routes need an internal service token (`cfi_`), which only Confab's services make"),
    );
    class!(
        /// Routes that need an API key scope or a signed-in session rather than a key.
        Forbidden:
        (403, "insufficient_scope: the API key lacks the scope this route needs; session_required: the operation needs a signed-in session, not an API key"),
    );
    class!(
        /// Routes for the admin role (`AdminUser`).
        AdminOnly:
        (403, "forbidden: the admin role is needed; insufficient_scope: the API key lacks the `admin` scope; service_token_not_allowed"),
    );
    class!(
        /// Routes with a JSON request body read by the shared extractor.
        JsonBody:
        (400, "invalid_json: the body is not valid JSON; invalid_body: it could not be read"),
        (413, "payload_too_large: the body is larger than the server accepts"),
        (415, "unsupported_media_type: send `Content-Type: application/json`"),
        (422, "invalid_body: the JSON does not have the expected fields or types"),
    );
    class!(
        /// Routes with query parameters: a value of the wrong type or an unknown enum value.
        BadQuery:
        (400, "bad_request: a path or query parameter is malformed"),
    );
    class!(
        /// Routes with an id in the path: a malformed id, or no such resource for this caller.
        ById:
        (400, "bad_request: a path or query parameter is malformed"),
        (404, "not_found: no such resource, or not yours"),
    );
    class!(
        /// Routes that ask a model: the caller's generation limits, and a model that is busy,
        /// missing or unreachable (the platform's trouble, not the request's).
        ModelCall:
        (429, "rate_limited: this user's or key's generation limit is reached; retry after `Retry-After` seconds"),
        (503, "model_unavailable: no model is configured, or it is busy or unreachable; retry after `Retry-After` seconds when given"),
    );
}
