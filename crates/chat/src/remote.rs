//! [`ModelClient`] over HTTP, for split mode: the inference service's OpenAI-compatible
//! `/v1/chat/completions` (streamed) and its model list `/api/v1/models`, called with a
//! short-lived service token minted for the user (see [`ServiceTokens`]), so the inference
//! service applies that user's limits and records the usage as theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::auth::{Principal, Role, Scope, ServiceTokens};
use confab_inference::error::InferenceError;
use confab_inference::openai::OpenAiClient;
use confab_inference::types::ChatEvent;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ports::{Ask, ModelClient, ModelError};

/// How long the model list is reused before it is asked for again.
const MODELS_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
struct RemoteModel {
    id: String,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    context_tokens: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct RemoteModels {
    items: Vec<RemoteModel>,
}

#[derive(Debug)]
pub struct HttpModels {
    openai: OpenAiClient,
    http: reqwest::Client,
    models_url: reqwest::Url,
    tokens: ServiceTokens,
    models: RwLock<Option<(Instant, Arc<Vec<RemoteModel>>)>>,
}

impl HttpModels {
    /// `base_url` is the inference service's root (`http://inference:8080`).
    pub fn new(base_url: &str, tokens: ServiceTokens) -> Result<Self, String> {
        let base = base_url.trim_end_matches('/');
        let openai = OpenAiClient::new(
            "inference",
            &format!("{base}/v1"),
            None,
            Duration::from_secs(10),
            // Answers stream for as long as the model talks; the chat service stops them.
            Duration::from_secs(3600),
        )
        .map_err(|e| e.to_string())?;
        let models_url = reqwest::Url::parse(&format!("{base}/api/v1/models"))
            .map_err(|e| format!("chat.inference_url `{base_url}`: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            openai,
            http,
            models_url,
            tokens,
            models: RwLock::new(None),
        })
    }

    /// The inference service's models, fetched at most every [`MODELS_TTL`]; empty when it
    /// cannot be reached (the send then fails with a clear error from the completion call).
    async fn models(&self) -> Arc<Vec<RemoteModel>> {
        if let Some((at, models)) = self.models.read().await.as_ref()
            && at.elapsed() < MODELS_TTL
        {
            return models.clone();
        }
        match self.fetch_models().await {
            Ok(models) => {
                let models = Arc::new(models);
                *self.models.write().await = Some((Instant::now(), models.clone()));
                models
            }
            Err(e) => {
                tracing::warn!(url = %self.models_url, error = %e, "cannot list the inference service's models");
                // The last list known, if any, is better than none.
                self.models
                    .read()
                    .await
                    .as_ref()
                    .map(|(_, m)| m.clone())
                    .unwrap_or_default()
            }
        }
    }

    async fn fetch_models(&self) -> Result<Vec<RemoteModel>, String> {
        // Listing models is nobody's in particular: a token for no user, inference scope.
        let service = Principal {
            user_id: Uuid::nil(),
            role: Role::User,
            credential: confab_core::auth::Credential::Service {
                key_id: None,
                scopes: vec![Scope::Inference],
            },
        };
        let token = self
            .tokens
            .mint(&service, &[Scope::Inference])
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .get(self.models_url.clone())
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{status}"));
        }
        let list: RemoteModels = response.json().await.map_err(|e| e.to_string())?;
        Ok(list.items)
    }
}

/// The inference service's errors, as the chat service reports them.
fn model_error(e: InferenceError) -> ModelError {
    match e {
        InferenceError::Upstream {
            status,
            message,
            retry_after_secs,
            ..
        } => match status {
            404 => ModelError::NotFound(message),
            429 => ModelError::Limited(message, retry_after_secs),
            400 | 413 | 422 => ModelError::Invalid(message),
            401 | 403 => ModelError::Unavailable(format!(
                "the inference service refused this service's credentials ({message}); \
                 check that both use the same services.token"
            )),
            _ => ModelError::Unavailable(message),
        },
        InferenceError::ModelNotFound(model) => {
            ModelError::NotFound(format!("no model named `{model}`"))
        }
        e => ModelError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl ModelClient for HttpModels {
    async fn default_model(&self) -> Option<String> {
        let models = self.models().await;
        models
            .iter()
            .find(|m| m.default)
            .or_else(|| models.first())
            .map(|m| m.id.clone())
    }

    async fn knows_model(&self, model: &str) -> bool {
        self.models().await.iter().any(|m| m.id == model)
    }

    async fn context_tokens(&self, model: &str) -> Option<usize> {
        self.models()
            .await
            .iter()
            .find(|m| m.id == model)
            .and_then(|m| m.context_tokens)
    }

    async fn answer(
        &self,
        principal: &Principal,
        ask: Ask,
        cancel: CancellationToken,
    ) -> Result<BoxStream<'static, Result<ChatEvent, ModelError>>, ModelError> {
        let token = self
            .tokens
            .mint(principal, &[Scope::Inference])
            .map_err(|e| ModelError::Unavailable(e.to_string()))?;
        let request = ask.into_request();
        let stream = tokio::select! {
            started = self.openai.stream_with_bearer(&request, &token) => started.map_err(model_error)?,
            () = cancel.cancelled() => return Ok(futures::stream::empty().boxed()),
        };
        // Stopping drops the stream, which closes the connection: the inference service
        // sees its client go and stops generating.
        Ok(stream
            .map(|event| event.map_err(model_error))
            .take_until(cancel.cancelled_owned())
            .boxed())
    }
}
