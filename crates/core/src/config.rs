//! Typed configuration and its layering:
//! defaults < `confab.toml` < `.env` < `CONFAB_*` environment (`__` nests) < command-line flags.
//!
//! Unknown keys are an error naming the key. Any variable may instead be given as `NAME_FILE`
//! pointing at a file that holds the value (for secrets mounted by an orchestrator). Secrets are
//! held as [`Secret`], which never prints its value.
//!
//! Long (about 1,270 lines, 200 of them tests) because every service's settings live in one typed
//! tree with their defaults, documentation and checks: `confab.example.toml`, `confab config`
//! and `Config::validate` all follow from it. The next cut is one module per service's section.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use serde::{Deserialize, Serialize};

/// The prefix of every Confab environment variable.
pub const ENV_PREFIX: &str = "CONFAB_";

/// Variables that are read by the CLI itself and are not configuration keys.
const CLI_ONLY_VARS: &[&str] = &["CONFAB_CONFIG"];

/// Well-known variable names honoured besides the `CONFAB_` ones, with the key they set.
const ALIASES: &[(&str, &str)] = &[("DATABASE_URL", "database.url")];

/// A secret string: redacted in `Debug`, `Display` and serialization.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// `url` with the credentials in its authority (`user:password@`) replaced by `[redacted]`,
/// for logs, `Debug` and `confab config`: NATS and provider URLs may carry them.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://[redacted]@{host}{tail}"),
        None => url.to_owned(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(
    url: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&redact_url(url)),
        None => s.serialize_none(),
    }
}

/// A URL's shape, checked with `http`'s parser (the config crate has no URL library).
fn check_http_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    if uri.host().is_none() {
        return Err("no host".into());
    }
    Ok(())
}

/// The whole configuration of a Confab process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and other local state.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub inference: InferenceConfig,
    pub chat: ChatConfig,
    pub services: ServicesConfig,
    pub bus: BusConfig,
    pub admin: AdminConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            log: LogConfig::default(),
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            inference: InferenceConfig::default(),
            chat: ChatConfig::default(),
            services: ServicesConfig::default(),
            bus: BusConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

/// Events and background jobs.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// A NATS server with JetStream (split mode): events, durable events and jobs go through
    /// it so every replica sees them. Unset: in-process events, jobs and the outbox in the
    /// database. Credentials in it (`nats://user:password@host`) are redacted when shown.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_redacted_url"
    )]
    pub nats_url: Option<String>,
    /// Names this deployment's JetStream streams, buckets and subjects (`<ns>.jobs.*`,
    /// `<NS>_JOBS`, …), so deployments can share one NATS server. Letters, digits, `_`, `-`.
    pub nats_namespace: String,
    /// How long a worker holds a job without a heartbeat; a crashed worker's jobs are
    /// retaken after this.
    pub job_lease_secs: u64,
    /// How often idle workers look for due jobs, in milliseconds.
    pub job_poll_ms: u64,
    /// Background jobs of one kind run at the same time per process.
    pub job_concurrency: u32,
    /// Finished jobs are deleted this many days after they ended.
    pub job_retention_days: u32,
    /// Durable events every consumer has handled are deleted after this many days.
    pub event_retention_days: u32,
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("nats_url", &self.nats_url.as_deref().map(redact_url))
            .field("nats_namespace", &self.nats_namespace)
            .field("job_lease_secs", &self.job_lease_secs)
            .field("job_poll_ms", &self.job_poll_ms)
            .field("job_concurrency", &self.job_concurrency)
            .field("job_retention_days", &self.job_retention_days)
            .field("event_retention_days", &self.event_retention_days)
            .finish()
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            nats_url: None,
            nats_namespace: "confab".to_owned(),
            job_lease_secs: 30,
            job_poll_ms: 500,
            job_concurrency: 4,
            job_retention_days: 30,
            event_retention_days: 7,
        }
    }
}

/// The admin service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Audit entries older than this many days are moved into JSONL files under
    /// `<data_dir>/audit-archive` (hashes intact, then deleted from the database); 0 keeps
    /// them in the database forever.
    pub audit_retention_days: u32,
}

