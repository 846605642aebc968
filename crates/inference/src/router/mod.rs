//! The model router: model names and aliases map to tiers of backends; requests are balanced
//! within a tier (round robin or least in flight), retried with exponential backoff and full
//! jitter — only before the first token — honouring an upstream `Retry-After`, and fall back
//! to later tiers. Each backend has a circuit breaker (consecutive failures or an error rate
//! over a window open it; after a pause one probe may pass; a success closes it) and its own
//! timeouts (connect and total in the client, first token here; an answer fetched whole, not
//! streamed, is bounded by the total timeout alone).
//!
//! The circuit breaker, with its window, is `confab_core::breaker`'s (the gateway uses it too).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use confab_core::config::{Balance, InferenceConfig, ProviderKind, RouterConfig};
use futures::StreamExt;
use parking_lot::Mutex;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::error::InferenceError;
use crate::local::LocalEngines;
use crate::metrics::InferenceMetrics;
use crate::openai::OpenAiClient;
use crate::provider::Provider;
use crate::scripted::Scripted;
use crate::types::{ChatEvent, ChatRequest, ChatStream};

pub use confab_core::breaker::{BreakerSettings, CircuitBreaker, CircuitState};

/// The breaker settings of `[inference.router]`.
fn breaker_settings(settings: &RouterConfig) -> BreakerSettings {
    BreakerSettings {
        failures: settings.breaker_failures,
        min_requests: settings.breaker_min_requests,
        error_rate: settings.breaker_error_rate,
        open_for: Duration::from_secs(settings.breaker_open_secs),
        window_secs: settings.breaker_window_secs,
    }
}

#[derive(Debug, Clone)]
enum Target {
    Remote(Provider),
    /// A local model, loaded on first use.
    Local(String),
}

/// A remote backend that computes embeddings.
#[derive(Debug, Clone)]
pub enum RemoteEmbedder {
    OpenAi(Arc<OpenAiClient>),
    Ollama(Arc<crate::ollama::OllamaClient>),
}

impl RemoteEmbedder {
    /// Embeds `texts` with `model`: the vectors in order and the prompt tokens used.
    pub async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        match self {
            RemoteEmbedder::OpenAi(client) => client.embed(model, texts).await,
            RemoteEmbedder::Ollama(client) => client.embed(model, texts).await,
        }
    }
}

/// One place a request can go: a provider and the model name it knows.
#[derive(Debug)]
pub struct Backend {
    /// `provider:model`.
    pub id: String,
    model: String,
    target: Target,
    pub breaker: CircuitBreaker,
    in_flight: AtomicUsize,
    first_token_timeout: Duration,
    /// The provider's total timeout: the limit for answers fetched whole.
    total_timeout: Duration,
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Backend>);

impl InFlight {
    fn new(backend: Arc<Backend>) -> Self {
        backend.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(backend)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Route {
    tiers: Vec<Vec<Arc<Backend>>>,
    balance: Balance,
    next: AtomicUsize,
}

impl Route {
    /// Every backend in the order to try: tier by tier, balanced within each.
    fn candidates(&self) -> Vec<Arc<Backend>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for tier in &self.tiers {
            let mut tier: Vec<Arc<Backend>> = tier.clone();
            match self.balance {
                Balance::RoundRobin if !tier.is_empty() => {
                    let shift = turn % tier.len();
                    tier.rotate_left(shift);
                }
                Balance::LeastInFlight => tier.sort_by_key(|b| b.in_flight.load(Ordering::Relaxed)),
                Balance::RoundRobin => {}
            }
            out.extend(tier);
        }
        out
    }
}

/// A stream that is running on a backend.
pub struct Routed {
    pub stream: ChatStream,
    /// The backend that answered (`provider:model`).
    pub backend: String,
    /// Time to the first token, including retries.
    pub ttft: Duration,
    /// When the answering attempt started (upstream time is measured from here).
    pub upstream_started: Instant,
}

impl std::fmt::Debug for Routed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

pub struct Router {
    settings: RouterConfig,
    /// Aliases and remote models.
    routes: HashMap<String, Route>,
    /// Every backend by id, local ones added as they are first used.
    backends: Mutex<HashMap<String, Arc<Backend>>>,
    local: Arc<LocalEngines>,
    metrics: Arc<InferenceMetrics>,
    /// The Ollama providers by name, for pulls and deletions through the explore API.
    ollama: HashMap<String, Arc<crate::ollama::OllamaClient>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.keys())
            .finish_non_exhaustive()
    }
}

