//! Runtime configuration: settings an admin changes while the platform runs (registration
//! policy, default model, which models users may call, inference limits). A change is
//! validated, stored (`runtime_settings`, one row with a version), audited with what
//! changed, applied to this process's [`LiveSettings`] and published on the event bus
//! (topic `config`), so every replica re-reads and applies it without a restart.
//!
//! The rules of a change are pure ([`patch`]); the stored row is reached through the
//! [`SettingsStore`] port, whose SQL adapter is [`SqlSettingsStore`].

mod internal;
pub mod patch;
mod store;

use crate::actions::AdminAction;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use confab_bus::events::ConfigChanged;
use confab_bus::{Envelope, EventBus, Received};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{AdminUser, DynAuthenticator};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, JsonBody};
use confab_core::extract::{ClientMeta, Json};
use confab_core::runtime::{LiveSettings, RuntimeSettings};
use confab_store::StoreError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub use confab_bus::events::CONFIG_TOPIC;
pub use internal::{StoredSettings, internal_router};
pub use patch::{LimitsPatch, SettingsPatch, apply_patch, diff};
pub use store::SqlSettingsStore;

use crate::ports::SettingsStore;

/// The settings with their version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    pub settings: RuntimeSettings,
    /// 0 while nothing was changed since installation (the start-up configuration's values).
    pub version: i64,
    #[serde(with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<i64>,
    pub updated_by: Option<Uuid>,
}

/// Keeps this process's [`LiveSettings`] in step with the stored settings.
#[derive(Clone)]
pub struct RuntimeConfig {
    store: Arc<dyn SettingsStore>,
    live: LiveSettings,
    /// The start-up configuration's values: what version 0 means.
    defaults: RuntimeSettings,
    events: Arc<dyn EventBus>,
    /// Whether the stored settings were read once (a process that started while the store
    /// was unreachable runs on `defaults` and keeps trying).
    loaded: Arc<std::sync::atomic::AtomicBool>,
}

/// How often a process that could not read the stored settings at start tries again.
const RETRY_LOAD: std::time::Duration = std::time::Duration::from_secs(5);

impl RuntimeConfig {
    /// Loads the stored settings (if any) into `live`.
    pub async fn load(
        store: Arc<dyn SettingsStore>,
        live: LiveSettings,
        events: Arc<dyn EventBus>,
    ) -> Result<Self, StoreError> {
        let config = Self::unloaded(store, live, events);
        config.reload().await?;
        Ok(config)
    }

    fn unloaded(
        store: Arc<dyn SettingsStore>,
        live: LiveSettings,
        events: Arc<dyn EventBus>,
    ) -> Self {
        let defaults = (*live.get()).clone();
        Self {
            store,
            live,
            defaults,
            events,
            loaded: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Like [`Self::load`], for a process whose settings come from another (over HTTP from
    /// the admin service): if they cannot be read now, the configuration's values stay in
    /// force and [`Self::follow`] keeps trying until they can.
    pub async fn load_or_defaults(
        store: Arc<dyn SettingsStore>,
        live: LiveSettings,
        events: Arc<dyn EventBus>,
    ) -> Self {
        let config = Self::unloaded(store, live, events);
        if let Err(e) = config.reload().await {
            tracing::warn!(error = %e, "runtime settings unavailable; using the configuration's until they can be read");
        }
        config
    }

    /// Whether the stored settings were read at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn live(&self) -> &LiveSettings {
        &self.live
    }

    /// Reads the stored settings and puts them in force.
    pub async fn reload(&self) -> Result<SettingsView, StoreError> {
        let view = self.current().await?;
        self.loaded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if self.live.set(view.settings.clone()) {
            tracing::info!(version = view.version, "runtime settings applied");
        }
        Ok(view)
    }

    pub async fn current(&self) -> Result<SettingsView, StoreError> {
        Ok(self.store.load().await?.unwrap_or_else(|| SettingsView {
            settings: self.defaults.clone(),
            version: 0,
            updated_at: None,
            updated_by: None,
        }))
    }

    /// Follows other replicas' changes: on every `config.changed` event (or after missing
    /// events) the stored settings are read again; until they were read once, every
    /// [`RETRY_LOAD`] too.
    pub fn follow(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let this = self.clone();
        tasks.spawn(async move {
            let mut changes = this.events.subscribe(CONFIG_TOPIC);
            let mut retry = tokio::time::interval(RETRY_LOAD);
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => break,
                    received = changes.next() => received,
                    _ = retry.tick(), if !this.is_loaded() => {
                        if this.reload().await.is_ok() {
                            tracing::info!("runtime settings read; the configuration's values no longer stand in");
                        }
                        continue;
                    }
                };
                match received {
                    Some(Received::Event(_) | Received::Lagged(_)) => {
                        if let Err(e) = this.reload().await {
                            tracing::warn!(error = %e, "cannot reload the runtime settings");
                        }
                    }
                    None => break,
                }
            }
        });
    }
}

