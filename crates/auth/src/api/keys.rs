//! API keys (list, create, revoke) and the public keys that verify access tokens (JWKS).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::auth::{CurrentUser, JwkSet, Scope};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden, JsonBody};
use confab_core::extract::{ClientMeta, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::ApiKeyView;

use super::AuthState;

/// This area's routes.
pub(super) fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(jwks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// RFC 3339; omit for a key that does not expire.
    #[serde(default, with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
}

/// The key itself (shown only here, once) and its stored description.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    pub key: String,
    pub api_key: ApiKeyView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// The signed-in user's API keys (not revoked).
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "auth",
    responses(Authenticated, Forbidden,
        (status = 200, body = ApiKeyList), (status = 403, body = ErrorEnvelope, description = "session_required")),
    security(("bearer" = [])))]
async fn list_api_keys(
    State(state): State<AuthState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    principal.require_session()?;
    Ok(Json(ApiKeyList {
        items: state.service.list_api_keys(principal.user_id).await?,
    }))
}

/// Create an API key. The key is in the response once and never again.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "auth", request_body = CreateApiKeyRequest,
    responses(
        Authenticated, Forbidden, JsonBody,
        (status = 201, body = CreatedApiKeyResponse),
        (status = 403, body = ErrorEnvelope, description = "session_required"),
        (status = 409, body = ErrorEnvelope, description = "too_many_keys"),
        (status = 422, body = ErrorEnvelope, description = "invalid_name, invalid_scopes, invalid_expiry")),
    security(("bearer" = [])))]
async fn create_api_key(
    State(state): State<AuthState>,
    client: ClientMeta,
    CurrentUser(principal): CurrentUser,
    Json(body): Json<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    principal.require_session()?;
    let created = state
        .service
        .create_api_key(
            &principal,
            &body.name,
            &body.scopes,
            body.expires_at,
            &client,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            key: created.key,
            api_key: created.view,
        }),
    )
        .into_response())
}

/// Revoke one of the signed-in user's API keys.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "Revoked")),
    security(("bearer" = [])))]
async fn revoke_api_key(
    State(state): State<AuthState>,
    client: ClientMeta,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    principal.require_session()?;
    state
        .service
        .revoke_api_key(principal.user_id, id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Public keys that verify access tokens (RFC 7517; Ed25519 per RFC 8037).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = JwkSet)))]
async fn jwks(State(state): State<AuthState>) -> Response {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.service.keys().jwks()),
    )
        .into_response()
}
