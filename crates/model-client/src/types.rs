//! The vocabulary of calling a model: requests, streamed events and usage as every provider
//! and every caller speaks them, plus what the model list and embeddings exchange.

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ModelError;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Images the message shows (user messages, for models that see), after its text.
    pub images: Vec<ImageInput>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            images: Vec::new(),
        }
    }

    /// The message with these images.
    pub fn with_images(mut self, images: Vec<ImageInput>) -> Self {
        self.images = images;
        self
    }
}

/// The most images one request to a model carries (the API refuses more; chat sends the
/// newest this many of a conversation).
pub const MAX_IMAGES: usize = 16;

/// The image types a model may be given.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/// An image given to a model: its type (one of [`IMAGE_TYPES`]) and its bytes in standard
/// base64, as every provider's wire format carries them (shared: requests are cloned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInput {
    pub media_type: String,
    pub base64: std::sync::Arc<str>,
}

impl ImageInput {
    /// An image from its bytes.
    pub fn from_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        Self {
            media_type: media_type.into(),
            base64: base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        }
    }

    /// The image as a `data:` URL (OpenAI's `image_url` part).
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type, self.base64)
    }
}

/// How to pick tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (deterministic).
    pub temperature: f32,
    pub top_p: f32,
    /// At most this many generated tokens; `None` means until the context is full.
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: None,
            stop: Vec::new(),
            seed: None,
        }
    }
}

/// Constrained output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A chat request as providers receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub params: SamplingParams,
    pub response_format: Option<ResponseFormat>,
    /// Whether the caller reads the answer as it is generated. When false, a remote provider
    /// may fetch the whole answer in one response (and the first-token timeout then covers
    /// the whole answer, so the provider's total timeout applies instead).
    pub stream: bool,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn or a stop sequence appeared.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// What a provider streams back. A stream starts with `Started` (so errors found before the
/// first token, like an over-long prompt, arrive before anything is sent to the client),
/// then `Delta`s, then exactly one `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    Started,
    Delta(String),
    Finished { reason: FinishReason, usage: Usage },
}

/// The events of one answer, ending with `Finished` or an error.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatEvent, ModelError>> + Send>>;

/// Texts to embed with one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedRequest {
    pub model: String,
    pub texts: Vec<String>,
}

/// One vector per text, in the order of the request, and the tokens the texts took.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: u32,
}

/// A model that requests may name, as callers need to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// The model used when a request names none.
    #[serde(default)]
    pub default: bool,
    /// The context window in tokens, when known (local models).
    #[serde(default)]
    pub context_tokens: Option<usize>,
}