fn retryable(error: &InferenceError) -> bool {
    match error {
        InferenceError::Upstream { status, .. } => {
            *status == 408 || *status == 429 || *status >= 500
        }
        InferenceError::Unavailable(_) | InferenceError::Timeout => true,
        _ => false,
    }
}

fn retry_after(error: &InferenceError) -> Option<u64> {
    match error {
        InferenceError::Upstream {
            retry_after_secs, ..
        } => *retry_after_secs,
        _ => None,
    }
}

impl Router {
    pub fn new(
        config: &InferenceConfig,
        local: Arc<LocalEngines>,
        metrics: Arc<InferenceMetrics>,
    ) -> Result<Self, InferenceError> {
        let settings = config.router.clone();
        let mut providers: HashMap<String, (Provider, Duration, Duration)> = HashMap::new();
        for p in &config.providers {
            let timeout = Duration::from_secs(p.timeout_secs);
            let connect = Duration::from_secs(p.connect_timeout_secs);
            let provider = match p.kind {
                ProviderKind::Openai => Provider::OpenAi(Arc::new(OpenAiClient::new(
                    &p.name,
                    p.base_url.as_deref().unwrap_or_default(),
                    p.api_key.as_ref().map(|k| k.expose().to_owned()),
                    connect,
                    timeout,
                )?)),
                ProviderKind::Anthropic => {
                    Provider::Anthropic(Arc::new(crate::anthropic::AnthropicClient::new(
                        &p.name,
                        p.base_url.as_deref().unwrap_or_default(),
                        p.api_key.as_ref().map(|k| k.expose().to_owned()),
                        timeout,
                    )?))
                }
                ProviderKind::Ollama => {
                    Provider::Ollama(Arc::new(crate::ollama::OllamaClient::new(
                        &p.name,
                        p.base_url.as_deref().unwrap_or_default(),
                        p.api_key.as_ref().map(|k| k.expose().to_owned()),
                        timeout,
                    )?))
                }
                ProviderKind::Scripted => Provider::Scripted(Arc::new(Scripted {
                    reply: p.reply.clone().unwrap_or_else(|| "You said: {last}".into()),
                    delay: Duration::from_millis(p.delay_ms),
                })),
            };
            providers.insert(
                p.name.clone(),
                (
                    provider,
                    Duration::from_secs(p.first_token_timeout_secs),
                    timeout,
                ),
            );
        }
        let mut backends: HashMap<String, Arc<Backend>> = HashMap::new();
        let mut backend = |provider: &str, model: &str| -> Option<Arc<Backend>> {
            let id = format!("{provider}:{model}");
            if let Some(existing) = backends.get(&id) {
                return Some(existing.clone());
            }
            let (target, first_token_timeout, total_timeout) = if provider == "embedded" {
                let ftt = Duration::from_secs(120);
                (Target::Local(model.to_owned()), ftt, ftt)
            } else {
                let (p, ftt, total) = providers.get(provider)?;
                (Target::Remote(p.clone()), *ftt, *total)
            };
            let made = Arc::new(Backend {
                id: id.clone(),
                model: model.to_owned(),
                target,
                breaker: CircuitBreaker::new(breaker_settings(&settings)),
                in_flight: AtomicUsize::new(0),
                first_token_timeout,
                total_timeout,
            });
            backends.insert(id, made.clone());
            Some(made)
        };
        let mut routes = HashMap::new();
        for p in &config.providers {
            for model in &p.models {
                if let Some(b) = backend(&p.name, model) {
                    routes.entry(model.clone()).or_insert_with(|| Route {
                        tiers: vec![vec![b]],
                        balance: Balance::RoundRobin,
                        next: AtomicUsize::new(0),
                    });
                }
            }
        }
        for alias in &config.aliases {
            let tiers = alias
                .targets
                .iter()
                .map(|tier| {
                    tier.iter()
                        .filter_map(|t| t.split_once(':').and_then(|(p, m)| backend(p, m)))
                        .collect::<Vec<_>>()
                })
                .filter(|tier| !tier.is_empty())
                .collect();
            routes.insert(
                alias.name.clone(),
                Route {
                    tiers,
                    balance: alias.balance,
                    next: AtomicUsize::new(0),
                },
            );
        }
        let ollama = providers
            .iter()
            .filter_map(|(name, (provider, _, _))| match provider {
                Provider::Ollama(client) => Some((name.clone(), client.clone())),
                _ => None,
            })
            .collect();
        Ok(Self {
            settings,
            routes,
            backends: Mutex::new(backends),
            local,
            metrics,
            ollama,
        })
    }