/// Where the model names a default model may take come from: the inference service, in this
/// process or another one's.
pub type ModelNames = Arc<dyn confab_model_client::ModelClient>;

#[derive(Clone)]
pub struct SettingsState {
    pub config: RuntimeConfig,
    pub models: ModelNames,
    pub audit: Arc<dyn AuditLog>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<SettingsState> for DynAuthenticator {
    fn from_ref(state: &SettingsState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: SettingsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(get_settings, update_settings))
        .with_state(state)
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(detail) => ApiError::unavailable(detail),
        other => ApiError::internal(other.to_string()),
    }
}

/// The runtime settings in force (admin).
#[utoipa::path(get, path = "/api/v1/admin/settings", tag = "admin",
    responses(Authenticated, AdminOnly,
        (status = 200, body = SettingsView)),
    security(("bearer" = [])))]
async fn get_settings(
    State(state): State<SettingsState>,
    _admin: AdminUser,
) -> Result<axum::Json<SettingsView>, ApiError> {
    Ok(axum::Json(
        state.config.current().await.map_err(store_error)?,
    ))
}

/// Change runtime settings (admin): validated, stored, audited, and applied by every
/// replica without a restart.
#[utoipa::path(patch, path = "/api/v1/admin/settings", tag = "admin", request_body = SettingsPatch,
    responses(Authenticated, AdminOnly, JsonBody,
        (status = 200, body = SettingsView), (status = 409, body = ErrorEnvelope, description = "settings_changed: another change came first"),
        (status = 422, body = ErrorEnvelope, description = "invalid_settings, with every problem in details")),
    security(("bearer" = [])))]
async fn update_settings(
    State(state): State<SettingsState>,
    admin: AdminUser,
    client: ClientMeta,
    Json(patch): Json<SettingsPatch>,
) -> Result<axum::Json<SettingsView>, ApiError> {
    let current = state.config.current().await.map_err(store_error)?;
    if let Some(version) = patch.version
        && version != current.version
    {
        return Err(changed_meanwhile(current.version));
    }
    let models: Vec<String> = state
        .models
        .models()
        .await
        .map_err(|e| {
            ApiError::unavailable(format!(
                "cannot list the models to check the change against: {}",
                e.internal()
                    .map_or_else(|| e.public_message(), str::to_owned)
            ))
        })?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let next = apply_patch(&current.settings, patch, &models).map_err(|problems| {
        ApiError::validation(
            "invalid_settings",
            format!("the settings were not changed: {}", problems.join("; ")),
        )
        .with_details(problems)
    })?;
    let by = admin.principal().user_id;
    let changes = diff(&current.settings, &next);
    if changes.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(axum::Json(current));
    }
    let version = match state
        .config
        .store
        .save(&next, current.version, by, confab_core::now_ms())
        .await
    {
        Ok(v) => v,
        Err(StoreError::Conflict(_)) => return Err(changed_meanwhile(current.version + 1)),
        Err(e) => return Err(store_error(e)),
    };
    state
        .audit
        .record(
            AuditEvent::new(AdminAction::ConfigChanged, Outcome::Success, &client)
                .actor(by)
                .target("runtime_settings")
                .details(json!({"version": version, "changes": changes})),
        )
        .await
        .ok();
    let view = state.config.reload().await.map_err(store_error)?;
    if let Err(e) = state
        .config
        .events
        .publish(Envelope::typed(&ConfigChanged { version }))
        .await
    {
        // Stored and applied here; other replicas pick it up at their next reload.
        tracing::warn!(error = %e, "cannot publish the settings change");
    }
    Ok(axum::Json(view))
}

fn changed_meanwhile(version: i64) -> ApiError {
    ApiError::conflict(
        "settings_changed",
        format!(
            "the settings changed meanwhile (now version {version}); read them again and reapply your change"
        ),
    )
}
