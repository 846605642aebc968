//! Assembles a process from configuration: the all-in-one application ([`build`]) or the
//! services named by `--services` ([`build_process`]), each port given its in-process adapter
//! when the service behind it is here and its HTTP or bus adapter when it is not.
//!
//! Long (about 670 lines) because `assemble` wires every service's ports in one place, so
//! which adapter each port gets in which process reads as one list; the next cut is the
//! background tasks (consumers, maintenance, metrics refresh) into a module of their own.

mod admin;
mod files;
mod gateway;
mod ops_metrics;
mod parts;
mod seo;
mod shared;
mod split;

pub use files::LocalFileAccess;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use confab_admin::SqlAuditLog;
use confab_admin::settings::{RuntimeConfig, SqlSettingsStore};
use confab_admin::usage::{SqlUsageStats, UsageProjection};
use confab_auth::throttle::IpThrottle;
use confab_auth::{AuthService, AuthState};
use confab_bus::audit::DurableAuditLog;
use confab_bus::{WorkerConfig, Workers};
use confab_core::audit::AuditLog;
use confab_core::auth::{DynAuthenticator, ServiceTokens, WithServiceTokens};
use confab_core::config::Config;
use confab_core::http::ops_router;
use confab_core::metrics::MetricsBuilder;
use confab_core::runtime::{LiveSettings, RuntimeSettings};
use confab_inference::{InferenceService, InferenceState};
use confab_store::{Db, MigrationReport};
use tokio_util::sync::CancellationToken;

use crate::services::Services;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Applies every pending migration (`confab migrate`).
pub async fn migrate(db: &Db) -> anyhow::Result<Vec<MigrationReport>> {
    migrate_services(db, &Services::all(), false).await
}

/// Applies the pending migrations of `services` (`confab migrate --services …`), and the bus
/// tables' unless the bus is NATS.
pub async fn migrate_services(
    db: &Db,
    services: &Services,
    nats: bool,
) -> anyhow::Result<Vec<MigrationReport>> {
    let mut reports = Vec::new();
    for migrations in services.migrations(nats) {
        reports.push(migrations.run(db).await?);
    }
    Ok(reports)
}

/// A built process, ready to serve: the all-in-one one or any set of services.
pub struct Process {
    pub router: Router,
    /// The gateway's serving threads, one router each: when there are any, each is served
    /// on a thread of its own (a current-thread runtime with its own `SO_REUSEPORT` socket
    /// on the listener's address) and `router` is not served.
    pub lanes: Vec<Router>,
    /// The database; `None` for the gateway, which keeps no tables.
    pub db: Option<Db>,
    pub services: Services,
    /// The inference service, when this process runs it: its engines are stopped last.
    pub inference: Option<Arc<InferenceService>>,
    /// Background work that must finish before shutdown.
    pub tasks: TaskTracker,
    /// Cancelled when shutdown begins, so background work flushes and stops.
    pub shutdown: CancellationToken,
    /// HTTPS (`[server.tls]`); `None` serves plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("services", &self.services.to_string())
            .finish_non_exhaustive()
    }
}

/// The all-in-one application: every service in one process, and handles on each for the
/// command line and the tests.
pub struct App {
    pub router: Router,
    pub db: Db,
    pub auth: Arc<AuthService>,
    pub inference: Arc<InferenceService>,
    pub chat: Arc<confab_chat::ChatService>,
    pub seo: Arc<confab_seo::SeoService>,
    pub files: Arc<confab_files::service::FilesService>,
    /// Live events of this process (or of every replica, over NATS).
    pub events: Arc<dyn confab_bus::EventBus>,
    /// Durable events (the outbox in the database, or NATS JetStream).
    pub durable: Arc<dyn confab_bus::DurableEvents>,
    pub openapi: utoipa::openapi::OpenApi,
    /// Background work that must finish before shutdown.
    pub tasks: TaskTracker,
    /// Cancelled when shutdown begins, so background work flushes and stops.
    pub shutdown: CancellationToken,
    /// HTTPS (`[server.tls]`); `None` serves plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The process to serve.
    pub fn into_process(self) -> Process {
        Process {
            router: self.router,
            lanes: Vec::new(),
            db: Some(self.db),
            services: Services::all(),
            inference: Some(self.inference),
            tasks: self.tasks,
            shutdown: self.shutdown,
            tls: self.tls,
        }
    }
}