/// Calls between Confab's services (split mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// The secret shared by every service of one deployment (at least 32 bytes): a service
    /// calling another on a user's behalf signs a short-lived token with it. Set, this
    /// process also accepts such tokens.
    pub token: Option<Secret>,
}

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
    /// The largest conversation import accepted, in bytes.
    pub import_limit_bytes: u64,
    /// Imports read at once by this process (each holds its file and what was read from it in
    /// memory); one more is refused with 503 and `Retry-After`.
    pub import_concurrency: u32,
    /// Real-time connections (`/api/v1/ws`) one user may hold open in this process; one more
    /// is refused with 429.
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
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            default_context_tokens: 8192,
            answer_reserve_tokens: 512,
            checkpoint_ms: 500,
            auto_titles: true,
            inference_url: None,
            import_limit_bytes: 32 * 1024 * 1024,
            import_concurrency: 2,
            sockets_per_user: 16,
            default_temperature: 0.7,
            default_top_p: 1.0,
            title_temperature: 0.2,
            title_max_tokens: 24,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info` or `confab_auth=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Json,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`; unset means `<data_dir>/confab.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations at start (all-in-one); otherwise only verify them.
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 8,
            acquire_timeout_secs: 5,
            auto_migrate: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub body_limit_bytes: usize,
    /// Longest a request may take before 408.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Origins allowed by CORS; empty means same origin only.
    pub cors_origins: Vec<String>,
    /// The URL users reach Confab at; `https://` makes cookies `Secure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` (only behind a proxy you run).
    pub trust_proxy_headers: bool,
    /// The addresses or ranges (`10.0.0.0/8`) of the reverse proxies in front of Confab. With
    /// `trust_proxy_headers`, the client is the rightmost `X-Forwarded-For` entry that is not
    /// one of these, and a peer not listed here is itself the client. Empty: exactly one
    /// proxy, the connected peer, is trusted (the client is the last entry).
    pub trusted_proxies: Vec<String>,
    /// A bearer token (at least 16 bytes) that `/metrics` requires; unset, the metrics are
    /// public (keep them off the internet at the proxy then). A secret: give it as
    /// `CONFAB_SERVER__METRICS_TOKEN_FILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 60,
            shutdown_timeout_secs: 10,
            cors_origins: Vec::new(),
            public_url: None,
            trust_proxy_headers: false,
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone may register and use the account at once.
    Open,
    /// Anyone may register; the account waits for an admin's approval.
    Approval,
    /// Only admins create accounts (`confab users create`).
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub registration: RegistrationPolicy,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its use, while it is
    /// still the session's last used token, gets new tokens instead of ending the session
    /// (two tabs refreshing at once). Later reuse still revokes the session. 0: no grace.
    pub refresh_reuse_grace_secs: u64,
    /// Failed sign-ins for one account from one address (IPv6: one /64) before that address
    /// must wait to try that account again. Other addresses are not affected, so nobody can
    /// lock a user out; unknown emails are counted the same way.
    pub lockout_threshold: u32,
    /// The longest such wait, in seconds.
    pub lockout_duration_secs: u64,
    /// The first wait, in seconds; every further failure doubles it (up to
    /// `lockout_duration_secs`).
    pub login_delay_secs: u64,
    /// Failed sign-ins per hour for one account from all addresses together; beyond it,
    /// addresses that already failed for the account wait until the hour is over, while an
    /// address without failures may still sign in. 0: no such limit.
    pub account_failures_per_hour: u32,
    /// Sustained requests per minute one IP may make to the auth endpoints.
    pub ip_rate_limit_per_minute: u32,
    /// Requests one IP may make in a burst before the per-minute rate applies.
    pub ip_rate_limit_burst: u32,
    /// A new signing key is made when the current one is older than this (checked at start
    /// and every minute while running); retired keys verify until their tokens expire.
    pub signing_key_rotation_days: u32,
    /// The secret (at least 32 bytes) that encrypts the private signing keys stored in the
    /// database; give it as `CONFAB_AUTH__KEY_ENCRYPTION_KEY_FILE`. Keys stored in the clear
    /// are encrypted at the next start. Unset: they stay in the clear (start-up warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encryption_key: Option<Secret>,
    /// The `iss` claim of access tokens.
    pub issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: RegistrationPolicy::Open,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 20,
            lockout_threshold: 5,
            lockout_duration_secs: 15 * 60,
            login_delay_secs: 30,
            account_failures_per_hour: 100,
            ip_rate_limit_per_minute: 60,
            ip_rate_limit_burst: 20,
            signing_key_rotation_days: 90,
            key_encryption_key: None,
            issuer: "confab".into(),
        }
    }
}

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