    /// The configured Ollama providers by name.
    pub fn ollama_clients(&self) -> HashMap<String, Arc<crate::ollama::OllamaClient>> {
        self.ollama.clone()
    }

    /// Names a request may use besides local models: aliases and remote models, with the
    /// provider each belongs to (`alias` for aliases).
    pub fn names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = self
            .routes
            .iter()
            .map(|(name, route)| {
                let owner = match route.tiers.as_slice() {
                    [tier] if tier.len() == 1 => {
                        tier[0].id.split(':').next().unwrap_or("").to_owned()
                    }
                    _ => "alias".to_owned(),
                };
                (name.clone(), owner)
            })
            .collect();
        names.sort();
        names
    }

    /// Whether `model` names an alias, a configured remote model or a local model.
    pub fn knows(&self, model: &str) -> bool {
        self.routes.contains_key(model) || self.local.find(model).is_some()
    }

    /// The first remote backend of `model` that can embed (OpenAI-compatible or Ollama), with
    /// the model name it knows.
    pub fn embedding_backend(&self, model: &str) -> Option<(RemoteEmbedder, String)> {
        let route = self.routes.get(model)?;
        route.tiers.iter().flatten().find_map(|b| match &b.target {
            Target::Remote(Provider::OpenAi(client)) => {
                Some((RemoteEmbedder::OpenAi(client.clone()), b.model.clone()))
            }
            Target::Remote(Provider::Ollama(client)) => {
                Some((RemoteEmbedder::Ollama(client.clone()), b.model.clone()))
            }
            _ => None,
        })
    }

    /// Every backend's circuit, for `/metrics`.
    pub fn circuits(&self) -> Vec<(String, CircuitState)> {
        self.backends
            .lock()
            .values()
            .map(|b| (b.id.clone(), b.breaker.state()))
            .collect()
    }

    fn local_route(&self, model: &str) -> Option<Route> {
        let local = self.local.find(model)?;
        let id = format!("embedded:{}", local.name);
        let backend = self
            .backends
            .lock()
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Backend {
                    id,
                    model: local.name.clone(),
                    target: Target::Local(local.name.clone()),
                    breaker: CircuitBreaker::new(breaker_settings(&self.settings)),
                    in_flight: AtomicUsize::new(0),
                    first_token_timeout: Duration::from_secs(120),
                    total_timeout: Duration::from_secs(120),
                })
            })
            .clone();
        Some(Route {
            tiers: vec![vec![backend]],
            balance: Balance::RoundRobin,
            next: AtomicUsize::new(0),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .backoff_base_ms
            .saturating_mul(1u64 << attempt.min(16))
            .min(self.settings.backoff_max_ms);
        Duration::from_millis(rand::thread_rng().gen_range(0..=exp))
    }

    /// Runs `request` on the first backend that answers, as described in the module docs.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Routed, InferenceError> {
        let started = Instant::now();
        let local_route;
        let route = match self.routes.get(&request.model) {
            Some(route) => route,
            None => {
                local_route = self
                    .local_route(&request.model)
                    .ok_or_else(|| InferenceError::ModelNotFound(request.model.clone()))?;
                &local_route
            }
        };
        let candidates = route.candidates();
        let attempts = candidates.len() + self.settings.retries as usize;
        let mut last_error: Option<InferenceError> = None;
        let mut skip: Vec<String> = Vec::new();
        let mut tried = 0u32;
        for index in 0..attempts {
            let backend = &candidates[index % candidates.len()];
            if skip.contains(&backend.id) || !backend.breaker.allow() {
                continue;
            }
            if tried > 0 {
                let mut wait = self.backoff(tried - 1);
                let same = index > 0 && candidates[(index - 1) % candidates.len()].id == backend.id;
                if let (true, Some(secs)) = (same, last_error.as_ref().and_then(retry_after)) {
                    wait = wait.max(Duration::from_secs(secs));
                }
                self.metrics.retry(&backend.id);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return Err(InferenceError::Unavailable("cancelled".into())),
                }
            }
            tried += 1;
            let upstream_started = Instant::now();
            match self.attempt(backend, request, cancel.clone()).await {
                Ok(stream) => {
                    backend.breaker.record(true);
                    return Ok(Routed {
                        stream,
                        backend: backend.id.clone(),
                        ttft: started.elapsed(),
                        upstream_started,
                    });
                }
                // A full queue is not a failure of the backend: try the others, and leave
                // its circuit alone.
                Err(e @ InferenceError::Busy { .. }) => {
                    skip.push(backend.id.clone());
                    last_error = Some(e);
                }
                Err(e) if retryable(&e) => {
                    backend.breaker.record(false);
                    tracing::warn!(backend = %backend.id, error = %e, "backend failed; trying again");
                    if retry_after(&e).is_some_and(|secs| secs > self.settings.max_retry_after_secs)
                    {
                        skip.push(backend.id.clone());
                    }
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            InferenceError::Unavailable(format!(
                "every backend of `{}` is unavailable (circuits open); retry shortly",
                request.model
            ))
        }))
    }

    /// One try: start the stream and wait for its first event within the first-token timeout.
    async fn attempt(
        &self,
        backend: &Arc<Backend>,
        request: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, InferenceError> {
        let guard = InFlight::new(backend.clone());
        let provider = match &backend.target {
            Target::Remote(provider) => provider.clone(),
            Target::Local(name) => self.local.provider(name).await?,
        };
        let mut upstream_request = request.clone();
        upstream_request.model = backend.model.clone();
        // An answer fetched whole arrives all at once: its first token is its last.
        let limit = if provider.fetches_whole(request) {
            backend.total_timeout
        } else {
            backend.first_token_timeout
        };
        let first = tokio::time::timeout(limit, async {
            let mut stream = provider.chat(&upstream_request, cancel).await?;
            let first = stream.next().await;
            Ok::<_, InferenceError>((first, stream))
        })
        .await
        .map_err(|_| InferenceError::Timeout)??;
        let (first, rest) = first;
        let first = match first {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(InferenceError::Unavailable(format!(
                    "{} ended before answering",
                    backend.id
                )));
            }
        };
        let breaker_backend = backend.clone();
        let rest = rest.map(move |event| {
            // The in-flight count lasts as long as the stream.
            let _keep = &guard;
            if let Err(e) = &event
                && retryable(e)
            {
                breaker_backend.breaker.record(false);
            }
            event
        });
        Ok(
            futures::stream::once(async move { Ok::<ChatEvent, InferenceError>(first) })
                .chain(rest)
                .boxed(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_failures_are_retried() {
        let upstream = |status| InferenceError::Upstream {
            provider: "p".into(),
            status,
            message: String::new(),
            retry_after_secs: Some(2),
        };
        assert!(
            retryable(&upstream(503))
                && retryable(&upstream(429))
                && retryable(&InferenceError::Timeout)
        );
        assert!(
            !retryable(&upstream(400))
                && !retryable(&InferenceError::ContextLengthExceeded(String::new()))
        );
        assert_eq!(retry_after(&upstream(429)), Some(2));
    }
}