/// Connects to the database, migrates (or verifies), and builds every service in one
/// process.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let built = assemble(config, &Services::all()).await?;
    let all = "the all-in-one process builds every service";
    Ok(App {
        router: built.router,
        db: built.db,
        auth: built.auth.context(all)?,
        inference: built.inference.context(all)?,
        chat: built.chat.context(all)?,
        seo: built.seo.context(all)?,
        files: built.files.context(all)?,
        events: built.events,
        durable: built.durable,
        openapi: built.openapi,
        tasks: built.tasks,
        shutdown: built.shutdown,
        tls: built.tls,
    })
}

/// Builds the process that runs `services`: every one of them (the same as [`build`]), some
/// (split mode), or the gateway.
pub async fn build_process(config: &Config, services: &Services) -> anyhow::Result<Process> {
    if services.is_gateway() {
        return gateway::build(config, services).await;
    }
    let built = assemble(config, services).await?;
    if let Some(inference) = &built.inference
        && inference.models().is_empty()
    {
        tracing::warn!(
            models_dir = %config.models_dir().display(),
            "no model to serve: run `scripts/fetch-model.sh {}` for the default local models, \
             `confab models pull <org/repo/file.gguf | URL | path>` for another GGUF, \
             or configure inference.providers",
            config.models_dir().display()
        );
    }
    Ok(Process {
        router: built.router,
        lanes: Vec::new(),
        db: Some(built.db),
        services: services.clone(),
        inference: built.inference,
        tasks: built.tasks,
        shutdown: built.shutdown,
        tls: built.tls,
    })
}

/// What [`assemble`] made: the router and a handle on each service this process runs.
struct Built {
    router: Router,
    db: Db,
    auth: Option<Arc<AuthService>>,
    inference: Option<Arc<InferenceService>>,
    chat: Option<Arc<confab_chat::ChatService>>,
    seo: Option<Arc<confab_seo::SeoService>>,
    files: Option<Arc<confab_files::service::FilesService>>,
    events: Arc<dyn confab_bus::EventBus>,
    durable: Arc<dyn confab_bus::DurableEvents>,
    openapi: utoipa::openapi::OpenApi,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    tls: Option<crate::tls::ServerTls>,
}

/// A split process (some services, not all) needs what lets processes find each other: the
/// shared bus (NATS: live events, durable events and jobs must reach every process) and the
/// services' shared secret (calls on a user's behalf).
fn check_split(config: &Config, services: &Services) -> anyhow::Result<()> {
    if services.is_all() {
        return Ok(());
    }
    if config.bus.nats_url.is_none() {
        anyhow::bail!(
            "--services {services}: split mode needs bus.nats_url (CONFAB_BUS__NATS_URL), a NATS \
             server with JetStream that every service process shares"
        );
    }
    if config.services.token.is_none() {
        anyhow::bail!(
            "--services {services}: split mode needs services.token (CONFAB_SERVICES__TOKEN), \
             the secret every service process of the deployment shares"
        );
    }
    Ok(())
}

