//! Assembles the all-in-one application from configuration.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use confab_admin::SqlAuditLog;
use confab_admin::settings::{RuntimeConfig, SqlSettingsStore};
use confab_admin::usage::{SqlUsageStats, UsageProjection, UsageReadModel};
use confab_auth::keys::{KeyEncryption, KeyRing};
use confab_auth::throttle::IpThrottle;
use confab_auth::{AuthDeps, AuthService, AuthState, SqlAuthStore};
use confab_bus::{WorkerConfig, Workers};
use confab_cache::MemoryCache;
use confab_core::auth::{DynAuthenticator, ServiceTokens, WithServiceTokens};
use confab_core::config::Config;
use confab_core::http::{HttpContext, apply_common_layers, ops_router};
use confab_core::metrics::MetricsBuilder;
use confab_core::net::ProxyTrust;
use confab_core::runtime::{LiveSettings, RuntimeSettings};
use confab_inference::metrics::InferenceMetrics;
use confab_inference::pulls::SqlPullStore;
use confab_inference::service::{InferenceDeps, InferenceSettings};
use confab_inference::usage::SqlUsageLog;
use confab_inference::{InferenceService, InferenceState};
use confab_store::{Db, MigrationReport, ServiceMigrations};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The chat service's view of accounts, over the auth service in this process.
struct AuthAccounts(Arc<AuthService>);

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

/// Every service's migrations, in the order they apply.
pub fn all_migrations() -> Vec<ServiceMigrations> {
    vec![
        confab_bus::migrations(),
        confab_admin::migrations(),
        confab_auth::migrations(),
        confab_inference::migrations(),
        confab_chat::migrations(),
        confab_seo::migrations(),
    ]
}

/// Applies every pending migration (`confab migrate`).
pub async fn migrate(db: &Db) -> anyhow::Result<Vec<MigrationReport>> {
    let mut reports = Vec::new();
    for migrations in all_migrations() {
        reports.push(migrations.run(db).await?);
    }
    Ok(reports)
}

/// A built application, ready to serve.
pub struct App {
    pub router: Router,
    pub db: Db,
    pub auth: Arc<AuthService>,
    pub inference: Arc<InferenceService>,
    pub chat: Arc<confab_chat::ChatService>,
    pub seo: Arc<confab_seo::SeoService>,
    /// Live events of this process (or of every replica, over NATS).
    pub events: Arc<dyn confab_bus::EventBus>,
    pub openapi: utoipa::openapi::OpenApi,
    /// Background work that must finish before shutdown.
    pub tasks: TaskTracker,
    /// Cancelled when shutdown begins, so background work flushes and stops.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// Connects to the database, migrates (or verifies), and builds every service.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let db = Db::connect(&config.database_url(), &config.database)
        .await
        .context("cannot open the database")?;
    for migrations in all_migrations() {
        if config.database.auto_migrate {
            let report = migrations.run(&db).await?;
            if report.applied_now > 0 {
                tracing::info!(
                    service = report.service,
                    applied = report.applied_now,
                    "migrations applied"
                );
            }
        } else {
            migrations.verify(&db).await?;
        }
    }

    let mut metrics = MetricsBuilder::new();
    db.register_metrics(&mut metrics);
    let inference_metrics = InferenceMetrics::register(&mut metrics);
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();

