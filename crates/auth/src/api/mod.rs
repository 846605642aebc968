//! The auth service's HTTP API (`/api/v1/auth/...` and `/.well-known/jwks.json`). Handlers are
//! thin: extract, call [`AuthService`], map the error.
//!
//! Browsers also get the refresh token as an HttpOnly, SameSite=Strict cookie. A state change
//! authenticated by that cookie (refresh, logout) must echo the `confab_csrf` cookie in the
//! `x-csrf-token` header (double-submit), which a cross-site page cannot read.
//!
//! One module per area, each with its routes and its request and response types: `internal`
//! (`/internal/v1/auth/...`, for other services' processes, with its own state), `sessions`
//! (registration, sign-in, refresh, logout, the profile and passwords), `keys` (API keys and
//! the public signing keys) and `users` (user and group administration). This module holds
//! the state, the cache policy and the mapping of the service's errors to HTTP.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::Response;
use confab_core::ApiError;
use confab_core::auth::DynAuthenticator;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{AuthError, AuthService};
use crate::throttle::IpThrottle;
use confab_store::StoreError;

mod internal;
mod keys;
mod sessions;
mod users;

pub use internal::{InternalState, internal_router};

pub use keys::{ApiKeyList, CreateApiKeyRequest, CreatedApiKeyResponse};
pub use sessions::{
    ChangePasswordRequest, CompleteResetRequest, LoginRequest, RefreshRequest, RegisterRequest,
    RegisterResponse, TokenResponse, UpdateMeRequest,
};
pub use users::{
    CreateGroupRequest, GroupList, PasswordResetResponse, UpdateUserRequest, UserDeletionResponse,
    UserQuery,
};

pub const REFRESH_COOKIE: &str = "confab_refresh";
pub const CSRF_COOKIE: &str = "confab_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// What the auth routes share.
#[derive(Clone)]
pub struct AuthState {
    pub service: Arc<AuthService>,
    pub authenticator: DynAuthenticator,
    pub throttle: Arc<IpThrottle>,
    /// Cookies are `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// `X-Forwarded-Proto: https` also makes them `Secure`.
    pub trust_proxy_headers: bool,
}

impl FromRef<AuthState> for DynAuthenticator {
    fn from_ref(state: &AuthState) -> Self {
        state.authenticator.clone()
    }
}

/// The auth routes with their OpenAPI description.
pub fn router(state: AuthState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(sessions::routes())
        .merge(keys::routes())
        .merge(users::routes())
        .with_state(state)
        .layer(axum::middleware::map_response(no_store))
}

/// Responses here carry tokens, keys, temporary passwords or account data: no cache (the
/// browser's, a proxy's) may keep them. A route that sets its own policy (the public JWKS)
/// keeps it.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    response
}

/// Each auth failure as the API answers it: its status, stable code and message; store and
/// key-ring failures are internal (their detail goes to the log, never to the client).
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Invalid {
                code,
                message,
                details,
            } => ApiError::validation(code, message).with_details(details),
            AuthError::EmailTaken => ApiError::conflict("email_taken", message),
            AuthError::RegistrationClosed => ApiError::forbidden("registration_closed", message),
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::Throttled { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_throttled", message)
                    .with_retry_after(retry_after_secs)
            }
            AuthError::Pending => ApiError::forbidden("account_pending", message),
            AuthError::Disabled => ApiError::forbidden("account_disabled", message),
            AuthError::InvalidRefresh => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", message)
            }
            AuthError::RefreshReused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "refresh_token_reused", message)
            }
            AuthError::WrongPassword => ApiError::forbidden("wrong_password", message),
            AuthError::PasswordChangeRequired => {
                ApiError::forbidden("password_change_required", message)
            }
            AuthError::NotFound(_) => ApiError::not_found(message),
            AuthError::Conflict { code, message } => ApiError::conflict(code, message),
            AuthError::Store(StoreError::NotFound) => ApiError::not_found("not found"),
            AuthError::Store(StoreError::Unavailable(detail)) => ApiError::unavailable(detail),
            AuthError::Store(other) => ApiError::internal(other.to_string()),
            AuthError::Keys(e) => ApiError::internal(e.to_string()),
            AuthError::Internal(detail) => ApiError::internal(detail),
        }
    }
}