/// Connects to the database, applies (or verifies) the migrations of `services`, and builds
/// them with the adapters their configuration asks for: in-process ones for what this
/// process holds, HTTP and bus ones for the services it calls in other processes.
async fn assemble(config: &Config, services: &Services) -> anyhow::Result<Built> {
    use crate::services::Service;
    check_split(config, services)?;
    let mut db = Db::connect(&config.database_url(), &config.database)
        .await
        .context("cannot open the database")?;
    if let Some(read_url) = &config.database.read_url {
        db = db
            .with_replica(read_url.expose(), &config.database)
            .await
            .context("cannot use database.read_url")?;
    }
    for migrations in services.migrations(config.bus.nats_url.is_some()) {
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
    ops_metrics::common(&mut metrics, config, true);
    db.register_metrics(&mut metrics);
    let tls = crate::tls::ServerTls::load(&config.server.tls, &mut metrics).await?;
    // Caches and limits: in this process, or shared with the replicas through Redis.
    let shared = shared::Shared::build(config, &mut metrics)?;
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    // Reads that tolerate lag follow the replica's health (down: the primary serves them).
    db.watch_replica(&tasks, shutdown.clone());
    // Events, durable events and jobs: in this process and the database, or through NATS
    // JetStream when configured (split mode, several replicas).
    let bus = crate::bus::connect(config, &db).await?;
    if let Some(nats) = &bus.nats {
        ops_metrics::nats(&mut metrics, nats.clone());
    }
    let events = bus.events.clone();
    let jobs = bus.jobs.clone();
    let durable = bus.durable.clone();
    // With a services secret, the other services of a split deployment may call this one on
    // a user's behalf (the chat service of another process calling inference here).
    let service_tokens = match &config.services.token {
        Some(token) => Some(
            ServiceTokens::new(token.expose().as_bytes())
                .map_err(|e| anyhow::anyhow!("services.token: {e}"))?,
        ),
        None => None,
    };

    // The audit log: written directly when the admin service is here, else sent to it as
    // durable events.
    let audit_log = if services.has(Service::Admin) {
        Some(Arc::new(SqlAuditLog::open(db.clone()).await?))
    } else {
        None
    };
    let audit_for = |service: Service| -> Arc<dyn AuditLog> {
        match &audit_log {
            Some(log) => log.clone(),
            None => Arc::new(DurableAuditLog::new(durable.clone(), service.as_str())),
        }
    };

    // Settings admins change at run time, followed by every service that reads them.
    let live = LiveSettings::new(RuntimeSettings::from_config(config));
    // The admin service owns them; auth and inference in other processes read them through
    // its internal route and follow `config.changed`.
    let runtime_config = if services.has(Service::Admin) {
        let config = RuntimeConfig::load(
            Arc::new(SqlSettingsStore::new(db.clone())),
            live.clone(),
            events.clone(),
        )
        .await
        .context("cannot load the runtime settings")?;
        config.follow(&tasks, shutdown.clone());
        Some(config)
    } else if services.has(Service::Auth) || services.has(Service::Inference) {
        let tokens = service_tokens
            .as_ref()
            .context("split mode has services.token")?;
        let config = RuntimeConfig::load_or_defaults(
            split::settings_store(config, services, tokens)?,
            live.clone(),
            events.clone(),
        )
        .await;
        config.follow(&tasks, shutdown.clone());
        None
    } else {
        None
    };

    let auth = if services.has(Service::Auth) {
        Some(
            parts::auth_service(
                config,
                &db,
                audit_for(Service::Auth),
                &live,
                &bus,
                &shared,
                &tasks,
                &shutdown,
            )
            .await?,
        )
    } else {
        None
    };
    let mut readiness = vec![db.readiness()];
    let mut remote_auth = None;
    let user_authenticator: DynAuthenticator = match &auth {
        Some(auth) => {
            // Revocations published by other auth replicas drop this one's cached lookups.
            auth.follow_revocations(&tasks, shutdown.clone());
            auth.clone()
        }
        None => {
            let tokens = service_tokens
                .as_ref()
                .context("split mode has services.token")?;
            let remote = split::authenticator(
                config,
                services,
                tokens,
                events.clone(),
                &tasks,
                shutdown.clone(),
            )?;
            readiness.push(Arc::new(split::AuthKeysLoaded(remote.clone())));
            remote_auth = Some(remote.clone());
            Arc::new(remote)
        }
    };
    let internal_auth = confab_core::internal::InternalAuth(service_tokens.clone());
    let authenticator: DynAuthenticator = match &service_tokens {
        Some(tokens) => Arc::new(WithServiceTokens {
            inner: user_authenticator,
            tokens: tokens.clone(),
        }),
        None => user_authenticator,
    };
    let https = parts::is_https(config);

    let inference = if services.has(Service::Inference) {
        Some(
            parts::inference_service(
                config,
                &db,
                audit_for(Service::Inference),
                &live,
                &bus,
                &mut metrics,
                &shared,
                &tasks,
                &shutdown,
            )
            .await?,
        )
    } else {
        None
    };

    // The models of chat and the SEO studio: the inference service in this process, or
    // another one's over HTTP (split mode, or `chat.inference_url`).
    let models = if services.has(Service::Chat) || services.has(Service::Seo) {
        Some(parts::model_client(
            config,
            services,
            &service_tokens,
            &inference,
        )?)
    } else {
        None
    };

    // The admin service checks model names in settings against the same port.
    let admin_models = if services.has(Service::Admin) {
        Some(match &models {
            Some(models) => models.clone(),
            None => parts::model_client(config, services, &service_tokens, &inference)?,
        })
    } else {
        None
    };
    let files = if services.has(Service::Files) {
        Some(files::files_service(
            config,
            &db,
            jobs.clone(),
            audit_for(Service::Files),
            &tasks,
            &shutdown,
        )?)
    } else {
        None
    };

    let chat = match (&models, services.has(Service::Chat)) {
        (Some(models), true) => {
            let accounts: Arc<dyn confab_chat::ports::Accounts> = match &auth {
                Some(auth) => Arc::new(parts::AuthAccounts(auth.clone())),
                None => Arc::new(crate::remote::RemoteAccounts(
                    remote_auth
                        .clone()
                        .context("the remote authenticator is built")?,
                )),
            };
            // Attached files: the files service here, another process's, or none.
            let file_access = files::file_access(config, files.as_ref(), service_tokens.as_ref())?;
            let chat = parts::chat_service(
                config,
                &db,
                models.clone(),
                accounts,
                file_access,
                &bus,
                &shared,
                &tasks,
                &shutdown,
            );
            let interrupted = chat.recover().await?;
            if interrupted > 0 {
                tracing::warn!(
                    interrupted,
                    "answers cut off by the last stop are marked interrupted"
                );
            }
            chat.watch_replicas();
            ops_metrics::sockets(&mut metrics, chat.clone());
            Some(chat)
        }
        _ => None,
    };
    let seo = match (&models, services.has(Service::Seo)) {
        // The SEO studio calls models through the same port as chat.
        (Some(models), true) => Some(confab_seo::SeoService::new(
            confab_seo::SeoDeps {
                store: Arc::new(confab_seo::SqlSeoStore::new(db.clone())),
                models: models.clone(),
                jobs: jobs.clone(),
                events: events.clone(),
                youtube: seo::youtube_deps(config, &db, &shared)?,
            },
            seo::seo_settings(&config.seo),
        )),
        _ => None,
    };

    // User deletion: each data-holding service's purge consumer, and the auth service's
    // consumer of their answers, in the process running that service.
    if let Some(chat) = &chat {
        crate::purge::start_participant(
            "chat",
            chat.clone(),
            durable.clone(),
            &tasks,
            shutdown.clone(),
        );
    }
    if let Some(seo) = &seo {
        crate::purge::start_participant(
            "seo",
            seo.clone(),
            durable.clone(),
            &tasks,
            shutdown.clone(),
        );
    }
    if let Some(files) = &files {
        ops_metrics::files(&mut metrics, files.clone());
        crate::purge::start_participant(
            "files",
            files.clone(),
            durable.clone(),
            &tasks,
            shutdown.clone(),
        );
    }
    if let Some(auth) = &auth {
        crate::purge::start_answers(auth.clone(), durable.clone(), &tasks, shutdown.clone());
    }
    // The workers that run this process's share of the background jobs: the kinds of the
    // services it holds.
    let mut workers = Workers::new(
        jobs.clone(),
        events.clone(),
        WorkerConfig {
            lease: std::time::Duration::from_secs(config.bus.job_lease_secs),
            poll: std::time::Duration::from_millis(config.bus.job_poll_ms),
            ..WorkerConfig::default()
        },
    );
    let kinds = crate::jobs::register(
        &mut workers,
        config.bus.job_concurrency as usize,
        crate::jobs::Handlers {
            auth: auth.clone(),
            chat: chat.clone(),
            pulls: inference.as_ref().map(|i| i.pulls().clone()),
            seo: seo.clone(),
            files: files.clone(),
        },
    );
    ops_metrics::job_runs(&mut metrics, &mut workers, &kinds);
    workers.start(&tasks, shutdown.clone());
    // Jobs by state and the audit chain: read by the admin service's process (all-in-one,
    // or admin's own in split mode), which owns the audit log and the jobs' admin pages.
    let mut refresher = ops_metrics::Refresher::default();
    if let Some(audit) = &audit_log {
        refresher.jobs(&mut metrics, jobs.clone());
        refresher.audit(&mut metrics, audit.clone());
    }
    refresher.start(&tasks, shutdown.clone());

    let mut api = OpenApiRouter::with_openapi(crate::docs::ApiDoc::openapi());
    if let Some(auth) = &auth {
        // Internal routes (`/internal/v1/...`): other services' processes, as themselves.
        api = api.merge(confab_auth::internal_router(confab_auth::InternalState {
            service: auth.clone(),
            internal: internal_auth.clone(),
        }));
        api = api.merge(confab_auth::router(AuthState {
            service: auth.clone(),
            authenticator: authenticator.clone(),
            throttle: Arc::new(IpThrottle::new(
                config.auth.ip_rate_limit_per_minute,
                config.auth.ip_rate_limit_burst,
                shared.rate.clone(),
            )),
            secure_cookies: https,
            trust_proxy_headers: config.server.trust_proxy_headers,
        }));
    }
    if let Some(inference) = &inference {
        api = api.merge(confab_inference::router(InferenceState {
            service: inference.clone(),
            authenticator: authenticator.clone(),
        }));
    }
    if let Some(chat) = &chat {
        api = api.merge(confab_chat::router(confab_chat::ChatState {
            service: chat.clone(),
            authenticator: authenticator.clone(),
            audit: audit_for(Service::Chat),
        }));
    }
    if let Some(seo) = &seo {
        api = api.merge(confab_seo::router(confab_seo::SeoState {
            service: seo.clone(),
            authenticator: authenticator.clone(),
        }));
    }
    if let Some(files) = &files {
        // Internal routes: the chat service of another process reading attached files.
        api = api.merge(confab_files::internal_router(
            confab_files::InternalFilesState {
                service: files.clone(),
                internal: internal_auth.clone(),
            },
        ));
        api = api.merge(confab_files::api::router(confab_files::api::FilesState {
            service: files.clone(),
            authenticator: authenticator.clone(),
        }));
    }
    if let (Some(audit), Some(runtime_config)) = (&audit_log, runtime_config) {
        // Usage records feed the usage statistics through durable events; so do the audit
        // records of services in other processes.
        let usage_stats = Arc::new(SqlUsageStats::new(db.clone()));
        UsageProjection::start(
            usage_stats.clone(),
            durable.clone(),
            &tasks,
            shutdown.clone(),
        );
        crate::maintenance::start(config, bus.clone(), audit.clone(), &tasks, shutdown.clone());
        // The time of the last `confab backup`, which records itself in the admin's table.
        confab_admin::backups::BackupMetrics::register(&mut metrics).start(
            Arc::new(confab_admin::backups::SqlBackupLog::new(db.clone())),
            &tasks,
            shutdown.clone(),
        );
        confab_admin::audit::AuditIngest::start(
            audit.clone(),
            durable.clone(),
            &tasks,
            shutdown.clone(),
        );
        let models = admin_models.context("the admin service checks model names")?;
        api = admin::routes(
            api,
            admin::AdminParts {
                config,
                audit: audit.clone(),
                runtime_config,
                models,
                usage_stats,
                jobs: jobs.clone(),
                events: events.clone(),
                authenticator: authenticator.clone(),
                internal: internal_auth.clone(),
            },
        );
    }
    let (api_router, openapi) = api.split_for_parts();
    let metrics = metrics.finish();
    let router = api_router
        .merge(ops_router(
            metrics.clone(),
            readiness,
            config.server.metrics_token.clone(),
        ))
        .merge(crate::docs::router(&openapi)?);
    // The web UI comes from the all-in-one process (and, split, from the gateway).
    let router = if services.is_all() {
        router.fallback(crate::web::fallback)
    } else {
        router
    };
    let router = parts::with_common_layers(router, metrics, config)?;
    Ok(Built {
        router,
        db,
        auth,
        inference,
        chat,
        seo,
        files,
        events,
        durable,
        openapi,
        tasks,
        shutdown,
        tls,
    })
}
