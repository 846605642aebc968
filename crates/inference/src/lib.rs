//! The inference service: providers (the embedded llama.cpp engine, OpenAI-compatible
//! servers, a deterministic scripted stand-in), the local model store, and the
//! OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`). Its own tables (usage
//! records, model pulls) are reached through the [`ports`]; each port has one SQL adapter
//! next to the rules it serves (`usage/store.rs`, `pulls/store.rs`).

pub mod actions;
pub mod anthropic;
pub mod api;
pub mod catalog;
#[cfg(feature = "bert")]
pub mod embed;
#[cfg(feature = "llama")]
pub mod engine;
pub mod error;
pub mod gguf;
pub mod limits;
pub mod local;
pub mod metrics;
pub mod models;
pub mod ollama;
pub mod ports;
pub mod provider;
pub mod pulls;
pub mod router;
pub mod scripted;
pub mod service;
pub mod ssrf;
pub mod tally;
pub mod template;
pub mod text;
pub mod types;
pub mod usage;

/// The OpenAI-compatible HTTP client (used for OpenAI-compatible backends).
pub use confab_model_client::openai;

pub use api::{InferenceState, router};
pub use error::InferenceError;
pub use service::InferenceService;

use confab_store::ServiceMigrations;

/// The inference service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "inference",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}
