//! The inference service: the router over local and remote backends, plus what every request
//! passes through at the gateway — limits, the response cache, usage accounting, metrics.
//!
//! This module holds the service, its dependencies and what it answers about models; `calls`
//! holds the one model-calling chain (`chat_completion`, `embeddings`) with its cache and its
//! `Accounting`.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::Cache;
use confab_core::auth::Principal;
use confab_core::config::InferenceConfig;
use confab_core::runtime::LiveSettings;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::error::InferenceError;
use crate::limits::{Allowance, LimitPorts, Limits};
use crate::local::LocalEngines;
use crate::metrics::InferenceMetrics;
use crate::models::{LocalModel, ModelStore};
use crate::ports::{PullStore, UsageLog};
use crate::pulls::Pulls;
use crate::router::{CircuitState, Router};
use crate::types::ChatStream;
use crate::usage::UsageRecorder;

mod calls;
mod trace;

/// A model as `/v1/models` and the explore service list it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub id: String,
    /// `embedded`, a provider's name, or `alias`.
    pub provider: String,
    pub local: Option<LocalModel>,
}

/// What the service needs from the process around it.
pub struct InferenceDeps {
    /// Where usage records are kept, and the daily token limits read them; `None` (the CLI)
    /// keeps no usage.
    pub usage: Option<Arc<dyn UsageLog>>,
    /// Where model pulls are recorded, so they resume after a restart; `None`: in this
    /// process only.
    pub pulls: Option<Arc<dyn PullStore>>,
    pub cache: Option<Arc<dyn Cache>>,
    /// Where requests per minute and tokens per day are counted: in this process
    /// ([`LimitPorts::in_process`]) or shared by every replica (Redis, split mode).
    pub limits: LimitPorts,
    /// Where model pulls and deletions are recorded.
    pub audit: Option<Arc<dyn confab_core::audit::AuditLog>>,
    /// Where each usage row is published as a durable `usage.recorded` event (the admin
    /// service's usage statistics); `None` publishes nothing.
    pub events: Option<Arc<dyn confab_bus::DurableEvents>>,
    /// Where model pulls run as durable jobs; `None`: pulls are refused.
    pub jobs: Option<Arc<dyn confab_bus::JobQueue>>,
    /// Where pull progress is published live; `None`: nowhere.
    pub live_events: Option<Arc<dyn confab_bus::EventBus>>,
    /// Runtime settings admins change (the default model, model access, limits); `None`:
    /// the start-up configuration only.
    pub settings: Option<LiveSettings>,
    pub metrics: Arc<InferenceMetrics>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl InferenceDeps {
    /// The service alone in this process, keeping nothing (the command line, tests): no
    /// usage, pull records, cache, audit, events or jobs.
    pub fn standalone(metrics: Arc<InferenceMetrics>) -> Self {
        Self {
            usage: None,
            pulls: None,
            cache: None,
            limits: LimitPorts::in_process(),
            audit: None,
            events: None,
            jobs: None,
            live_events: None,
            settings: None,
            metrics,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }
}

/// The inference service's settings: its configuration and where local models live.
#[derive(Debug, Clone)]
pub struct InferenceSettings {
    pub config: InferenceConfig,
    pub models_dir: std::path::PathBuf,
}

impl std::fmt::Debug for InferenceDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceDeps").finish_non_exhaustive()
    }
}

/// What metrics and usage rows say for a model name that names nothing: request bodies choose
/// model names, and a label or row per invented name would grow without bound.
pub const UNKNOWN_MODEL: &str = "unknown";

/// An answer under way, from [`InferenceService::chat_completion`].
pub struct Answer {
    /// `Started`, the deltas and one `Finished`, or an error. Accounting and the caller's
    /// concurrency slot ride on it: they end when it ends or is dropped.
    pub stream: ChatStream,
    /// The rate-limit headers for HTTP callers.
    pub allowance: Allowance,
    /// Whether the response cache answered.
    pub cached: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

/// Most texts in one embeddings request.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

pub struct InferenceService {
    local: Arc<LocalEngines>,
    router: Arc<Router>,
    metrics: Arc<InferenceMetrics>,
    cache: Option<Arc<dyn Cache>>,
    cache_ttl: Duration,
    usage: Option<UsageRecorder>,
    limits: Limits,
    default_model: Option<String>,
    /// Runtime settings (default model, model access, limits) when an admin may change them.
    settings: std::sync::OnceLock<LiveSettings>,
    pulls: Arc<Pulls>,
    catalog: Catalog,
    audit: Option<Arc<dyn confab_core::audit::AuditLog>>,
    /// The embedded engine's context per request, in tokens.
    engine_context: u32,
}

impl std::fmt::Debug for InferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceService")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl InferenceService {
    /// The service over `deps`, configured by `settings` (the one way services are
    /// constructed: `<Service>Deps` plus settings).
    pub fn new(deps: InferenceDeps, settings: InferenceSettings) -> Result<Self, InferenceError> {
        let InferenceSettings { config, models_dir } = settings;
        let config = &config;
        let metrics = deps.metrics.clone();
        let store = ModelStore::from_config(models_dir, config)
            .map_err(|e| InferenceError::Engine(e.to_string()))?;
        let local = Arc::new(LocalEngines::new(
            store,
            &config.engine,
            config.concurrency.engine_queue,
        ));
        let router = Arc::new(Router::new(config, local.clone(), metrics.clone())?);
        let pulls = Pulls::new(
            local.store().clone(),
            router.ollama_clients(),
            deps.pulls,
            deps.tasks.clone(),
            deps.shutdown.clone(),
        );
        if let Some(audit) = &deps.audit {
            pulls.use_audit(audit.clone());
        }
        if let Some(jobs) = &deps.jobs {
            pulls.use_jobs(jobs.clone());
        }
        if let Some(events) = &deps.live_events {
            pulls.use_events(events.clone());
        }
        let catalog = Catalog::builtin().map_err(InferenceError::Engine)?;
        let usage = deps.usage.clone().map(|log| {
            UsageRecorder::start_with_events(log, deps.events, &deps.tasks, deps.shutdown.clone())
        });
        let service = Self {
            local,
            router,
            metrics,
            cache: if config.cache.enabled {
                deps.cache
            } else {
                None
            },
            cache_ttl: Duration::from_secs(config.cache.ttl_secs),
            usage,
            limits: Limits::new(&config.limits, &config.concurrency, deps.usage, deps.limits),
            default_model: config.default_model.clone(),
            settings: std::sync::OnceLock::new(),
            pulls,
            catalog,
            audit: deps.audit,
            engine_context: config.engine.context_size,
        };
        service
            .limits
            .tally_in_background(&deps.tasks, deps.shutdown.clone());
        if let Some(settings) = deps.settings {
            service.limits.use_settings(settings.clone());
            let _ = service.settings.set(settings);
        }
        Ok(service)
    }

