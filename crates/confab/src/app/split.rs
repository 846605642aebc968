//! The adapters a split process uses for the services it does not hold: the auth service's
//! over HTTP (tokens verified with its JWKS; sessions, keys and accounts asked of it and
//! cached; revocations followed on the bus) and the admin service's runtime settings.

use std::sync::Arc;

use anyhow::Context;
use confab_admin::ports::SettingsStore;
use confab_auth_client::{RemoteAuthConfig, RemoteAuthenticator};
use confab_bus::EventBus;
use confab_core::auth::ServiceTokens;
use confab_core::config::Config;
use confab_core::http::{NotReady, ReadinessCheck};
use confab_core::service_tls::ServiceTls;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::services::Services;

/// The name this process gives itself when it calls other services' internal routes.
pub(super) fn caller_name(services: &Services) -> String {
    let name = services.to_string().replace(',', "-");
    name.chars().take(32).collect()
}

/// The `Authenticator` of a process without the auth service, started.
pub(super) fn authenticator(
    config: &Config,
    services: &Services,
    tokens: &ServiceTokens,
    events: Arc<dyn EventBus>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<RemoteAuthenticator> {
    let url = config.services.auth_url.as_deref().with_context(|| {
        format!(
            "--services {services}: a process without the auth service needs services.auth_url \
             (CONFAB_SERVICES__AUTH_URL), the auth service's base URL"
        )
    })?;
    let mut remote_config =
        RemoteAuthConfig::new(url, config.auth.issuer.clone(), caller_name(services));
    remote_config.tls = ServiceTls::from_config(&config.services)?;
    let remote = RemoteAuthenticator::new(remote_config, tokens.clone(), events)
        .map_err(|e| anyhow::anyhow!("services.auth_url: {e}"))?;
    remote.start(tasks, shutdown);
    Ok(remote)
}

/// Where a process without the admin service reads the runtime settings.
pub(super) fn settings_store(
    config: &Config,
    services: &Services,
    tokens: &ServiceTokens,
) -> anyhow::Result<Arc<dyn SettingsStore>> {
    let url = config.services.admin_url.as_deref().with_context(|| {
        format!(
            "--services {services}: auth and inference read the runtime settings of the admin \
             service; set services.admin_url (CONFAB_SERVICES__ADMIN_URL)"
        )
    })?;
    Ok(Arc::new(
        crate::remote::HttpSettingsStore::with_tls(
            url,
            tokens.clone(),
            caller_name(services),
            &ServiceTls::from_config(&config.services)?,
        )
        .map_err(|e| anyhow::anyhow!("services.admin_url: {e}"))?,
    ))
}

/// Ready once the auth service's signing keys are known (tokens can be verified).
pub(super) struct AuthKeysLoaded(pub(super) RemoteAuthenticator);

#[async_trait::async_trait]
impl ReadinessCheck for AuthKeysLoaded {
    fn name(&self) -> &'static str {
        "auth_keys"
    }

    async fn check(&self) -> Result<(), NotReady> {
        if self.0.keys_loaded() {
            Ok(())
        } else {
            Err(NotReady(
                "the auth service's signing keys are not loaded yet (services.auth_url)".into(),
            ))
        }
    }
}
