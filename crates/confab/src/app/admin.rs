//! The admin service's routes, mounted where the admin service runs: runtime settings (and
//! their internal route for other processes), background jobs, usage statistics and the audit
//! log.

use std::sync::Arc;

use confab_admin::SqlAuditLog;
use confab_admin::settings::{ModelNames, RuntimeConfig};
use confab_admin::usage::{SqlUsageStats, UsageReadModel};
use confab_core::auth::DynAuthenticator;
use confab_core::config::Config;
use confab_core::internal::InternalAuth;
use utoipa_axum::router::OpenApiRouter;

/// What the admin routes are built from.
pub(super) struct AdminParts<'a> {
    pub(super) config: &'a Config,
    pub(super) audit: Arc<SqlAuditLog>,
    pub(super) runtime_config: RuntimeConfig,
    pub(super) models: ModelNames,
    pub(super) usage_stats: Arc<SqlUsageStats>,
    pub(super) jobs: Arc<dyn confab_bus::JobQueue>,
    pub(super) events: Arc<dyn confab_bus::EventBus>,
    pub(super) authenticator: DynAuthenticator,
    pub(super) internal: InternalAuth,
}

/// `api` with the admin service's routes.
pub(super) fn routes(api: OpenApiRouter, parts: AdminParts<'_>) -> OpenApiRouter {
    let AdminParts {
        config,
        audit,
        runtime_config,
        models,
        usage_stats,
        jobs,
        events,
        authenticator,
        internal,
    } = parts;
    api.merge(confab_admin::settings::internal_router(
        runtime_config.clone(),
        internal,
    ))
    .merge(confab_admin::jobs_api::router(
        confab_admin::jobs_api::JobsState {
            jobs,
            events,
            audit: audit.clone(),
            authenticator: authenticator.clone(),
        },
    ))
    .merge(confab_admin::settings::router(
        confab_admin::settings::SettingsState {
            config: runtime_config,
            models,
            audit: audit.clone(),
            authenticator: authenticator.clone(),
        },
    ))
    .merge(confab_admin::usage_api::router(
        confab_admin::usage_api::UsageState {
            usage: Arc::new(UsageReadModel::new(usage_stats)),
            authenticator: authenticator.clone(),
        },
    ))
    .merge(confab_admin::audit_api::router(confab_admin::AuditState {
        log: audit,
        authenticator,
        archive_dir: Some(confab_admin::archive_dir(&config.data_dir)),
    }))
}
