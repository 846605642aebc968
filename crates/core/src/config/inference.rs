//! The `[inference]` section: local models, the engine, remote providers, the router with its
//! aliases, the response cache and per-user limits.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Secret, redact_url, serialize_redacted_url};

/// Models and where they run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Directory of local GGUF models; unset means `<data_dir>/models`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    /// The model used when a request names none (and by `confab chat`); unset means the
    /// first local model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Networks (CIDRs, addresses) and host names that model pulls may reach although they
    /// are loopback, private, link-local, unique-local, CGNAT, multicast, reserved or cloud
    /// metadata addresses (refused by default, judged on the resolved address and on every
    /// redirect).
    pub pull_allow_private: Vec<String>,
    /// Pull models over plain `http://` too (only `https://` by default).
    pub pull_allow_http: bool,
    /// The largest model file a pull accepts, in bytes.
    pub pull_max_bytes: u64,
    /// Seconds a pull waits to connect.
    pub pull_connect_timeout_secs: u64,
    /// Seconds a pull waits for the next bytes of a download before giving up.
    pub pull_read_timeout_secs: u64,
    /// A directory whose regular files admins may import through the API (`POST
    /// /api/v1/models/pulls` with a path inside it); unset, the API refuses local paths
    /// (`confab models pull <path>` on the server still imports any file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_dir: Option<PathBuf>,
    pub engine: EngineConfig,
    /// Backends besides the embedded engine.
    pub providers: Vec<ProviderConfig>,
    /// Model names that route to other models: tiers of equal backends, tried in order.
    pub aliases: Vec<AliasConfig>,
    pub router: RouterConfig,
    pub cache: CacheConfig,
    pub limits: LimitsConfig,
    pub concurrency: ConcurrencyConfig,
}

/// How many generations and embeddings run at once, per caller and per engine, so that one
/// user cannot occupy the models for everyone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Requests one user may have running at once (all their sessions and keys together);
    /// more are refused with 429 `concurrency_exceeded`. 0 = unlimited.
    pub user_requests: u32,
    /// Requests one API key may have running at once; 0 = only the user's cap applies.
    pub key_requests: u32,
    /// Requests waiting for a worker of one local model; more are refused with 503
    /// `model_busy` and `Retry-After`. 0 = unlimited.
    pub engine_queue: u32,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            user_requests: 8,
            key_requests: 0,
            engine_queue: 64,
        }
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            models_dir: None,
            default_model: None,
            pull_allow_private: Vec::new(),
            pull_allow_http: false,
            pull_max_bytes: 64 << 30,
            pull_connect_timeout_secs: 10,
            pull_read_timeout_secs: 60,
            import_dir: None,
            engine: EngineConfig::default(),
            providers: Vec::new(),
            aliases: Vec::new(),
            router: RouterConfig::default(),
            cache: CacheConfig::default(),
            limits: LimitsConfig::default(),
            concurrency: ConcurrencyConfig::default(),
        }
    }
}

/// How requests are spread over equal backends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastInFlight,
}

/// A model name that routes to other models.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AliasConfig {
    /// The name clients ask for.
    pub name: String,
    /// Tiers of `provider:model` targets (`embedded:<local model>` for the engine): requests
    /// are balanced within the first tier with a healthy backend; later tiers are fallbacks.
    pub targets: Vec<Vec<String>>,
    #[serde(default)]
    pub balance: Balance,
}

/// Retries, circuit breakers and timeouts of the model router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Extra attempts on another (or the same) backend before the first token.
    pub retries: u32,
    /// Exponential backoff between attempts, with full jitter.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// An upstream `Retry-After` longer than this moves on instead of waiting.
    pub max_retry_after_secs: u64,
    /// Consecutive failures that open a backend's circuit.
    pub breaker_failures: u32,
    /// An error rate (0..1) over the window that opens it too, once `breaker_min_requests` ran.
    pub breaker_error_rate: f64,
    pub breaker_window_secs: u64,
    pub breaker_min_requests: u32,
    /// How long an open circuit refuses requests before one probe may pass.
    pub breaker_open_secs: u64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            retries: 2,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            max_retry_after_secs: 10,
            breaker_failures: 5,
            breaker_error_rate: 0.5,
            breaker_window_secs: 30,
            breaker_min_requests: 20,
            breaker_open_secs: 30,
        }
    }
}

/// The exact-match response cache (non-streamed, deterministic requests only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl_secs: u64,
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_secs: 300,
            max_entries: 10_000,
        }
    }
}

/// Per-user and per-API-key limits on the inference API; 0 means unlimited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub user_requests_per_minute: u32,
    pub user_tokens_per_day: u64,
    pub key_requests_per_minute: u32,
    pub key_tokens_per_day: u64,
}

/// The embedded llama.cpp engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Serve the GGUF files in the models directory.
    pub enabled: bool,
    /// CPU threads per generation; 0 means one per core.
    pub threads: u32,
    /// Tokens of context per request (prompt and answer).
    pub context_size: u32,
    /// Requests generated at the same time per model; more wait in a queue.
    pub parallel: u32,
    /// Prompt tokens evaluated per step.
    pub batch_size: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threads: 0,
            context_size: 4096,
            parallel: 1,
            batch_size: 512,
        }
    }
}

/// What kind of backend a provider is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible server: OpenAI, vLLM, llama.cpp server, LM Studio, LiteLLM.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Ollama's native API.
    Ollama,
    /// A deterministic stand-in for tests and demos: answers with `reply`, word by word.
    Scripted,
}

/// One backend besides the embedded engine.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs and metrics.
    pub name: String,
    pub kind: ProviderKind,
    /// The API root, e.g. `https://api.openai.com/v1` (kind `openai`). Credentials in it
    /// (`https://user:password@host`) are redacted when shown.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_redacted_url"
    )]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// The model names this provider serves.
    pub models: Vec<String>,
    /// Seconds before a request to this provider gives up.
    #[serde(default = "default_provider_timeout")]
    pub timeout_secs: u64,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the first token of a streamed answer before trying elsewhere. An
    /// OpenAI-compatible provider's non-streamed answers are fetched whole, so `timeout_secs`
    /// bounds them instead.
    #[serde(default = "default_first_token_timeout")]
    pub first_token_timeout_secs: u64,
    /// The answer of a `scripted` provider; `{last}` is replaced by the last user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Milliseconds between the words of a `scripted` answer.
    #[serde(default)]
    pub delay_ms: u64,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_deref().map(redact_url))
            .field("api_key", &self.api_key)
            .field("models", &self.models)
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("first_token_timeout_secs", &self.first_token_timeout_secs)
            .field("reply", &self.reply)
            .field("delay_ms", &self.delay_ms)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider with default timeouts and no URL, key or reply.
    pub fn new(name: &str, kind: ProviderKind, models: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            base_url: None,
            api_key: None,
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            timeout_secs: default_provider_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            first_token_timeout_secs: default_first_token_timeout(),
            reply: None,
            delay_ms: 0,
        }
    }
}

fn default_provider_timeout() -> u64 {
    120
}

fn default_connect_timeout() -> u64 {
    10
}

fn default_first_token_timeout() -> u64 {
    60
}