/// Values given as command-line flags, the highest layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Where configuration comes from. The binary fills it from the process; tests build it.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A TOML file; missing is fine unless `config_file_required`.
    pub config_file: Option<PathBuf>,
    pub config_file_required: bool,
    /// A `.env` file; missing is fine.
    pub dotenv_file: Option<PathBuf>,
    /// The environment, as `(name, value)` pairs.
    pub env: Vec<(String, String)>,
    pub overrides: Overrides,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// Builds the configuration from its layers.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &sources.config_file {
            if path.exists() {
                fig = fig.merge(Toml::file_exact(path));
            } else if sources.config_file_required {
                return Err(ConfigError::Read {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
        }
        if let Some(path) = sources.dotenv_file.as_ref().filter(|p| p.exists()) {
            let pairs = read_dotenv(path)?;
            fig = merge_env(fig, &pairs)?;
        }
        fig = merge_env(fig, &sources.env)?;
        fig = fig.merge(Serialized::globals(&sources.overrides));
        let config: Config = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks rules that types alone do not express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.database.max_connections == 0 {
            return bad("database.max_connections must be at least 1");
        }
        if let Some(token) = &self.services.token
            && let Err(e) = crate::auth::ServiceTokens::new(token.expose().as_bytes())
        {
            return Err(ConfigError::Invalid(format!("services.token: {e}")));
        }
        if let Some(url) = &self.chat.inference_url {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || check_http_url(url).is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "chat.inference_url `{url}` is not an http:// or https:// URL"
                )));
            }
            if self.services.token.is_none() {
                return bad(
                    "chat.inference_url needs services.token: the secret the chat and inference \
                     services share",
                );
            }
        }
        if self.server.body_limit_bytes < 1024 {
            return bad("server.body_limit_bytes must be at least 1024");
        }
        if self.bus.job_lease_secs < 2 || self.bus.job_poll_ms < 10 || self.bus.job_concurrency == 0
        {
            return bad(
                "bus.job_lease_secs must be at least 2, bus.job_poll_ms at least 10 and \
                 bus.job_concurrency at least 1",
            );
        }
        let namespace = &self.bus.nats_namespace;
        if namespace.is_empty()
            || namespace.len() > 32
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::Invalid(format!(
                "bus.nats_namespace `{namespace}`: use 1 to 32 letters, digits, `_` or `-`"
            )));
        }
        if let Some(url) = &self.bus.nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            return Err(ConfigError::Invalid(format!(
                "bus.nats_url `{url}` is not a nats:// or tls:// URL"
            )));
        }
        if self.auth.lockout_threshold == 0 {
            return bad("auth.lockout_threshold must be at least 1");
        }
        if self.auth.login_delay_secs == 0
            || self.auth.login_delay_secs > self.auth.lockout_duration_secs
        {
            return bad(
                "auth.login_delay_secs (the first wait after failed sign-ins) must be at least 1 \
                 and not more than auth.lockout_duration_secs (the longest wait)",
            );
        }
        if self.auth.access_token_ttl_secs < 30 {
            return bad("auth.access_token_ttl_secs must be at least 30");
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return bad("auth.refresh_token_ttl_secs must not be shorter than the access token's");
        }
        if self.auth.signing_key_rotation_days == 0 {
            return bad("auth.signing_key_rotation_days must be at least 1");
        }
        if let Some(key) = &self.auth.key_encryption_key
            && key.expose().len() < 32
        {
            return bad(
                "auth.key_encryption_key must be at least 32 bytes (e.g. `openssl rand -hex 32`)",
            );
        }
        if self.auth.refresh_reuse_grace_secs > 300 {
            return bad(
                "auth.refresh_reuse_grace_secs must be at most 300: a longer window lets a stolen \
                 refresh token be used unnoticed",
            );
        }
        if self.auth.ip_rate_limit_per_minute == 0 || self.auth.ip_rate_limit_burst == 0 {
            return bad(
                "auth.ip_rate_limit_per_minute and auth.ip_rate_limit_burst must be at least 1",
            );
        }
        if self.chat.import_limit_bytes < 1024
            || self.chat.import_concurrency == 0
            || self.chat.sockets_per_user == 0
        {
            return bad(
                "chat.import_limit_bytes must be at least 1024, chat.import_concurrency and \
                 chat.sockets_per_user at least 1",
            );
        }
        if self.chat.checkpoint_ms == 0 || self.chat.default_context_tokens < 256 {
            return bad(
                "chat.checkpoint_ms must be at least 1 and chat.default_context_tokens at least 256",
            );
        }
        let sampling_ok = [self.chat.default_temperature, self.chat.title_temperature]
            .iter()
            .all(|t| (0.0..=2.0).contains(t))
            && self.chat.default_top_p > 0.0
            && self.chat.default_top_p <= 1.0
            && self.chat.title_max_tokens > 0;
        if !sampling_ok {
            return bad(
                "chat.default_temperature and chat.title_temperature must be between 0 and 2, \
                 chat.default_top_p above 0 and at most 1, chat.title_max_tokens at least 1",
            );
        }
        let engine = &self.inference.engine;
        if engine.context_size < 64 || engine.parallel == 0 || engine.batch_size == 0 {
            return bad(
                "inference.engine needs context_size >= 64, parallel >= 1 and batch_size >= 1",
            );
        }
        for provider in &self.inference.providers {
            if provider.name.trim().is_empty() || provider.models.is_empty() {
                return bad("every inference.providers entry needs a name and at least one model");
            }
            if provider.kind != ProviderKind::Scripted && provider.base_url.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "inference.providers `{}`: this kind needs base_url",
                    provider.name
                )));
            }
            if provider.name == "embedded" || provider.name.contains(':') {
                return Err(ConfigError::Invalid(format!(
                    "inference.providers `{}`: the name may not be `embedded` or contain `:`",
                    provider.name
                )));
            }
        }
        for alias in &self.inference.aliases {
            let targets = alias.targets.iter().flatten();
            if alias.targets.iter().all(Vec::is_empty) {
                return Err(ConfigError::Invalid(format!(
                    "inference.aliases `{}` has no targets",
                    alias.name
                )));
            }
            for target in targets {
                let Some((provider, model)) = target.split_once(':') else {
                    return Err(ConfigError::Invalid(format!(
                        "inference.aliases `{}`: target `{target}` must be provider:model",
                        alias.name
                    )));
                };
                let known = provider == "embedded"
                    || self.inference.providers.iter().any(|p| p.name == provider);
                if !known || model.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "inference.aliases `{}`: target `{target}` names no configured provider",
                        alias.name
                    )));
                }
            }
        }
        for entry in &self.inference.pull_allow_private {
            if crate::ssrf::AllowRule::parse(entry).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "inference.pull_allow_private: `{entry}` is neither a CIDR (10.0.0.0/8), \
                     an IP address nor a host name"
                )));
            }
        }
        if self.inference.pull_max_bytes == 0
            || self.inference.pull_connect_timeout_secs == 0
            || self.inference.pull_read_timeout_secs == 0
        {
            return bad(
                "inference.pull_max_bytes, inference.pull_connect_timeout_secs and \
                 inference.pull_read_timeout_secs must be at least 1",
            );
        }
        if !(0.0..=1.0).contains(&self.inference.router.breaker_error_rate) {
            return bad("inference.router.breaker_error_rate must be between 0 and 1");
        }
        if let Some(token) = &self.server.metrics_token
            && token.expose().trim().len() < 16
        {
            return bad("server.metrics_token must be at least 16 bytes");
        }
        for proxy in &self.server.trusted_proxies {
            if let Err(e) = proxy.parse::<crate::net::IpRange>() {
                return Err(ConfigError::Invalid(format!("server.trusted_proxies: {e}")));
            }
        }
        for origin in &self.server.cors_origins {
            if origin.parse::<http::HeaderValue>().is_err() || !origin.contains("://") {
                return Err(ConfigError::Invalid(format!(
                    "server.cors_origins: `{origin}` is not an origin like https://app.example.com"
                )));
            }
        }
        Ok(())
    }

    /// The database URL in effect: the configured one or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("confab.db").display()),
        }
    }

    /// Where local GGUF models live.
    pub fn models_dir(&self) -> PathBuf {
        self.inference
            .models_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("key `{key}`: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
    iter.map(|item| item.map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display()))))
        .collect()
}