    let audit = Arc::new(SqlAuditLog::open(db.clone()).await?);
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
    maintain_signing_keys(keys.clone(), &tasks, shutdown.clone());
    // Events, durable events and jobs: in this process and the database, or through NATS
    // JetStream when configured (split mode, several replicas).
    let bus = crate::bus::connect(config, &db).await?;
    let events = bus.events.clone();
    let jobs = bus.jobs.clone();
    // Settings admins change at run time, followed by every service that reads them.
    let live = LiveSettings::new(RuntimeSettings::from_config(config));
    let runtime_config = RuntimeConfig::load(
        Arc::new(SqlSettingsStore::new(db.clone())),
        live.clone(),
        events.clone(),
    )
    .await
    .context("cannot load the runtime settings")?;
    runtime_config.follow(&tasks, shutdown.clone());
    let auth = Arc::new(
        AuthService::new(
            AuthDeps {
                store: auth_store,
                keys,
                audit: audit.clone(),
                settings: Some(live.clone()),
                jobs: Some(jobs.clone()),
                events: Some(events.clone()),
            },
            config.auth.clone(),
        )
        .await?,
    );
    // With a services secret, the other services of a split deployment may call this one on
    // a user's behalf (the chat service of another process calling inference here).
    let service_tokens = match &config.services.token {
        Some(token) => Some(
            ServiceTokens::new(token.expose().as_bytes())
                .map_err(|e| anyhow::anyhow!("services.token: {e}"))?,
        ),
        None => None,
    };
    let authenticator: DynAuthenticator = match &service_tokens {
        Some(tokens) => Arc::new(WithServiceTokens {
            inner: auth.clone(),
            tokens: tokens.clone(),
        }),
        None => auth.clone(),
    };
    // Revocations published by other auth replicas drop this one's cached lookups.
    auth.follow_revocations(&tasks, shutdown.clone());
    let internal_auth = confab_core::internal::InternalAuth(service_tokens.clone());
    let https = config
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let auth_state = AuthState {
        service: auth.clone(),
        authenticator: authenticator.clone(),
        throttle: Arc::new(IpThrottle::new(
            config.auth.ip_rate_limit_per_minute,
            config.auth.ip_rate_limit_burst,
        )),
        secure_cookies: https,
        trust_proxy_headers: config.server.trust_proxy_headers,
    };

    // Durable events (the outbox table in the database): usage records feed the usage
    // statistics of the admin service through them.
    let durable = bus.durable.clone();
    let usage_stats = Arc::new(SqlUsageStats::new(db.clone()));
    UsageProjection::start(
        usage_stats.clone(),
        durable.clone(),
        &tasks,
        shutdown.clone(),
    );
    let usage_state = confab_admin::usage_api::UsageState {
        usage: Arc::new(UsageReadModel::new(usage_stats)),
        authenticator: authenticator.clone(),
    };

