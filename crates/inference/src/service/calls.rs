//! The model-calling chain of [`InferenceService`]: model access, limits, the response cache,
//! accounting and routing for every chat completion and embeddings request, and the
//! [`Accounting`] that records each request's outcome exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_core::auth::{Credential, Principal};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::InferenceError;
use crate::limits::{Allowance, Slot};
use crate::router::Routed;
use crate::types::{
    ChatEvent, ChatRequest, ChatStream, EmbedRequest, Embeddings, FinishReason, ResponseFormat,
    Usage,
};
use crate::usage::UsageRecord;

use super::trace::ModelSpan;
use super::{Answer, InferenceService, MAX_EMBEDDING_INPUTS, UNKNOWN_MODEL};

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
    /// The call's span (GenAI attributes), ended with the accounting.
    span: ModelSpan,
}

impl Accounting {
    fn start(
        service: Arc<InferenceService>,
        principal: Principal,
        model: String,
        arrived: Instant,
        operation: &'static str,
    ) -> Self {
        let span = ModelSpan::start(operation, &model);
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
            span,
        }
    }

    /// Notes which backend answered, and when.
    fn routed(&mut self, routed: &Routed) {
        self.backend.clone_from(&routed.backend);
        self.upstream_started = routed.upstream_started;
        self.ttft = Some(routed.ttft);
        self.known = Some(true);
        self.span.routed(&routed.backend);
    }

    fn end(&mut self, usage: Usage, status: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.span.ended(usage, status);
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

/// A cached answer: what the model said, independent of how it is sent.
#[derive(Serialize, Deserialize)]
struct CachedAnswer {
    content: String,
    reason: FinishReason,
    usage: Usage,
}

/// The state of an answer's stream as [`InferenceService::chat_completion`] hands it on.
struct Flow {
    events: ChatStream,
    accounting: Accounting,
    _slot: Slot,
    /// The cache key and the text so far, when the finished answer is to be cached.
    cache: Option<(String, String)>,
    ended: bool,
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
            "chat",
        );
        let routed = match self
            .router
            .chat(&request, cancel)
            .instrument(accounting.span.span().clone())
            .await
        {
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
                        flow.accounting.span.finished(*reason);
                        flow.accounting.end(*usage, "ok");
                        service
                            .limits
                            .add_tokens(&flow.accounting.principal, u64::from(usage.total_tokens))
                            .await;
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
            "embeddings",
        );
        accounting.backend = "embeddings".into();
        let result = self
            .embed(&request.model, request.texts, cancel)
            .instrument(accounting.span.span().clone())
            .await;
        match result {
            Ok((vectors, prompt_tokens)) => {
                accounting.known = Some(true);
                let usage = Usage::new(prompt_tokens, 0);
                accounting.end(usage, "ok");
                self.limits
                    .add_tokens(principal, u64::from(usage.total_tokens))
                    .await;
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

    /// Records how a request ended: usage row and metrics (the token limits count on the
    /// answer's way out, where it can wait for the shared count).
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
