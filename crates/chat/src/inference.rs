//! [`ModelClient`] over the inference service in the same process: the router, its limits and
//! its usage accounting, without HTTP in between.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use confab_core::auth::Principal;
use confab_inference::InferenceService;
use confab_inference::error::InferenceError;
use confab_inference::service::Accounting;
use confab_inference::types::{ChatEvent, Usage};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use crate::ports::{Ask, ModelClient, ModelError};

#[derive(Debug, Clone)]
pub struct InProcessModels {
    service: Arc<InferenceService>,
}

impl InProcessModels {
    pub fn new(service: Arc<InferenceService>) -> Self {
        Self { service }
    }
}

fn model_error(e: InferenceError) -> ModelError {
    match e {
        InferenceError::ModelNotFound(model) => {
            ModelError::NotFound(format!("no model named `{model}`"))
        }
        e @ (InferenceError::InvalidRequest { .. }
        | InferenceError::ContextLengthExceeded(_)
        | InferenceError::Unsupported(_)) => ModelError::Invalid(e.to_string()),
        e => ModelError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl ModelClient for InProcessModels {
    async fn default_model(&self) -> Option<String> {
        self.service.default_model()
    }

    async fn knows_model(&self, model: &str) -> bool {
        self.service.models().iter().any(|m| m.id == model)
    }

    async fn context_tokens(&self, model: &str) -> Option<usize> {
        self.service.context_tokens(model)
    }

    async fn answer(
        &self,
        principal: &Principal,
        ask: Ask,
        cancel: CancellationToken,
    ) -> Result<BoxStream<'static, Result<ChatEvent, ModelError>>, ModelError> {
        let arrived = Instant::now();
        if !self.service.allows_model(principal, &ask.model) {
            return Err(ModelError::Invalid(format!(
                "your account may not use the model `{}`; ask an administrator",
                ask.model
            )));
        }
        self.service
            .limits()
            .check(principal)
            .await
            .map_err(|e| ModelError::Limited(e.body.message, e.retry_after_secs))?;
        let model = ask.model.clone();
        let request = ask.into_request();
        // Stopping the answer drops its stream: that is recorded as `cancelled`.
        let mut accounting = Accounting::start(
            self.service.clone(),
            principal.clone(),
            model,
            arrived,
            "cancelled",
        );
        let routed = match self.service.chat(&request, cancel).await {
            Ok(routed) => routed,
            Err(e) => {
                accounting.end(Usage::default(), "error");
                return Err(model_error(e));
            }
        };
        accounting.routed(&routed);
        Ok(routed
            .stream
            .map(move |event| match event {
                Ok(ChatEvent::Finished { reason, usage }) => {
                    accounting.end(usage, "ok");
                    Ok(ChatEvent::Finished { reason, usage })
                }
                Ok(event) => Ok(event),
                Err(e) => {
                    accounting.end(Usage::default(), "error");
                    Err(model_error(e))
                }
            })
            .boxed())
    }
}
