//! The pieces the composition root builds for each service it holds: the auth and inference
//! services with their stores, the chat service, the model port, the signing keys' upkeep, and
//! the common middleware every process wraps its routes in.

use std::sync::Arc;

use axum::Router;
use confab_auth::keys::{KeyEncryption, KeyRing};
use confab_auth::{AuthDeps, AuthService, SqlAuthStore};
use confab_core::audit::AuditLog;
use confab_core::auth::ServiceTokens;
use confab_core::config::Config;
use confab_core::http::{HttpContext, apply_common_layers};
use confab_core::metrics::MetricsBuilder;
use confab_core::net::ProxyTrust;
use confab_core::runtime::LiveSettings;
use confab_inference::InferenceService;
use confab_inference::metrics::InferenceMetrics;
use confab_inference::pulls::SqlPullStore;
use confab_inference::service::{InferenceDeps, InferenceSettings};
use confab_inference::usage::SqlUsageLog;
use confab_store::Db;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::shared::Shared;
use crate::bus::Bus;
use crate::services::Services;

/// The chat service's view of accounts, over the auth service in this process.
pub(super) struct AuthAccounts(pub(super) Arc<AuthService>);

#[async_trait::async_trait]
impl confab_chat::ports::Accounts for AuthAccounts {
    async fn is_active(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<bool, confab_chat::ports::AccountsError> {
        use confab_auth::AuthError;
        match self.0.user(user_id).await {
            Ok(user) => Ok(user.status == confab_auth::domain::UserStatus::Active),
            Err(AuthError::NotFound(_)) => Ok(false),
            Err(e) => Err(confab_chat::ports::AccountsError::Unavailable(
                e.to_string(),
            )),
        }
    }
}

/// The auth service over its store, with its signing keys kept fresh.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of the composition root, by name"
)]
pub(super) async fn auth_service(
    config: &Config,
    db: &Db,
    audit: Arc<dyn AuditLog>,
    live: &LiveSettings,
    bus: &Bus,
    shared: &Shared,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<AuthService>> {
    let auth_store = Arc::new(SqlAuthStore::new(db.clone()));
    let key_encryption = match &config.auth.key_encryption_key {
        Some(secret) => Some(KeyEncryption::from_secret(secret.expose())?),
        None => None,
    };
    let keys = Arc::new(
        KeyRing::open(
            auth_store.clone(),
            config.auth.issuer.clone(),
            config.auth.access_token_ttl_secs,
            config.auth.signing_key_rotation_days,
            key_encryption,
        )
        .await?,
    );
    maintain_signing_keys(keys.clone(), tasks, shutdown.clone());
    Ok(Arc::new(
        AuthService::new(
            AuthDeps {
                store: auth_store,
                keys,
                audit,
                settings: Some(live.clone()),
                jobs: Some(bus.jobs.clone()),
                events: Some(bus.events.clone()),
                // User deletion: the purge request and the services that must answer it.
                purge: Some(confab_auth::PurgeDeps {
                    events: bus.durable.clone(),
                    participants: crate::purge::participants(config)?,
                }),
                login_counters: shared.counters.clone(),
            },
            config.auth.clone(),
        )
        .await?,
    ))
}

/// The inference service over its stores, with interrupted pulls resumed and its circuits
/// exported at each scrape.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of the composition root, by name"
)]
pub(super) async fn inference_service(
    config: &Config,
    db: &Db,
    audit: Arc<dyn AuditLog>,
    live: &LiveSettings,
    bus: &Bus,
    metrics: &mut MetricsBuilder,
    shared: &Shared,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<InferenceService>> {
    let inference_metrics = InferenceMetrics::register(metrics);
    let inference = Arc::new(InferenceService::new(
        InferenceDeps {
            usage: Some(Arc::new(SqlUsageLog::new(db.clone()))),
            pulls: Some(Arc::new(SqlPullStore::new(db.clone()))),
            cache: Some(shared.inference_cache.clone()),
            limits: shared.inference_limits(),
            audit: Some(audit),
            events: Some(bus.durable.clone()),
            jobs: Some(bus.jobs.clone()),
            live_events: Some(bus.events.clone()),
            settings: Some(live.clone()),
            metrics: inference_metrics,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        },
        InferenceSettings {
            config: config.inference.clone(),
            models_dir: config.models_dir(),
        },
    )?);
    let resumed = inference.pulls().resume_interrupted().await?;
    if resumed > 0 {
        tracing::info!(resumed, "interrupted model pulls resumed");
    }
    let circuits = inference.clone();
    metrics.on_scrape(move || circuits.export_circuits());
    Ok(inference)
}

/// The `ModelClient` port: the inference service in this process, or another one's over HTTP
/// (split mode, or `chat.inference_url`).
pub(super) fn model_client(
    config: &Config,
    services: &Services,
    service_tokens: &Option<ServiceTokens>,
    inference: &Option<Arc<InferenceService>>,
) -> anyhow::Result<Arc<dyn confab_model_client::ModelClient>> {
    Ok(
        match (&config.chat.inference_url, service_tokens, inference) {
            (Some(url), Some(tokens), _) => {
                tracing::info!(url = %url, "models are called on a remote inference service");
                Arc::new(
                    confab_model_client::http::HttpModelClient::with_tls(
                        url,
                        tokens.clone(),
                        &confab_core::service_tls::ServiceTls::from_config(&config.services)?,
                    )
                    .map_err(|e| anyhow::anyhow!("chat.inference_url: {e}"))?,
                )
            }
            (_, _, Some(inference)) => {
                Arc::new(crate::models::InProcessModels::new(inference.clone()))
            }
            _ => anyhow::bail!(
                "--services {services}: chat, the SEO studio and the admin service call the \
             inference service; run it in this process or set chat.inference_url \
             (CONFAB_CHAT__INFERENCE_URL)"
            ),
        },
    )
}

/// The chat service over its store and the given models, accounts and files.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of the composition root, by name"
)]
pub(super) fn chat_service(
    config: &Config,
    db: &Db,
    models: Arc<dyn confab_model_client::ModelClient>,
    accounts: Arc<dyn confab_chat::ports::Accounts>,
    files: Arc<dyn confab_chat::ports::FileAccess>,
    bus: &crate::bus::Bus,
    shared: &Shared,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Arc<confab_chat::ChatService> {
    confab_chat::ChatService::new(
        confab_chat::ChatDeps {
            store: Arc::new(confab_chat::SqlChatStore::new(db.clone())),
            models,
            accounts,
            events: bus.events.clone(),
            jobs: Some(bus.jobs.clone()),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            sockets: shared.membership.clone(),
            files,
        },
        confab_chat::ChatSettings {
            default_context_tokens: config.chat.default_context_tokens as usize,
            answer_reserve_tokens: config.chat.answer_reserve_tokens as usize,
            checkpoint_every: std::time::Duration::from_millis(config.chat.checkpoint_ms),
            auto_titles: config.chat.auto_titles,
            import_limit_bytes: usize::try_from(config.chat.import_limit_bytes)
                .unwrap_or(usize::MAX),
            import_concurrency: config.chat.import_concurrency as usize,
            sockets_per_user: config.chat.sockets_per_user as usize,
            // Validated to 0..=2 and (0, 1]: small numbers f32 holds closely enough.
            default_temperature: config.chat.default_temperature as f32,
            default_top_p: config.chat.default_top_p as f32,
            title_temperature: config.chat.title_temperature as f32,
            title_max_tokens: config.chat.title_max_tokens,
            // With NATS, other processes may run chat over the same database.
            answer_lease: config
                .bus
                .nats_url
                .as_ref()
                .map(|_| std::time::Duration::from_secs(config.chat.answer_lease_secs.max(1))),
        },
    )
}

/// Rotates the signing key when it grows too old and follows other replicas' rotations,
/// every minute while the process runs (a retired key keeps verifying for one access-token
/// lifetime plus a minute, so a replica that signs with it until its next look is covered).
fn maintain_signing_keys(keys: Arc<KeyRing>, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate, and `KeyRing::open` has just done that work.
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            match keys.maintain().await {
                Ok(Some(kid)) => tracing::info!(%kid, "signing key rotated by age"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "signing key maintenance failed"),
            }
        }
    });
}

/// Whether the deployment is served over HTTPS (`server.public_url`): cookies are `Secure`
/// and HSTS is sent.
/// Whether browsers reach this process over HTTPS: it serves TLS itself (`[server.tls]`), or
/// its public URL is `https://` (TLS ends at a proxy). Cookies are then `Secure` and responses
/// carry `Strict-Transport-Security`.
pub(super) fn is_https(config: &Config) -> bool {
    config.server.tls.enabled()
        || config
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

/// `router` in the common middleware every process's routes pass through.
pub(super) fn with_common_layers(
    router: Router,
    metrics: Arc<confab_core::metrics::Metrics>,
    config: &Config,
) -> anyhow::Result<Router> {
    // Server-sent event streams are counted until they end (`confab_sse_streams_active`).
    let router = router.layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        confab_core::metrics::streams::track_streams,
    ));
    Ok(apply_common_layers(
        router,
        HttpContext {
            metrics,
            proxies: ProxyTrust::from_config(&config.server).map_err(|e| anyhow::anyhow!(e))?,
            hsts: is_https(config),
        },
        &config.server,
    ))
}
