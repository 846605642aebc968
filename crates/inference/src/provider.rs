//! The closed set of backends a request can go to, dispatched by `match`.

use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::error::InferenceError;
use crate::openai::OpenAiClient;
use crate::scripted::Scripted;
use crate::types::{ChatEvent, ChatRequest, ChatStream, ResponseFormat};

#[derive(Debug, Clone)]
pub enum Provider {
    /// A local GGUF model on the embedded llama.cpp engine.
    #[cfg(feature = "llama")]
    Embedded(Arc<crate::engine::Engine>),
    /// An OpenAI-compatible server.
    OpenAi(Arc<OpenAiClient>),
    /// Anthropic's Messages API.
    Anthropic(Arc<crate::anthropic::AnthropicClient>),
    /// Ollama's native API.
    Ollama(Arc<crate::ollama::OllamaClient>),
    /// The deterministic stand-in.
    Scripted(Arc<Scripted>),
}

/// The embedded engine's answer to a request with images: it runs text-only models.
#[cfg(feature = "llama")]
fn images_refused(model: &str) -> InferenceError {
    InferenceError::Unsupported(format!(
        "the model `{model}` runs on the embedded engine, which reads text only; remove the \
         images or choose a model that sees images (an OpenAI-compatible, Anthropic or Ollama \
         vision model)"
    ))
}

impl Provider {
    /// A name for logs and metrics.
    pub fn name(&self) -> &str {
        match self {
            #[cfg(feature = "llama")]
            Provider::Embedded(_) => "embedded",
            Provider::OpenAi(client) => &client.name,
            Provider::Anthropic(client) => &client.name,
            Provider::Ollama(client) => &client.name,
            Provider::Scripted(_) => "scripted",
        }
    }

    /// Whether this provider fetches `request`'s answer in one response rather than as a
    /// stream (remote OpenAI-compatible servers, when the caller does not stream).
    pub fn fetches_whole(&self, request: &ChatRequest) -> bool {
        matches!(self, Provider::OpenAi(_)) && !request.stream
    }

    /// Starts a generation. Errors found before the first token (unknown parameters, an
    /// over-long prompt, an upstream refusal) are returned here rather than in the stream.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, InferenceError> {
        // Only the embedded engine takes the token; remote streams end when dropped.
        #[cfg(not(feature = "llama"))]
        let _ = cancel;
        let mut stream = match self {
            #[cfg(feature = "llama")]
            Provider::Embedded(engine) => {
                // The newest user message's images are refused; older ones (a conversation
                // that showed a vision model an image earlier) are left out, their text kept.
                let newest = request
                    .messages
                    .iter()
                    .rposition(|m| m.role == crate::types::Role::User);
                if newest.is_some_and(|i| !request.messages[i].images.is_empty()) {
                    return Err(images_refused(&request.model));
                }
                let mut messages = request.messages.clone();
                for message in &mut messages {
                    message.images.clear();
                }
                let grammar = match &request.response_format {
                    None | Some(ResponseFormat::Text) => None,
                    Some(ResponseFormat::JsonObject) => Some(crate::engine::grammar_for_schema(
                        &serde_json::json!({"type": "object"}),
                    )?),
                    Some(ResponseFormat::JsonSchema { json_schema }) => {
                        Some(crate::engine::grammar_for_schema(&json_schema.schema)?)
                    }
                };
                let receiver =
                    engine.generate(messages, request.params.clone(), grammar, cancel)?;
                tokio_stream::wrappers::ReceiverStream::new(receiver).boxed()
            }
            Provider::OpenAi(client) => client.stream(request).await?,
            Provider::Anthropic(client) => client.stream(request).await?,
            Provider::Ollama(client) => client.stream(request).await?,
            Provider::Scripted(scripted) => {
                if request
                    .response_format
                    .as_ref()
                    .is_some_and(|f| *f != ResponseFormat::Text)
                {
                    return Err(InferenceError::Unsupported(
                        "the scripted provider cannot constrain its output; remove response_format"
                            .into(),
                    ));
                }
                scripted.stream(request)
            }
        };
        match stream.next().await {
            Some(Ok(ChatEvent::Started)) => Ok(stream),
            Some(Err(e)) => Err(e),
            Some(Ok(event)) => Ok(futures::stream::once(async move { Ok(event) })
                .chain(stream)
                .boxed()),
            None => Err(InferenceError::Engine(format!(
                "{} ended before answering",
                self.name()
            ))),
        }
    }
}