    pub fn local(&self) -> &LocalEngines {
        &self.local
    }

    /// Stops the local engines before the process exits: requests from now on are refused
    /// as shutting down, generations in flight end at their next token, and the engines'
    /// threads are joined, waiting at most `timeout` (see [`LocalEngines::shutdown`]).
    /// Returns whether every worker was joined in time (a warning is logged when not).
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.local.shutdown(timeout).await
    }

    pub fn store(&self) -> &ModelStore {
        self.local.store()
    }

    pub fn pulls(&self) -> &Arc<Pulls> {
        &self.pulls
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Records an admin's model operation in the audit log.
    pub async fn audit(&self, event: confab_core::audit::AuditEvent) {
        if let Some(audit) = &self.audit {
            let _ = audit.record(event).await;
        }
    }

    /// Deletes a model from an Ollama provider, named `ollama:<provider>/<model>`; `None`
    /// when the name is not of that form or names no configured provider.
    pub async fn delete_ollama(&self, name: &str) -> Option<Result<(), InferenceError>> {
        let (client, model) = self.pulls.ollama_model(name)?;
        Some(client.delete(&model).await)
    }

    /// Deletes a local model and forgets it if loaded.
    pub async fn delete_local(&self, name: &str) -> Result<(), crate::models::ModelStoreError> {
        self.local.store().remove(name)?;
        self.local.unload(name).await;
        Ok(())
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn metrics(&self) -> &InferenceMetrics {
        &self.metrics
    }

    /// Copies circuit states into the metrics; call before each scrape.
    pub fn export_circuits(&self) {
        for (backend, state) in self.router.circuits() {
            let value = match state {
                CircuitState::Closed => 0,
                CircuitState::HalfOpen => 1,
                CircuitState::Open => 2,
            };
            self.metrics.circuit(&backend, value);
        }
    }

    /// Every model a request may name: local models, remote models and aliases.
    pub fn models(&self) -> Vec<ModelEntry> {
        let mut entries: Vec<ModelEntry> = self
            .local
            .list()
            .into_iter()
            .map(|model| ModelEntry {
                id: model.name.clone(),
                provider: "embedded".into(),
                local: Some(model),
            })
            .collect();
        for name in self.local.encoders() {
            entries.push(ModelEntry {
                id: name,
                provider: "embedded".into(),
                local: None,
            });
        }
        for (name, provider) in self.router.names() {
            if !entries.iter().any(|e| e.id == name) {
                entries.push(ModelEntry {
                    id: name,
                    provider,
                    local: None,
                });
            }
        }
        entries
    }

    /// Whether `principal` may call `model` (runtime settings: `user_models`).
    pub fn allows_model(&self, principal: &Principal, model: &str) -> bool {
        self.settings
            .get()
            .is_none_or(|s| s.get().allows_model(principal.role, model))
    }

    /// The model used when none is named: the configured one, else the first listed.
    pub fn default_model(&self) -> Option<String> {
        let configured = match self.settings.get() {
            Some(settings) => settings.get().default_model.clone(),
            None => self.default_model.clone(),
        };
        if let Some(model) = configured {
            return Some(model);
        }
        self.models().into_iter().next().map(|m| m.id)
    }

    /// The context window of `model` in tokens, when known: for a local model the engine's
    /// context size, capped by what the model was trained for. Remote models: `None`.
    pub fn context_tokens(&self, model: &str) -> Option<usize> {
        let local = self.local.find(model)?;
        let trained = local.meta.context_length.unwrap_or(u64::MAX);
        usize::try_from(u64::from(self.engine_context).min(trained)).ok()
    }

    /// Whether `model` names a model or alias requests may use (no file is read for a
    /// configured name; a local model is looked up in the model store).
    pub fn knows_model(&self, model: &str) -> bool {
        self.router.knows(model) || self.local.encoders().iter().any(|e| e == model)
    }
}
