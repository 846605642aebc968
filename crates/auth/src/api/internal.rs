//! The auth service's internal routes (`/internal/v1/auth/...`), which other Confab services
//! call as themselves ([`InternalCaller`]) in split mode: what a credential stands for now
//! (introspection, for API keys and for the session behind an access token) and an account's
//! role and status. The gateway never forwards `/internal/`.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use confab_core::ApiError;
use confab_core::auth::AuthFailure;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{ById, InternalOnly, JsonBody};
use confab_core::extract::Json;
use confab_core::internal::{
    InternalAuth, InternalCaller, IntrospectRequest, Introspection, MAX_INTROSPECTED_TOKEN,
    UserStanding,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::service::AuthService;

/// What the internal routes share.
#[derive(Clone)]
pub struct InternalState {
    pub service: Arc<AuthService>,
    /// The deployment's services secret; `InternalAuth(None)` refuses every call.
    pub internal: InternalAuth,
}

impl FromRef<InternalState> for InternalAuth {
    fn from_ref(state: &InternalState) -> Self {
        state.internal.clone()
    }
}

/// The internal routes with their OpenAPI description (tag `internal`).
pub fn internal_router(state: InternalState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(introspect))
        .routes(routes!(user_standing))
        .with_state(state)
        .layer(axum::middleware::map_response(super::no_store))
}

/// A refused credential: 401 with `invalid_token`, `token_expired` or `token_revoked`, so the
/// caller answers its client as the auth service would; 503 when it cannot be checked now.
fn refused(failure: AuthFailure) -> ApiError {
    match failure {
        AuthFailure::Invalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token or API key is invalid",
        ),
        other => other.into(),
    }
}

/// What an access token or API key stands for now (internal: other services' processes).
#[utoipa::path(post, path = "/internal/v1/auth/introspect", tag = "internal",
    request_body = IntrospectRequest,
    responses(InternalOnly, JsonBody,
        (status = 200, body = Introspection),
        (status = 401, body = ErrorEnvelope, description = "invalid_token, token_expired, token_revoked: the credential introspected is refused; unauthorized: no internal token"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the accounts database cannot be reached")),
    security(("bearer" = [])))]
async fn introspect(
    State(state): State<InternalState>,
    _caller: InternalCaller,
    Json(request): Json<IntrospectRequest>,
) -> Result<axum::Json<Introspection>, ApiError> {
    if request.token.len() > MAX_INTROSPECTED_TOKEN {
        return Err(refused(AuthFailure::Invalid));
    }
    state
        .service
        .introspect(request.token.trim())
        .await
        .map(axum::Json)
        .map_err(refused)
}

/// An account's role and status (internal: other services' processes).
#[utoipa::path(get, path = "/internal/v1/auth/users/{id}", tag = "internal",
    params(("id" = Uuid, Path)),
    responses(InternalOnly, ById,
        (status = 200, body = UserStanding),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the accounts database cannot be reached")),
    security(("bearer" = [])))]
async fn user_standing(
    _caller: InternalCaller,
    State(state): State<InternalState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<UserStanding>, ApiError> {
    state
        .service
        .standing(id)
        .await
        .map_err(ApiError::from)?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no such user"))
}
