//! Runtime configuration: settings an admin changes while the platform runs (registration
//! policy, default model, which models users may call, inference limits). A change is
//! validated, stored (`runtime_settings`, one row with a version), audited with what
//! changed, applied to this process's [`LiveSettings`] and published on the event bus
//! (topic `config`), so every replica re-reads and applies it without a restart.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use confab_bus::events::ConfigChanged;
use confab_bus::{Envelope, EventBus, Received};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{AdminUser, DynAuthenticator};
use confab_core::config::RegistrationPolicy;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, JsonBody};
use confab_core::extract::{ClientMeta, Json};
use confab_core::runtime::{LimitLevels, LiveSettings, RuntimeSettings};
use confab_store::{Db, StoreError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub use confab_bus::events::CONFIG_TOPIC;

/// Most entries in `user_models`.
const MAX_MODEL_PATTERNS: usize = 200;

/// The stored settings.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    db: Db,
}

/// The settings with their version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsView {
    pub settings: RuntimeSettings,
    /// 0 while nothing was changed since installation (the start-up configuration's values).
    pub version: i64,
    #[serde(with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<i64>,
    pub updated_by: Option<Uuid>,
}

impl SettingsStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The stored settings, if an admin ever changed them.
    pub async fn load(&self) -> Result<Option<SettingsView>, StoreError> {
        let row = sqlx::query(
            "SELECT settings, version, updated_at, updated_by FROM runtime_settings WHERE id = 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("settings")?;
        let settings = serde_json::from_str(&text)
            .map_err(|e| StoreError::Other(format!("runtime_settings: {e}")))?;
        let updated_by: Option<String> = row.try_get("updated_by")?;
        Ok(Some(SettingsView {
            settings,
            version: row.try_get("version")?,
            updated_at: Some(row.try_get("updated_at")?),
            updated_by: updated_by.and_then(|u| u.parse().ok()),
        }))
    }

    /// Stores `settings` as version `expected + 1`; `Conflict` when another change came
    /// first (the caller read an older version).
    async fn save(
        &self,
        settings: &RuntimeSettings,
        expected: i64,
        by: Uuid,
        now: i64,
    ) -> Result<i64, StoreError> {
        let text = serde_json::to_string(settings).map_err(|e| StoreError::Other(e.to_string()))?;
        let done = if expected == 0 {
            sqlx::query(
                "INSERT INTO runtime_settings (id, settings, version, updated_at, updated_by) \
                 VALUES (1, $1, 1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(text)
            .bind(now)
            .bind(by.to_string())
            .execute(self.db.writer())
            .await?
        } else {
            sqlx::query(
                "UPDATE runtime_settings SET settings = $1, version = version + 1, updated_at = $2, \
                 updated_by = $3 WHERE id = 1 AND version = $4",
            )
            .bind(text)
            .bind(now)
            .bind(by.to_string())
            .bind(expected)
            .execute(self.db.writer())
            .await?
        };
        if done.rows_affected() == 1 {
            Ok(expected + 1)
        } else {
            Err(StoreError::Conflict("version".into()))
        }
    }
}

/// Keeps this process's [`LiveSettings`] in step with the stored settings.
#[derive(Clone)]
pub struct RuntimeConfig {
    store: SettingsStore,
    live: LiveSettings,
    /// The start-up configuration's values: what version 0 means.
    defaults: RuntimeSettings,
    events: Arc<dyn EventBus>,
}

impl RuntimeConfig {
    /// Loads the stored settings (if any) into `live`.
    pub async fn load(
        db: Db,
        live: LiveSettings,
        events: Arc<dyn EventBus>,
    ) -> Result<Self, StoreError> {
        let defaults = (*live.get()).clone();
        let config = Self {
            store: SettingsStore::new(db),
            live,
            defaults,
            events,
        };
        config.reload().await?;
        Ok(config)
    }

    pub fn live(&self) -> &LiveSettings {
        &self.live
    }

    /// Reads the stored settings and puts them in force.
    pub async fn reload(&self) -> Result<SettingsView, StoreError> {
        let view = self.current().await?;
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
    /// events) the stored settings are read again.
    pub fn follow(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let this = self.clone();
        tasks.spawn(async move {
            let mut changes = this.events.subscribe(CONFIG_TOPIC);
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => break,
                    received = changes.next() => received,
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

/// A change: only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// `open`, `approval` or `closed`.
    #[schema(value_type = Option<String>, example = "approval")]
    pub registration: Option<RegistrationPolicy>,
    /// A model name from `/api/v1/models`; `""` clears it (the first local model).
    pub default_model: Option<String>,
    /// Models users (not admins) may call: names or prefixes ending in `*`; `[]`: all.
    pub user_models: Option<Vec<String>>,
    pub limits: Option<LimitsPatch>,
    /// The `version` this change is based on; when given and another change came first,
    /// the answer is 409 `settings_changed`.
    pub version: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub user_requests_per_minute: Option<u32>,
    pub user_tokens_per_day: Option<u64>,
    pub key_requests_per_minute: Option<u32>,
    pub key_tokens_per_day: Option<u64>,
}

/// The model names a default model may take.
pub type ModelNames = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Applies `patch` to `current`; every problem is listed.
pub fn apply_patch(
    current: &RuntimeSettings,
    patch: SettingsPatch,
    models: &[String],
) -> Result<RuntimeSettings, Vec<String>> {
    let mut next = current.clone();
    let mut problems = Vec::new();
    if let Some(policy) = patch.registration {
        next.registration = policy;
    }
    if let Some(model) = patch.default_model {
        let model = model.trim().to_owned();
        if model.is_empty() {
            next.default_model = None;
        } else if models.contains(&model) {
            next.default_model = Some(model);
        } else {
            problems.push(format!(
                "default_model: no model `{model}`; known: {}",
                if models.is_empty() {
                    "none".to_owned()
                } else {
                    models.join(", ")
                }
            ));
        }
    }
    if let Some(patterns) = patch.user_models {
        if patterns.len() > MAX_MODEL_PATTERNS {
            problems.push(format!(
                "user_models: at most {MAX_MODEL_PATTERNS} entries, got {}",
                patterns.len()
            ));
        }
        let mut clean = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            let p = pattern.trim();
            if p.is_empty() || p.len() > 200 || p == "*" {
                problems.push(format!(
                    "user_models[{i}]: give a model name or a prefix ending in `*` (1 to 200 characters; `[]` allows every model)"
                ));
            } else if p.trim_end_matches('*').contains('*') {
                problems.push(format!(
                    "user_models[{i}]: `*` may only end a prefix, as in `llama-*`"
                ));
            } else if !clean.iter().any(|c: &String| c == p) {
                clean.push(p.to_owned());
            }
        }
        next.user_models = clean;
    }
    if let Some(limits) = patch.limits {
        let LimitLevels {
            user_requests_per_minute,
            user_tokens_per_day,
            key_requests_per_minute,
            key_tokens_per_day,
        } = &mut next.limits;
        let rpm_max = 1_000_000;
        for (name, value, target) in [
            (
                "user_requests_per_minute",
                limits.user_requests_per_minute,
                user_requests_per_minute,
            ),
            (
                "key_requests_per_minute",
                limits.key_requests_per_minute,
                key_requests_per_minute,
            ),
        ] {
            if let Some(v) = value {
                if v > rpm_max {
                    problems.push(format!(
                        "limits.{name}: at most {rpm_max} (0 means unlimited), got {v}"
                    ));
                } else {
                    *target = v;
                }
            }
        }
        if let Some(v) = limits.user_tokens_per_day {
            *user_tokens_per_day = v;
        }
        if let Some(v) = limits.key_tokens_per_day {
            *key_tokens_per_day = v;
        }
    }
    if problems.is_empty() {
        Ok(next)
    } else {
        Err(problems)
    }
}

/// What changed between two settings, for the audit log.
fn diff(before: &RuntimeSettings, after: &RuntimeSettings) -> serde_json::Value {
    let b = serde_json::to_value(before).unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (key, new) in a {
            let old = b.get(key).cloned().unwrap_or_default();
            if old != *new {
                changes.insert(key.clone(), json!({"from": old, "to": new}));
            }
        }
    }
    serde_json::Value::Object(changes)
}

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
    let models = (state.models)();
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
            AuditEvent::new("admin.config_changed", Outcome::Success, &client)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RuntimeSettings {
        RuntimeSettings {
            registration: RegistrationPolicy::Open,
            default_model: None,
            user_models: Vec::new(),
            limits: LimitLevels::default(),
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_lists_every_problem() {
        let models = vec!["small".to_owned()];
        let next = apply_patch(
            &base(),
            SettingsPatch {
                registration: Some(RegistrationPolicy::Approval),
                default_model: Some("small".into()),
                ..SettingsPatch::default()
            },
            &models,
        )
        .unwrap();
        assert_eq!(next.registration, RegistrationPolicy::Approval);
        assert_eq!(next.default_model.as_deref(), Some("small"));
        assert_eq!(next.limits, LimitLevels::default());

        let problems = apply_patch(
            &base(),
            SettingsPatch {
                default_model: Some("huge".into()),
                user_models: Some(vec![String::new(), "a*b".into(), "ok-*".into()]),
                limits: Some(LimitsPatch {
                    user_requests_per_minute: Some(5_000_000),
                    ..LimitsPatch::default()
                }),
                ..SettingsPatch::default()
            },
            &models,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("huge") && problems[0].contains("small"));
    }

    #[test]
    fn the_diff_names_changed_fields_only() {
        let mut after = base();
        after.user_models = vec!["x".into()];
        let d = diff(&base(), &after);
        assert_eq!(d, json!({"user_models": {"from": [], "to": ["x"]}}));
    }
}