/// Maps one environment variable to a configuration key, or `None` when it is not ours.
fn env_key(name: &str) -> Option<String> {
    if CLI_ONLY_VARS.contains(&name) {
        return None;
    }
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some((*key).to_owned());
    }
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace("__", "."))
}

fn merge_env(mut fig: Figment, pairs: &[(String, String)]) -> Result<Figment, ConfigError> {
    // Aliases first so that the `CONFAB_` spelling of the same key wins.
    let mut entries: Vec<(bool, String, String)> = Vec::new();
    for (name, value) in pairs {
        let (name, value) = match name.strip_suffix("_FILE") {
            Some(base) if env_key(base).is_some() => {
                let content =
                    std::fs::read_to_string(value).map_err(|source| ConfigError::Read {
                        path: PathBuf::from(value),
                        source,
                    })?;
                (
                    base.to_owned(),
                    content.trim_end_matches(['\n', '\r']).to_owned(),
                )
            }
            _ => (name.clone(), value.clone()),
        };
        if let Some(key) = env_key(&name) {
            let is_alias = !name.starts_with(ENV_PREFIX);
            entries.push((is_alias, key, value));
        }
    }
    entries.sort_by_key(|(is_alias, _, _)| !*is_alias);
    for (_, key, value) in entries {
        let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
        fig = fig.merge(Serialized::global(&key, parsed));
    }
    Ok(fig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn defaults_load() {
        let config = Config::load(&Sources::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("confab.toml");
        std::fs::write(
            &toml_path,
            "listen = \"127.0.0.1:1111\"\n[auth]\nlockout_threshold = 3\nissuer = \"toml\"\n",
        )
        .unwrap();
        let dotenv_path = dir.path().join(".env");
        std::fs::write(
            &dotenv_path,
            "CONFAB_AUTH__ISSUER=dotenv\nCONFAB_LISTEN=127.0.0.1:2222\n",
        )
        .unwrap();
        let mut sources = env(&[("CONFAB_LISTEN", "127.0.0.1:3333"), ("UNRELATED", "x")]);
        sources.config_file = Some(toml_path);
        sources.dotenv_file = Some(dotenv_path);
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.auth.lockout_threshold, 3);
        assert_eq!(config.auth.issuer, "dotenv");
        assert_eq!(config.listen.to_string(), "127.0.0.1:3333");

        sources.overrides.listen = Some("127.0.0.1:4444".parse().unwrap());
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:4444");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::load(&env(&[("CONFAB_AUTH__LOCKOUT_TRESHOLD", "3")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lockout_treshold"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.toml");
        std::fs::write(&path, "[server]\nbody_limit = 5\n").unwrap();
        let sources = Sources {
            config_file: Some(path),
            ..Sources::default()
        };
        let text = Config::load(&sources).unwrap_err().to_string();
        assert!(text.contains("body_limit"), "{text}");
    }

    #[test]
    fn secrets_from_files_and_aliases_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db_url");
        std::fs::write(&path, "postgres://u:hunter2@localhost/db\n").unwrap();
        let config = Config::load(&env(&[("DATABASE_URL_FILE", path.to_str().unwrap())])).unwrap();
        assert_eq!(config.database_url(), "postgres://u:hunter2@localhost/db");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!config.to_redacted_toml().unwrap().contains("hunter2"));

        // The CONFAB_ spelling wins over the alias.
        let config = Config::load(&env(&[
            ("CONFAB_DATABASE__URL", "sqlite://b.db"),
            ("DATABASE_URL", "sqlite://a.db"),
        ]))
        .unwrap();
        assert_eq!(config.database_url(), "sqlite://b.db");
    }

    #[test]
    fn sign_in_waits_must_grow_from_a_first_wait() {
        for (delay, longest) in [("0", "900"), ("901", "900")] {
            let text = Config::load(&env(&[
                ("CONFAB_AUTH__LOGIN_DELAY_SECS", delay),
                ("CONFAB_AUTH__LOCKOUT_DURATION_SECS", longest),
            ]))
            .unwrap_err()
            .to_string();
            assert!(text.contains("auth.login_delay_secs"), "{text}");
        }
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("nats://user:hunter2@nats.internal:4222"),
            "nats://[redacted]@nats.internal:4222"
        );
        assert_eq!(
            redact_url("https://key:hunter2@llm.example/v1?x=@y"),
            "https://[redacted]@llm.example/v1?x=@y"
        );
        assert_eq!(
            redact_url("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(redact_url("not a url"), "not a url");

        let config = Config::load(&env(&[
            ("CONFAB_BUS__NATS_URL", "nats://user:hunter2@nats.internal:4222"),
            ("CONFAB_INFERENCE__PROVIDERS", r#"[{name = "up", kind = "openai", base_url = "https://u:hunter3@llm.example/v1", models = ["m"]}]"#),
        ]))
        .unwrap();
        // The values in force keep their credentials; every way of showing them does not.
        assert_eq!(
            config.bus.nats_url.as_deref(),
            Some("nats://user:hunter2@nats.internal:4222")
        );
        let shown = [format!("{config:?}"), config.to_redacted_toml().unwrap()];
        for text in shown {
            assert!(
                !text.contains("hunter2") && !text.contains("hunter3"),
                "{text}"
            );
            assert!(text.contains("[redacted]@nats.internal:4222"), "{text}");
            assert!(text.contains("[redacted]@llm.example/v1"), "{text}");
        }
    }

    #[test]
    fn bad_values_fail_with_the_key() {
        let text = Config::load(&env(&[("CONFAB_LISTEN", "not-an-address")]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("listen"), "{text}");
        let text = Config::load(&env(&[("CONFAB_AUTH__REGISTRATION", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("registration"), "{text}");
    }

    #[test]
    fn pull_allow_lists_take_networks_and_host_names() {
        let mut config = Config::default();
        config.inference.pull_allow_private =
            vec!["10.0.0.0/8".into(), "::1".into(), "models.lan".into()];
        config.validate().unwrap();
        config
            .inference
            .pull_allow_private
            .push("http://models.lan".into());
        let text = config.validate().unwrap_err().to_string();
        assert!(
            text.contains("inference.pull_allow_private") && text.contains("http://models.lan"),
            "{text}"
        );
    }

    #[test]
    fn chat_sampling_defaults_are_checked() {
        let config = Config::load(&env(&[("CONFAB_CHAT__DEFAULT_TEMPERATURE", "0.3")])).unwrap();
        assert!((config.chat.default_temperature - 0.3).abs() < 1e-9);
        for (key, value) in [
            ("CONFAB_CHAT__DEFAULT_TEMPERATURE", "2.5"),
            ("CONFAB_CHAT__TITLE_TEMPERATURE", "-1"),
            ("CONFAB_CHAT__DEFAULT_TOP_P", "0"),
            ("CONFAB_CHAT__TITLE_MAX_TOKENS", "0"),
        ] {
            let text = Config::load(&env(&[(key, value)])).unwrap_err().to_string();
            assert!(text.contains("chat.default_temperature"), "{key}: {text}");
        }
    }

    /// The documented example config must parse, name every key, and show the defaults.
    #[test]
    fn example_config_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../confab.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example: toml::Table = toml::from_str(&text).unwrap();
        let defaults: toml::Table =
            toml::from_str(&Config::default().to_redacted_toml().unwrap()).unwrap();
        assert_eq!(
            example, defaults,
            "confab.example.toml differs from Config::default()"
        );
        let sources = Sources {
            config_file: Some(path),
            ..Sources::default()
        };
        assert_eq!(Config::load(&sources).unwrap(), Config::default());
    }
}
