//! The [`ModelClient`] port: how a service asks for an answer or embeddings on a user's
//! behalf. Adapters: the inference service in the same process (in the composition root,
//! `confab::models::InProcessModels`) and [`crate::http::HttpModelClient`] over another
//! process's OpenAI-compatible API. Either way the inference service's whole policy chain —
//! model access, limits, the response cache, usage accounting, routing — applies, and the usage
//! is the user's.

use async_trait::async_trait;
use confab_core::auth::Principal;
use tokio_util::sync::CancellationToken;

use crate::error::ModelError;
use crate::types::{ChatRequest, ChatStream, EmbedRequest, Embeddings, ModelInfo};

#[async_trait]
pub trait ModelClient: Send + Sync {
    /// Every model a request may name.
    async fn models(&self) -> Result<Vec<ModelInfo>, ModelError>;

    /// Starts an answer for `principal`. The stream yields `Started`, the deltas and one
    /// `Finished`, or an error. Cancelling `cancel` or dropping the stream stops the
    /// generation (recorded as cancelled).
    async fn chat(
        &self,
        principal: &Principal,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, ModelError>;

    /// Embeds texts for `principal`, one vector per text in order.
    async fn embed(
        &self,
        principal: &Principal,
        request: EmbedRequest,
    ) -> Result<Embeddings, ModelError>;

    /// The model used when a request names none: the one marked default, else the first.
    async fn default_model(&self) -> Option<String> {
        let models = self.models().await.ok()?;
        models
            .iter()
            .find(|m| m.default)
            .or_else(|| models.first())
            .map(|m| m.id.clone())
    }

    /// Whether `model` names a model or alias that requests may use.
    async fn knows_model(&self, model: &str) -> bool {
        self.models()
            .await
            .is_ok_and(|models| models.iter().any(|m| m.id == model))
    }

    /// The context window of `model` in tokens, when known.
    async fn context_tokens(&self, model: &str) -> Option<usize> {
        self.models()
            .await
            .ok()?
            .into_iter()
            .find(|m| m.id == model)
            .and_then(|m| m.context_tokens)
    }
}
