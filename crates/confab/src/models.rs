//! The in-process adapter of the model-calling port ([`ModelClient`]): the inference service
//! in this process, without HTTP in between. It lives in the composition root, the one place
//! that knows both the port (`confab-model-client`) and the inference service, so that the
//! services which call models depend on the port alone.

use std::sync::Arc;

use async_trait::async_trait;
use confab_core::auth::Principal;
use confab_inference::InferenceService;
use confab_model_client::{
    ChatRequest, ChatStream, EmbedRequest, Embeddings, ModelClient, ModelError, ModelInfo,
};
use tokio_util::sync::CancellationToken;

/// [`ModelClient`] over the inference service in this process: the same policy chain as the
/// OpenAI-compatible API (model access, limits, cache, accounting, routing).
#[derive(Debug, Clone)]
pub struct InProcessModels {
    service: Arc<InferenceService>,
}

impl InProcessModels {
    pub fn new(service: Arc<InferenceService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl ModelClient for InProcessModels {
    async fn models(&self) -> Result<Vec<ModelInfo>, ModelError> {
        let default = self.service.default_model();
        Ok(self
            .service
            .models()
            .into_iter()
            .map(|m| ModelInfo {
                default: default.as_deref() == Some(m.id.as_str()),
                context_tokens: self.service.context_tokens(&m.id),
                id: m.id,
            })
            .collect())
    }

    async fn chat(
        &self,
        principal: &Principal,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, ModelError> {
        Ok(self
            .service
            .chat_completion(principal, request, cancel)
            .await?
            .stream)
    }

    async fn embed(
        &self,
        principal: &Principal,
        request: EmbedRequest,
    ) -> Result<Embeddings, ModelError> {
        let (embeddings, _allowance) = self
            .service
            .embeddings(principal, request, CancellationToken::new())
            .await?;
        Ok(embeddings)
    }

    // The service answers these without listing every model.
    async fn default_model(&self) -> Option<String> {
        self.service.default_model()
    }

    async fn knows_model(&self, model: &str) -> bool {
        self.service.knows_model(model)
    }

    async fn context_tokens(&self, model: &str) -> Option<usize> {
        self.service.context_tokens(model)
    }
}
