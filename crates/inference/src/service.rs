//! The inference service: the router over local and remote backends, plus what every request
//! passes through at the gateway — limits, the response cache, usage accounting, metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_cache::Cache;
use confab_core::auth::{Credential, Principal};
use confab_core::config::InferenceConfig;
use confab_core::runtime::LiveSettings;
use confab_store::Db;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::error::InferenceError;
use crate::limits::Limits;
use crate::local::LocalEngines;
use crate::metrics::InferenceMetrics;
use crate::models::{LocalModel, ModelStore};
use crate::pulls::Pulls;
use crate::router::{CircuitState, Routed, Router};
use crate::types::{ChatRequest, ResponseFormat, Usage};
use crate::usage::{UsageRecord, UsageRecorder, UsageStore};

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
    /// For usage records and daily token limits; `None` (the CLI) keeps no usage.
    pub db: Option<Db>,
    pub cache: Option<Arc<dyn Cache>>,
    /// Where model pulls and deletions are recorded.
    pub audit: Option<Arc<dyn confab_core::audit::AuditLog>>,
    /// Where each usage row is published as a durable `usage.recorded` event (the admin
    /// service's usage statistics); `None` publishes nothing.
    pub events: Option<Arc<dyn confab_bus::DurableEvents>>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for InferenceDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceDeps").finish_non_exhaustive()
    }
}

/// How a request ended, for accounting.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub model: String,
    pub backend: String,
    pub usage: Usage,
    pub ttft: Option<Duration>,
    /// Time in the backend.
    pub upstream: Duration,
    /// Time since the request arrived.
    pub total: Duration,
    /// `ok` or an error code.
    pub status: String,
    pub cached: bool,
}

/// Records a request's outcome exactly once: when it finishes, fails, or is dropped (the
/// client went away, or the generation was stopped).
pub struct Accounting {
    service: Arc<InferenceService>,
    principal: Principal,
    model: String,
    backend: String,
    arrived: Instant,
    upstream_started: Instant,
    ttft: Option<Duration>,
    /// The status recorded when the value is dropped before `end`.
    dropped: &'static str,
    done: bool,
}

impl Accounting {
    pub fn start(
        service: Arc<InferenceService>,
        principal: Principal,
        model: String,
        arrived: Instant,
        dropped: &'static str,
    ) -> Self {
        Self {
            service,
            principal,
            model,
            backend: String::new(),
            arrived,
            upstream_started: Instant::now(),
            ttft: None,
            dropped,
            done: false,
        }
    }

    /// Notes which backend answered, and when.
    pub fn routed(&mut self, routed: &Routed) {
        self.backend.clone_from(&routed.backend);
        self.upstream_started = routed.upstream_started;
        self.ttft = Some(routed.ttft);
    }

    pub fn end(&mut self, usage: Usage, status: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.service.finish(
            &self.principal,
            &Outcome {
                model: self.model.clone(),
                backend: if self.backend.is_empty() {
                    "none".into()
                } else {
                    self.backend.clone()
                },
                usage,
                ttft: self.ttft,
                upstream: self.upstream_started.elapsed(),
                total: self.arrived.elapsed(),
                status: status.to_owned(),
                cached: false,
            },
        );
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        self.end(Usage::default(), self.dropped);
    }
}

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

/// What identifies a cacheable answer: the normalised request and who may see it.
#[derive(Serialize)]
struct CacheKey<'a> {
    visibility: String,
    model: &'a str,
    messages: Vec<(&'a str, &'a str)>,
    temperature: f32,
    top_p: f32,
    max_tokens: Option<u32>,
    stop: &'a [String],
    seed: Option<u64>,
    response_format: &'a Option<ResponseFormat>,
}

