//! The inference service: the router over local and remote backends, plus what every request
//! passes through at the gateway — limits, the response cache, usage accounting, metrics.
//!
//! Long (about 750 lines) because it holds the one model-calling chain (`chat_completion`,
//! `embeddings`) with its accounting next to the service it belongs to; the chain and its
//! `Accounting` are the next cut into a module of their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_cache::Cache;
use confab_core::auth::{Credential, Principal};
use confab_core::config::InferenceConfig;
use confab_core::runtime::LiveSettings;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::error::InferenceError;
use crate::limits::{Allowance, Limits, Slot};
use crate::local::LocalEngines;
use crate::metrics::InferenceMetrics;
use crate::models::{LocalModel, ModelStore};
use crate::ports::{PullStore, UsageLog};
use crate::pulls::Pulls;
use crate::router::{CircuitState, Routed, Router};
use crate::types::{
    ChatEvent, ChatRequest, ChatStream, EmbedRequest, Embeddings, FinishReason, ResponseFormat,
    Usage,
};
use crate::usage::{UsageRecord, UsageRecorder};

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

/// How a request ended, for accounting.
#[derive(Debug, Clone)]
struct Outcome {
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
struct Accounting {
    service: Arc<InferenceService>,
    principal: Principal,
    model: String,
    /// Whether `model` is known to name a configured or local model (so it may be a metric
    /// label); `None` until routing says, then checked on demand.
    known: Option<bool>,
    backend: String,
    arrived: Instant,
    upstream_started: Instant,
    ttft: Option<Duration>,
    done: bool,
}

impl Accounting {
    fn start(
        service: Arc<InferenceService>,
        principal: Principal,
        model: String,
        arrived: Instant,
    ) -> Self {
        Self {
            service,
            principal,
            model,
            known: None,
            backend: String::new(),
            arrived,
            upstream_started: Instant::now(),
            ttft: None,
            done: false,
        }
    }

    /// Notes which backend answered, and when.
    fn routed(&mut self, routed: &Routed) {
        self.backend.clone_from(&routed.backend);
        self.upstream_started = routed.upstream_started;
        self.ttft = Some(routed.ttft);
        self.known = Some(true);
    }

