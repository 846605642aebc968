//! The `[chat]` section: the chat service's limits and defaults.

use serde::{Deserialize, Serialize};

/// The chat service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Context window assumed for models that do not report theirs (remote models), in tokens.
    pub default_context_tokens: u32,
    /// Tokens kept free for the answer when the history is fitted to the context window
    /// (a conversation's `max_tokens`, when set, is used instead).
    pub answer_reserve_tokens: u32,
    /// How often a streaming answer's text is saved, in milliseconds: a crash loses at most
    /// this much of an answer.
    pub checkpoint_ms: u64,
    /// Ask the conversation's model for a title after the first exchange.
    pub auto_titles: bool,
    /// The inference service's base URL when it runs elsewhere (split mode), e.g.
    /// `http://inference:8080`; unset, the chat service calls the one in this process.
    /// Needs `services.token`.
    pub inference_url: Option<String>,
    /// The files service's base URL when it runs elsewhere (split mode), e.g.
    /// `http://files:8080`, for files attached to messages (its internal routes, so never the
    /// gateway); unset, the files service in this process, or none: nothing can be attached.
    /// Needs `services.token`.
    pub files_url: Option<String>,
    /// The largest conversation import accepted, in bytes.
    pub import_limit_bytes: u64,
    /// Imports read at once by this process (each holds its file and what was read from it in
    /// memory); one more is refused with 503 and `Retry-After`.
    pub import_concurrency: u32,
    /// Real-time connections (`/api/v1/ws`) one user may hold open at once (across every
    /// replica when `redis.url` is set); one more is refused with 429.
    pub sockets_per_user: u32,
    /// The temperature of answers in conversations that set none (0 to 2).
    pub default_temperature: f64,
    /// The nucleus sampling (`top_p`) of answers in conversations that set none (above 0, at
    /// most 1).
    pub default_top_p: f64,
    /// The temperature of title suggestions (0 to 2; low, so titles are plain).
    pub title_temperature: f64,
    /// The longest title suggestion asked of a model, in tokens.
    pub title_max_tokens: u32,
    /// With several chat replicas (a NATS bus): an answer no replica has checkpointed for
    /// this many seconds was left by a replica that died, and the others mark it
    /// `interrupted`. Live answers are checkpointed every quarter of it.
    pub answer_lease_secs: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            default_context_tokens: 8192,
            answer_reserve_tokens: 512,
            checkpoint_ms: 500,
            auto_titles: true,
            inference_url: None,
            files_url: None,
            import_limit_bytes: 32 * 1024 * 1024,
            import_concurrency: 2,
            sockets_per_user: 16,
            default_temperature: 0.7,
            default_top_p: 1.0,
            title_temperature: 0.2,
            title_max_tokens: 24,
            answer_lease_secs: 10,
        }
    }
}