impl InferenceService {
    pub fn new(
        config: &InferenceConfig,
        models_dir: std::path::PathBuf,
        metrics: Arc<InferenceMetrics>,
        deps: InferenceDeps,
    ) -> Result<Self, InferenceError> {
        let store = ModelStore::from_config(models_dir, config)
            .map_err(|e| InferenceError::Engine(e.to_string()))?;
        let local = Arc::new(LocalEngines::new(store, &config.engine));
        let router = Arc::new(Router::new(config, local.clone(), metrics.clone())?);
        let usage_store = deps.db.clone().map(UsageStore::new);
        let pulls = Pulls::new(
            local.store().clone(),
            router.ollama_clients(),
            deps.db.clone(),
            deps.tasks.clone(),
            deps.shutdown.clone(),
        );
        if let Some(audit) = &deps.audit {
            pulls.use_audit(audit.clone());
        }
        let catalog = Catalog::builtin().map_err(InferenceError::Engine)?;
        let usage = deps.db.map(|db| {
            UsageRecorder::start_with_events(db, deps.events, &deps.tasks, deps.shutdown.clone())
        });
        Ok(Self {
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
            limits: Limits::new(&config.limits, usage_store),
            default_model: config.default_model.clone(),
            settings: std::sync::OnceLock::new(),
            pulls,
            catalog,
            audit: deps.audit,
            engine_context: config.engine.context_size,
        })
    }

    pub fn local(&self) -> &LocalEngines {
        &self.local
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

    /// Follows runtime settings from now on: the default model, which models users may
    /// call, and the limits.
    pub fn use_settings(&self, settings: LiveSettings) {
        self.limits.use_settings(settings.clone());
        let _ = self.settings.set(settings);
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

    /// Starts a generation on the first backend that answers.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Routed, InferenceError> {
        self.router.chat(request, cancel).await
    }

    /// Embeds texts with `model`: a remote OpenAI-compatible backend or a local encoder.
    pub async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        if let Some((client, upstream_model)) = self.router.embedding_backend(model) {
            return client.embed(&upstream_model, texts).await;
        }
        self.local.embed(model, texts).await
    }

    /// The cache key of a request whose answer may be reused: non-streamed, deterministic
    /// (temperature 0 or a seed), with the cache on. Answers are only shared with the same user.
    pub fn cache_key(&self, principal: &Principal, request: &ChatRequest) -> Option<String> {
        self.cache.as_ref()?;
        if request.params.temperature > 0.0 && request.params.seed.is_none() {
            return None;
        }
        let key = CacheKey {
            visibility: format!("user:{}", principal.user_id),
            model: &request.model,
            messages: request
                .messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str()))
                .collect(),
            temperature: request.params.temperature,
            top_p: request.params.top_p,
            max_tokens: request.params.max_tokens,
            stop: &request.params.stop,
            seed: request.params.seed,
            response_format: &request.response_format,
        };
        let json = serde_json::to_vec(&key).ok()?;
        let digest = Sha256::digest(&json);
        Some(format!(
            "chat:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ))
    }

    pub async fn cache_get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let hit = self.cache.as_ref()?.get(key).await;
        self.metrics.cache(hit.is_some());
        hit
    }

    pub async fn cache_put(&self, key: String, value: Vec<u8>) {
        if let Some(cache) = &self.cache {
            cache.set(key, value, self.cache_ttl).await;
        }
    }

    /// Records how a request ended: usage row, token limits, metrics.
    pub fn finish(&self, principal: &Principal, outcome: &Outcome) {
        let m = &self.metrics;
        m.request(&outcome.model, &outcome.backend, &outcome.status);
        if let Some(ttft) = outcome.ttft {
            m.ttft(&outcome.backend, ttft.as_secs_f64());
        }
        if !outcome.cached {
            m.upstream(&outcome.backend, outcome.upstream.as_secs_f64());
            m.tokens(
                &outcome.model,
                outcome.usage.prompt_tokens,
                outcome.usage.completion_tokens,
            );
            self.limits
                .add_tokens(principal, u64::from(outcome.usage.total_tokens));
        }
        m.overhead(
            &outcome.backend,
            outcome.total.saturating_sub(outcome.upstream).as_secs_f64(),
        );
        if let Some(usage) = &self.usage {
            let to_ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            usage.record(UsageRecord {
                at: confab_core::now_ms(),
                user_id: Some(principal.user_id),
                api_key_id: match &principal.credential {
                    Credential::ApiKey { key_id, .. } => Some(*key_id),
                    Credential::Service { key_id, .. } => *key_id,
                    Credential::Session { .. } => None,
                },
                model: outcome.model.clone(),
                backend: outcome.backend.clone(),
                prompt_tokens: outcome.usage.prompt_tokens,
                completion_tokens: outcome.usage.completion_tokens,
                ttft_ms: outcome.ttft.map(to_ms),
                latency_ms: to_ms(outcome.total),
                status: outcome.status.clone(),
                cached: outcome.cached,
            });
        }
    }
}
