//! `GET /internal/v1/admin/settings`: the stored runtime settings for processes without the
//! admin service (split mode), which read them through an HTTP adapter of `SettingsStore` and
//! follow `config.changed` events like every replica.

use axum::extract::{FromRef, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::InternalOnly;
use confab_core::internal::{InternalAuth, InternalCaller};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{RuntimeConfig, SettingsView, store_error};

/// The stored settings record; `record` is null while no admin changed them (version 0:
/// every process uses its configuration's values).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredSettings {
    pub record: Option<SettingsView>,
}

#[derive(Clone)]
struct InternalSettingsState {
    config: RuntimeConfig,
    internal: InternalAuth,
}

impl FromRef<InternalSettingsState> for InternalAuth {
    fn from_ref(state: &InternalSettingsState) -> Self {
        state.internal.clone()
    }
}

/// The admin service's internal routes (tag `internal`).
pub fn internal_router(config: RuntimeConfig, internal: InternalAuth) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(stored_settings))
        .with_state(InternalSettingsState { config, internal })
}

/// The stored runtime settings and their version (internal: other services' processes).
#[utoipa::path(get, path = "/internal/v1/admin/settings", tag = "internal",
    responses(InternalOnly,
        (status = 200, body = StoredSettings),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the settings cannot be read now")),
    security(("bearer" = [])))]
async fn stored_settings(
    _caller: InternalCaller,
    State(state): State<InternalSettingsState>,
) -> Result<axum::Json<StoredSettings>, ApiError> {
    let record = state.config.store.load().await.map_err(store_error)?;
    Ok(axum::Json(StoredSettings { record }))
}