    fn end(&mut self, usage: Usage, status: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let known = match self.known {
            Some(known) => known,
            None => self.service.knows_model(&self.model),
        };
        self.service.finish(
            &self.principal,
            &Outcome {
                model: if known {
                    self.model.clone()
                } else {
                    UNKNOWN_MODEL.into()
                },
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
        self.end(Usage::default(), "cancelled");
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

/// A cached answer: what the model said, independent of how it is sent.
#[derive(Serialize, Deserialize)]
struct CachedAnswer {
    content: String,
    reason: FinishReason,
    usage: Usage,
}

/// Most texts in one embeddings request.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The state of an answer's stream as [`InferenceService::chat_completion`] hands it on.
struct Flow {
    events: ChatStream,
    accounting: Accounting,
    _slot: Slot,
    /// The cache key and the text so far, when the finished answer is to be cached.
    cache: Option<(String, String)>,
    ended: bool,
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
            limits: Limits::new(&config.limits, &config.concurrency, deps.usage),
            default_model: config.default_model.clone(),
            settings: std::sync::OnceLock::new(),
            pulls,
            catalog,
            audit: deps.audit,
            engine_context: config.engine.context_size,
        };
        if let Some(settings) = deps.settings {
            service.limits.use_settings(settings.clone());
            let _ = service.settings.set(settings);
        }
        Ok(service)
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

    /// An answer for `principal`, through the whole policy chain: model access → limits
    /// (requests, tokens, concurrency) → the response cache → accounting → routing. Every
    /// caller — the OpenAI-compatible API and the in-process model client — comes here.
    pub async fn chat_completion(
        self: &Arc<Self>,
        principal: &Principal,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Answer, InferenceError> {
        let arrived = Instant::now();
        if !self.allows_model(principal, &request.model) {
            return Err(InferenceError::ModelNotAllowed(request.model));
        }
        let allowance = self.limits.check(principal).await?;
        let cache_key = if request.stream {
            None
        } else {
            self.cache_key(principal, &request)
        };
        if let Some(key) = &cache_key
            && let Some(hit) = self.cached_answer(key).await
        {
            self.finish(
                principal,
                &Outcome {
                    model: request.model.clone(),
                    backend: "cache".into(),
                    usage: hit.usage,
                    ttft: None,
                    upstream: Duration::ZERO,
                    total: arrived.elapsed(),
                    status: "ok".into(),
                    cached: true,
                },
            );
            let mut events = vec![Ok(ChatEvent::Started)];
            if !hit.content.is_empty() {
                events.push(Ok(ChatEvent::Delta(hit.content)));
            }
            events.push(Ok(ChatEvent::Finished {
                reason: hit.reason,
                usage: hit.usage,
            }));
            return Ok(Answer {
                stream: futures::stream::iter(events).boxed(),
                allowance,
                cached: true,
            });
        }
        let slot = self.limits.acquire(principal)?;
        let mut accounting = Accounting::start(
            self.clone(),
            principal.clone(),
            request.model.clone(),
            arrived,
        );
        let routed = match self.router.chat(&request, cancel).await {
            Ok(routed) => routed,
            Err(e) => {
                if matches!(e, InferenceError::ModelNotFound(_)) {
                    accounting.known = Some(false);
                }
                accounting.end(Usage::default(), e.code());
                return Err(e);
            }
        };
        accounting.routed(&routed);
        let flow = Flow {
            events: routed.stream,
            accounting,
            _slot: slot,
            cache: cache_key.map(|key| (key, String::new())),
            ended: false,
        };
        let service = self.clone();
        let stream = futures::stream::unfold(flow, move |mut flow| {
            let service = service.clone();
            async move {
                if flow.ended {
                    return None;
                }
                let Some(event) = flow.events.next().await else {
                    flow.accounting.end(Usage::default(), "incomplete");
                    return None;
                };
                match &event {
                    Ok(ChatEvent::Delta(text)) => {
                        if let Some((_, content)) = &mut flow.cache {
                            content.push_str(text);
                        }
                    }
                    Ok(ChatEvent::Finished { reason, usage }) => {
                        flow.accounting.end(*usage, "ok");
                        flow.ended = true;
                        if let Some((key, content)) = flow.cache.take() {
                            let answer = CachedAnswer {
                                content,
                                reason: *reason,
                                usage: *usage,
                            };
                            if let Ok(bytes) = serde_json::to_vec(&answer) {
                                service.cache_put(key, bytes).await;
                            }
                        }
                    }
                    Ok(ChatEvent::Started) => {}
                    Err(e) => {
                        flow.accounting.end(Usage::default(), e.code());
                        flow.ended = true;
                    }
                }
                Some((event, flow))
            }
        });
        Ok(Answer {
            stream: stream.boxed(),
            allowance,
            cached: false,
        })
    }

    /// Embeddings for `principal`, through the same chain as answers (model access →
    /// limits → accounting → the encoder or a remote backend). Cancelling `cancel` (the HTTP
    /// client went away) stops a local encoder between batches.
    pub async fn embeddings(
        self: &Arc<Self>,
        principal: &Principal,
        request: EmbedRequest,
        cancel: CancellationToken,
    ) -> Result<(Embeddings, Allowance), InferenceError> {
        let arrived = Instant::now();
        if !self.allows_model(principal, &request.model) {
            return Err(InferenceError::ModelNotAllowed(request.model));
        }
        if request.texts.is_empty() || request.texts.len() > MAX_EMBEDDING_INPUTS {
            return Err(InferenceError::invalid(
                "input",
                format!("input must hold 1 to {MAX_EMBEDDING_INPUTS} texts"),
            ));
        }
        if request.texts.iter().any(String::is_empty) {
            return Err(InferenceError::invalid(
                "input",
                "input cannot contain empty strings",
            ));
        }
        let allowance = self.limits.check(principal).await?;
        let _slot = self.limits.acquire(principal)?;
        let mut accounting = Accounting::start(
            self.clone(),
            principal.clone(),
            request.model.clone(),
            arrived,
        );
        accounting.backend = "embeddings".into();
        let result = self.embed(&request.model, request.texts, cancel).await;
        match result {
            Ok((vectors, prompt_tokens)) => {
                accounting.known = Some(true);
                accounting.end(Usage::new(prompt_tokens, 0), "ok");
                Ok((
                    Embeddings {
                        vectors,
                        prompt_tokens,
                    },
                    allowance,
                ))
            }
            Err(e) => {
                if matches!(e, InferenceError::ModelNotFound(_)) {
                    accounting.known = Some(false);
                }
                accounting.end(Usage::default(), e.code());
                Err(e)
            }
        }
    }

    /// Embeds texts with `model`: a remote OpenAI-compatible backend or a local encoder.
    async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        if let Some((client, upstream_model)) = self.router.embedding_backend(model) {
            return client.embed(&upstream_model, texts).await;
        }
        self.local.embed(model, texts, cancel).await
    }

    async fn cached_answer(&self, key: &str) -> Option<CachedAnswer> {
        let bytes = self.cache_get(key).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The cache key of a request whose answer may be reused: non-streamed, deterministic
    /// (temperature 0 or a seed), with the cache on. Answers are only shared with the same user.
    fn cache_key(&self, principal: &Principal, request: &ChatRequest) -> Option<String> {
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

    async fn cache_get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let hit = self.cache.as_ref()?.get(key).await;
        self.metrics.cache(hit.is_some());
        hit
    }

    async fn cache_put(&self, key: String, value: Vec<u8>) {
        if let Some(cache) = &self.cache {
            cache.set(key, value, self.cache_ttl).await;
        }
    }

    /// Records how a request ended: usage row, token limits, metrics.
    fn finish(&self, principal: &Principal, outcome: &Outcome) {
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
