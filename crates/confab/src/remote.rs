//! Adapters for a process that runs without some services (split mode): the chat service's
//! [`Accounts`] over the auth service ([`RemoteAccounts`], through `RemoteAuthenticator`'s
//! cached account standing) and the runtime settings' [`SettingsStore`] over the admin
//! service's internal route ([`HttpSettingsStore`]: reads only; settings change only through
//! the admin service).

use confab_core::service_tls::ServiceTls;
use std::time::Duration;

use async_trait::async_trait;
use confab_admin::ports::SettingsStore;
use confab_admin::settings::{SettingsView, StoredSettings};
use confab_auth_client::RemoteAuthenticator;
use confab_chat::ports::{Accounts, AccountsError};
use confab_core::auth::{AuthFailure, ServiceTokens};
use confab_core::runtime::RuntimeSettings;
use confab_store::StoreError;
use uuid::Uuid;

/// Whether an account is active, asked of the auth service (cached, and dropped on
/// revocations, by the `RemoteAuthenticator`).
pub struct RemoteAccounts(pub RemoteAuthenticator);

#[async_trait]
impl Accounts for RemoteAccounts {
    async fn is_active(&self, user_id: Uuid) -> Result<bool, AccountsError> {
        match self.0.standing(user_id).await {
            Ok(standing) => Ok(standing.is_some_and(|s| s.active)),
            Err(AuthFailure::Unavailable(detail)) => Err(AccountsError::Unavailable(detail)),
            Err(other) => Err(AccountsError::Unavailable(other.to_string())),
        }
    }
}

/// The stored runtime settings read from the admin service
/// (`GET /internal/v1/admin/settings`); saving is refused.
pub struct HttpSettingsStore {
    http: reqwest::Client,
    url: String,
    tokens: ServiceTokens,
    caller: String,
}

impl HttpSettingsStore {
    /// Over the admin service at `admin_url` (e.g. `http://admin:8080`), calling as `caller`.
    pub fn new(
        admin_url: &str,
        tokens: ServiceTokens,
        caller: impl Into<String>,
    ) -> Result<Self, StoreError> {
        Self::with_tls(admin_url, tokens, caller, &ServiceTls::default())
    }

    /// [`Self::new`] with the deployment's trust for calls between services.
    pub fn with_tls(
        admin_url: &str,
        tokens: ServiceTokens,
        caller: impl Into<String>,
        tls: &ServiceTls,
    ) -> Result<Self, StoreError> {
        let http = tls
            .client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::Config(format!("HTTP client for the admin service: {e}")))?;
        Ok(Self {
            http,
            url: format!(
                "{}/internal/v1/admin/settings",
                admin_url.trim_end_matches('/')
            ),
            tokens,
            caller: caller.into(),
        })
    }
}

fn unreachable_admin(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the admin service's settings cannot be read: {e}"))
}

#[async_trait]
impl SettingsStore for HttpSettingsStore {
    async fn load(&self) -> Result<Option<SettingsView>, StoreError> {
        let token = self
            .tokens
            .mint_internal(&self.caller)
            .map_err(unreachable_admin)?;
        let response = self
            .http
            .get(&self.url)
            .headers(confab_core::telemetry::otel::trace_headers())
            .bearer_auth(token)
            .send()
            .await
            .map_err(unreachable_admin)?;
        if !response.status().is_success() {
            return Err(unreachable_admin(response.status()));
        }
        let stored: StoredSettings = response.json().await.map_err(unreachable_admin)?;
        Ok(stored.record)
    }

    async fn save(
        &self,
        _settings: &RuntimeSettings,
        _expected: i64,
        _by: Uuid,
        _now_ms: i64,
    ) -> Result<i64, StoreError> {
        Err(StoreError::Other(
            "runtime settings change only through the admin service (PATCH /api/v1/admin/settings); \
             this process reads them from it"
                .into(),
        ))
    }
}
