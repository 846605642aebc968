//! Presets: a user's named system prompts with parameters.

use axum::extract::{Path, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden, JsonBody};
use confab_core::extract::Json;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ChatState, Chatter};
use crate::domain::{Params, Preset};

pub(super) fn routes() -> OpenApiRouter<ChatState> {
    OpenApiRouter::new()
        .routes(routes!(list_presets, create_preset))
        .routes(routes!(update_preset, delete_preset))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetBody {
    pub name: String,
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresetList {
    pub items: Vec<Preset>,
}

/// The user's presets, by name.
#[utoipa::path(get, path = "/api/v1/presets", tag = "chat",
    responses(Authenticated, Forbidden,
        (status = 200, body = PresetList)),
    security(("bearer" = [])))]
async fn list_presets(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
) -> Result<axum::Json<PresetList>, ApiError> {
    Ok(axum::Json(PresetList {
        items: state.service.presets(&principal).await?,
    }))
}

/// Save a named system prompt with parameters.
#[utoipa::path(post, path = "/api/v1/presets", tag = "chat", request_body = PresetBody,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 201, body = Preset), (status = 409, body = ErrorEnvelope, description = "preset_exists"), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn create_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Json(body): Json<PresetBody>,
) -> Result<(StatusCode, axum::Json<Preset>), ApiError> {
    let preset = state
        .service
        .create_preset(&principal, body.name, body.system_prompt, body.params)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(preset)))
}

/// Replace a preset.
#[utoipa::path(put, path = "/api/v1/presets/{id}", tag = "chat", params(("id" = Uuid, Path)), request_body = PresetBody,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 200, body = Preset), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn update_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
    Json(body): Json<PresetBody>,
) -> Result<axum::Json<Preset>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .update_preset(&principal, id, body.name, body.system_prompt, body.params)
            .await?,
    ))
}

/// Delete a preset.
#[utoipa::path(delete, path = "/api/v1/presets/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "Deleted")),
    security(("bearer" = [])))]
async fn delete_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_preset(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
