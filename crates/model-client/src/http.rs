//! [`ModelClient`] over HTTP, for split mode: another process's OpenAI-compatible
//! `/v1/chat/completions` (streamed) and `/v1/embeddings`, and its model list
//! `/api/v1/models`, called with a short-lived service token minted for the user (see
//! [`ServiceTokens`]), so the inference service applies that user's access, limits and usage.

use confab_core::service_tls::ServiceTls;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::auth::{Credential, Principal, Role, Scope, ServiceTokens};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ModelError;
use crate::openai::OpenAiClient;
use crate::port::ModelClient;
use crate::types::{ChatRequest, ChatStream, EmbedRequest, Embeddings, ModelInfo};

/// How long the model list is reused before it is asked for again.
const MODELS_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct RemoteModels {
    items: Vec<ModelInfo>,
}

#[derive(Debug)]
pub struct HttpModelClient {
    openai: OpenAiClient,
    http: reqwest::Client,
    models_url: reqwest::Url,
    tokens: ServiceTokens,
    models: RwLock<Option<(Instant, Arc<Vec<ModelInfo>>)>>,
}

impl HttpModelClient {
    /// `base_url` is the inference service's root (`http://inference:8080`).
    pub fn new(base_url: &str, tokens: ServiceTokens) -> Result<Self, ModelError> {
        Self::with_tls(base_url, tokens, &ServiceTls::default())
    }

    /// [`Self::new`] with the deployment's trust for calls between services
    /// (`services.ca_file`, `services.require_tls`).
    pub fn with_tls(
        base_url: &str,
        tokens: ServiceTokens,
        tls: &ServiceTls,
    ) -> Result<Self, ModelError> {
        let base = base_url.trim_end_matches('/');
        let openai = OpenAiClient::with_client(
            tls.client_builder(),
            "inference",
            &format!("{base}/v1"),
            None,
            Duration::from_secs(10),
            // Answers stream for as long as the model talks; the caller stops them.
            Duration::from_secs(3600),
        )?;
        let models_url = reqwest::Url::parse(&format!("{base}/api/v1/models")).map_err(|e| {
            ModelError::Engine(format!(
                "inference URL `{}`: {e}",
                confab_core::config::redact_url(base_url)
            ))
        })?;
        let http = tls
            .client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ModelError::Engine(format!("HTTP client: {e}")))?;
        Ok(Self {
            openai,
            http,
            models_url,
            tokens,
            models: RwLock::new(None),
        })
    }

    fn token(&self, principal: &Principal) -> Result<String, ModelError> {
        self.tokens
            .mint(principal, &[Scope::Inference])
            .map_err(|e| ModelError::Engine(format!("cannot mint a service token: {e}")))
    }

    async fn fetch_models(&self) -> Result<Vec<ModelInfo>, ModelError> {
        // Listing models is nobody's in particular: a token for no user, inference scope.
        let service = Principal {
            user_id: Uuid::nil(),
            role: Role::User,
            credential: Credential::Service {
                key_id: None,
                scopes: vec![Scope::Inference],
            },
        };
        let token = self.token(&service)?;
        let unavailable = |e: String| {
            ModelError::Unavailable(format!("listing models at {}: {e}", self.models_url))
        };
        let response = self
            .http
            .get(self.models_url.clone())
            .headers(confab_core::telemetry::otel::trace_headers())
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(status.to_string()));
        }
        let list: RemoteModels = response
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(list.items)
    }
}

/// The inference service's answers, as typed errors: it speaks OpenAI's error shape, so the
/// status says which.
fn remote_error(model: &str, e: ModelError) -> ModelError {
    match e {
        ModelError::Upstream {
            status,
            message,
            retry_after_secs,
            ..
        } => match status {
            404 => ModelError::ModelNotFound(model.to_owned()),
            403 => ModelError::ModelNotAllowed(model.to_owned()),
            429 => ModelError::Limited {
                code: "rate_limit_exceeded",
                message,
                retry_after_secs,
            },
            503 if retry_after_secs.is_some() => ModelError::Busy {
                message,
                retry_after_secs,
            },
            400 | 413 | 422 => ModelError::InvalidRequest {
                param: None,
                message,
            },
            401 => ModelError::Unavailable(format!(
                "the inference service refused this service's credentials ({message}); \
                 check that both use the same services.token"
            )),
            _ => ModelError::Unavailable(format!(
                "the inference service answered {status}: {message}"
            )),
        },
        e => e,
    }
}

#[async_trait]
impl ModelClient for HttpModelClient {
    /// The inference service's models, fetched at most every [`MODELS_TTL`]; when it cannot
    /// be reached, the last list known.
    async fn models(&self) -> Result<Vec<ModelInfo>, ModelError> {
        if let Some((at, models)) = self.models.read().await.as_ref()
            && at.elapsed() < MODELS_TTL
        {
            return Ok(models.as_ref().clone());
        }
        match self.fetch_models().await {
            Ok(models) => {
                *self.models.write().await = Some((Instant::now(), Arc::new(models.clone())));
                Ok(models)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the inference service's models");
                match self.models.read().await.as_ref() {
                    Some((_, models)) => Ok(models.as_ref().clone()),
                    None => Err(e),
                }
            }
        }
    }

    async fn chat(
        &self,
        principal: &Principal,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, ModelError> {
        let token = self.token(principal)?;
        let model = request.model.clone();
        let stream = tokio::select! {
            started = self.openai.stream_with_bearer(&request, &token) => {
                started.map_err(|e| remote_error(&model, e))?
            }
            () = cancel.cancelled() => return Ok(futures::stream::empty().boxed()),
        };
        // Stopping drops the stream, which closes the connection: the inference service
        // sees its client go and stops generating.
        Ok(stream
            .map(move |event| event.map_err(|e| remote_error(&model, e)))
            .take_until(cancel.cancelled_owned())
            .boxed())
    }

    async fn embed(
        &self,
        principal: &Principal,
        request: EmbedRequest,
    ) -> Result<Embeddings, ModelError> {
        let token = self.token(principal)?;
        let (vectors, prompt_tokens) = self
            .openai
            .embed_with_bearer(&request.model, request.texts, &token)
            .await
            .map_err(|e| remote_error(&request.model, e))?;
        Ok(Embeddings {
            vectors,
            prompt_tokens,
        })
    }
}