    let inference = Arc::new(InferenceService::new(
        InferenceDeps {
            usage: Some(Arc::new(SqlUsageLog::new(db.clone()))),
            pulls: Some(Arc::new(SqlPullStore::new(db.clone()))),
            cache: Some(Arc::new(MemoryCache::new(
                config.inference.cache.max_entries,
            ))),
            audit: Some(audit.clone()),
            events: Some(durable.clone()),
            jobs: Some(jobs.clone()),
            live_events: Some(events.clone()),
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
    let metrics = metrics.finish();
    let inference_state = InferenceState {
        service: inference.clone(),
        authenticator: authenticator.clone(),
    };

    // The chat service's models: the inference service in this process, or another one's
    // over HTTP (split mode).
    let models: Arc<dyn confab_model_client::ModelClient> =
        match (&config.chat.inference_url, &service_tokens) {
            (Some(url), Some(tokens)) => {
                tracing::info!(url = %url, "the chat service calls a remote inference service");
                Arc::new(
                    confab_model_client::http::HttpModelClient::new(url, tokens.clone())
                        .map_err(|e| anyhow::anyhow!("chat.inference_url: {e}"))?,
                )
            }
            _ => Arc::new(crate::models::InProcessModels::new(inference.clone())),
        };
    let chat = confab_chat::ChatService::new(
        confab_chat::ChatDeps {
            store: Arc::new(confab_chat::SqlChatStore::new(db.clone())),
            models: models.clone(),
            accounts: Arc::new(AuthAccounts(auth.clone())),
            events: events.clone(),
            jobs: Some(jobs.clone()),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
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
        },
    );
    let chat_models = models;
    let interrupted = chat.recover().await?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "answers cut off by the last stop are marked interrupted"
        );
    }
    // The SEO studio calls models through the same port as chat (the inference service in
    // this process, or another one's over HTTP).
    let seo = confab_seo::SeoService::new(
        confab_seo::SeoDeps {
            store: Arc::new(confab_seo::SqlSeoStore::new(db.clone())),
            models: chat_models,
            jobs: jobs.clone(),
            events: events.clone(),
            youtube: youtube_deps(config, &db)?,
        },
        seo_settings(&config.seo),
    );
    // The workers that run this process's share of the background jobs.
    let mut workers = Workers::new(
        jobs.clone(),
        events.clone(),
        WorkerConfig {
            lease: std::time::Duration::from_secs(config.bus.job_lease_secs),
            poll: std::time::Duration::from_millis(config.bus.job_poll_ms),
            ..WorkerConfig::default()
        },
    );
    crate::jobs::register(
        &mut workers,
        config.bus.job_concurrency as usize,
        auth.clone(),
        chat.clone(),
        inference.pulls().clone(),
        seo.clone(),
    );
    workers.start(&tasks, shutdown.clone());
    crate::maintenance::start(config, bus.clone(), audit.clone(), &tasks, shutdown.clone());
    let jobs_state = confab_admin::jobs_api::JobsState {
        jobs: jobs.clone(),
        events: events.clone(),
        audit: audit.clone(),
        authenticator: authenticator.clone(),
    };
    let model_names = inference.clone();
    let admin_internal =
        confab_admin::settings::internal_router(runtime_config.clone(), internal_auth.clone());
    let settings_state = confab_admin::settings::SettingsState {
        config: runtime_config,
        models: Arc::new(move || model_names.models().into_iter().map(|m| m.id).collect()),
        audit: audit.clone(),
        authenticator: authenticator.clone(),
    };

    let chat_state = confab_chat::ChatState {
        service: chat.clone(),
        authenticator: authenticator.clone(),
        audit: audit.clone(),
    };

    let (api_router, openapi) = OpenApiRouter::with_openapi(crate::docs::ApiDoc::openapi())
        .merge(confab_auth::router(auth_state))
        // Internal routes (`/internal/v1/...`): other services' processes, as themselves.
        .merge(confab_auth::internal_router(confab_auth::InternalState {
            service: auth.clone(),
            internal: internal_auth,
        }))
        .merge(admin_internal)
        .merge(confab_inference::router(inference_state))
        .merge(confab_chat::router(chat_state))
        .merge(confab_seo::router(confab_seo::SeoState {
            service: seo.clone(),
            authenticator: authenticator.clone(),
        }))
        .merge(confab_admin::jobs_api::router(jobs_state))
        .merge(confab_admin::settings::router(settings_state))
        .merge(confab_admin::usage_api::router(usage_state))
        .merge(confab_admin::audit_api::router(confab_admin::AuditState {
            log: audit.clone(),
            authenticator: authenticator.clone(),
            archive_dir: Some(confab_admin::archive_dir(&config.data_dir)),
        }))
        .split_for_parts();
    let router = api_router
        .merge(ops_router(
            metrics.clone(),
            vec![db.readiness()],
            config.server.metrics_token.clone(),
        ))
        .merge(crate::docs::router(&openapi)?)
        .fallback(crate::web::fallback);
    let router = apply_common_layers(
        router,
        HttpContext {
            metrics,
            proxies: ProxyTrust::from_config(&config.server).map_err(|e| anyhow::anyhow!(e))?,
            hsts: https,
        },
        &config.server,
    );
    Ok(App {
        router,
        db,
        auth,
        inference,
        chat,
        seo,
        events,
        openapi,
        tasks,
        shutdown,
    })
}

/// The SEO studio's settings from `[seo]`.
fn seo_settings(config: &confab_core::config::SeoConfig) -> confab_seo::SeoSettings {
    let w = &config.score_weights;
    confab_seo::SeoSettings {
        transcript_max_bytes: usize::try_from(config.transcript_max_bytes).unwrap_or(usize::MAX),
        generations_per_user: config.generations_per_user as usize,
        model: config.model.clone(),
        // Validated to 0..=2: f32 holds it closely enough.
        temperature: config.temperature as f32,
        max_tokens: config.max_tokens,
        default_context_tokens: config.default_context_tokens as usize,
        weights: confab_seo::domain::score::Weights {
            title: w.title,
            description: w.description,
            keyword_alignment: w.keyword_alignment,
            tags: w.tags,
            hashtags: w.hashtags,
            chapters: w.chapters,
            thumbnail_text: w.thumbnail_text,
        },
        feeds_per_user: config.feeds_per_user as usize,
    }
}

/// The SEO studio's way to YouTube, from `[seo.youtube]`: the Data API client (with the quota
/// ledger it reserves from), the OAuth client of `YOUTUBE_CREDENTIALS`, and the key that
/// seals channel tokens.
fn youtube_deps(config: &Config, db: &Db) -> anyhow::Result<confab_seo::service::YouTubeDeps> {
    use confab_seo::quota::{Bucket, BucketLimits, Charge, CostProfile, QuotaSettings};
    use confab_seo::youtube::oauth::{Credentials, OAuthClient};
    let yt = &config.seo.youtube;
    let settings = confab_seo::youtube::YouTubeSettings {
        api_base: yt.api_base.clone(),
        oauth_token_url: yt.oauth_token_url.clone(),
        oauth_auth_url: yt.oauth_auth_url.clone(),
        api_key: yt.api_key.clone(),
        timeout_ms: yt.timeout_secs.saturating_mul(1000),
        retry: confab_seo::youtube::RetrySettings {
            attempts: yt.max_attempts,
            base_ms: yt.backoff_base_ms,
            cap_ms: yt.backoff_cap_ms,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut cost_overrides = std::collections::BTreeMap::new();
    for (name, units) in &yt.costs {
        let method =
            serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
                anyhow::anyhow!(
                    "seo.youtube.costs: `{name}` is not a YouTube API method such as search.list"
                )
            })?;
        cost_overrides.insert(
            method,
            vec![Charge {
                bucket: Bucket::DailyUnits,
                amount: u64::from(*units),
            }],
        );
    }
    let clock: Arc<dyn confab_seo::quota::Clock> = Arc::new(confab_seo::quota::SystemClock);
    let quota = Arc::new(confab_seo::quota::SqlQuotaLedger::new(
        db.clone(),
        QuotaSettings {
            limits: BucketLimits {
                daily_units: u64::from(yt.daily_units),
                search_calls: u64::from(yt.search_calls),
                insert_calls: u64::from(yt.insert_calls),
            },
            profile: if yt.quota_profile == "legacy" {
                CostProfile::Legacy
            } else {
                CostProfile::Y2026
            },
            cost_overrides,
        },
        clock.clone(),
    ));
    let api = Arc::new(
        confab_seo::youtube::HttpYouTube::new(settings.clone(), quota.clone())
            .map_err(|e| anyhow::anyhow!("seo.youtube: {e}"))?,
    );
    let (oauth, operator_refresh_token) = match &yt.credentials {
        None => (None, None),
        Some(json) => {
            let credentials = Credentials::from_json(json.expose()).map_err(|e| {
                anyhow::anyhow!("seo.youtube.credentials (YOUTUBE_CREDENTIALS): {e}")
            })?;
            let (client, refresh) = match credentials {
                Credentials::Client(client) => (client, None),
                Credentials::AuthorizedUser {
                    client,
                    refresh_token,
                } => (client, Some(refresh_token)),
            };
            let oauth = OAuthClient::new(&settings, client, clock)
                .map_err(|e| anyhow::anyhow!("seo.youtube.credentials: {e}"))?;
            (Some(oauth), refresh)
        }
    };
    let sealing_key = yt
        .token_encryption_key
        .as_ref()
        .or(config.auth.key_encryption_key.as_ref());
    let sealer = match sealing_key {
        Some(key) => Some(
            confab_core::secretbox::SecretBox::from_secret(key.expose())
                .map_err(|e| anyhow::anyhow!("seo.youtube.token_encryption_key: {e}"))?,
        ),
        None => None,
    };
    Ok(confab_seo::service::YouTubeDeps {
        api,
        quota,
        cache: Arc::new(MemoryCache::new(1_000)),
        cache_ttl: std::time::Duration::from_secs(yt.cache_ttl_secs),
        has_api_key: yt.api_key.is_some(),
        oauth,
        operator_refresh_token,
        sealer,
        research_per_hour: yt.research_per_hour,
    })
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
