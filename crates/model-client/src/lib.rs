//! How services call models. The chat service today, and the SEO, knowledge and video services
//! after it, depend on this crate — the request, stream event and usage types
//! ([`types`]), the errors ([`ModelError`]), the [`ModelClient`] port and its HTTP adapter
//! ([`http::HttpModelClient`]) — and never on the inference service's crate. The in-process
//! adapter lives in the composition root, which is the one place that knows both.
//!
//! [`wire`] is OpenAI's wire format and [`openai::OpenAiClient`] the client that speaks it; the
//! inference service serves the one and uses the other for OpenAI-compatible backends.

pub mod error;
pub mod http;
pub mod openai;
pub mod port;
pub mod types;
pub mod wire;

pub use error::ModelError;
pub use port::ModelClient;
pub use types::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, EmbedRequest, Embeddings, FinishReason,
    ModelInfo, ResponseFormat, Role, SamplingParams, Usage,
};
