//! Typed configuration and its layering:
//! defaults < `confab.toml` < `.env` < `CONFAB_*` environment (`__` nests) < command-line flags.
//!
//! Unknown keys are an error naming the key. Any variable may instead be given as `NAME_FILE`
//! pointing at a file that holds the value (for secrets mounted by an orchestrator). Secrets are
//! held as [`Secret`], which never prints its value.
//!
//! Each service's section is a module of its own (`auth`, `bus`, `chat`, `gateway`, `inference`, and
//! `server` for the process-wide ones); this module holds the whole tree, its loading and
//! `Config::validate`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use env::{merge_env, read_dotenv};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod auth;
mod bus;
mod chat;
mod env;
mod files;
mod gateway;
mod inference;
mod redis;
mod seo;
mod server;
mod storage;
mod telemetry;
#[cfg(test)]
mod tests;
mod tls;

pub use auth::{AuthConfig, RegistrationPolicy};
pub use bus::BusConfig;
pub use chat::ChatConfig;
pub use files::{FILE_KINDS, FilesConfig};
pub use gateway::{GatewayConfig, InstanceEntry, UpstreamsConfig};
pub use inference::{
    AliasConfig, Balance, CacheConfig, ConcurrencyConfig, EngineConfig, InferenceConfig,
    LimitsConfig, ProviderConfig, ProviderKind, RouterConfig,
};
pub use redis::RedisConfig;
pub use seo::{ScoreWeights, SeoConfig, YoutubeConfig};
pub use server::{AdminConfig, DatabaseConfig, LogConfig, LogFormat, ServerConfig, ServicesConfig};
pub use storage::{S3Config, StorageBackend, StorageConfig, check_bucket, check_prefix};
pub use telemetry::TelemetryConfig;
pub use tls::{TlsConfig, TlsVersion};

/// The prefix of every Confab environment variable.
pub const ENV_PREFIX: &str = "CONFAB_";

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
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub inference: InferenceConfig,
    pub chat: ChatConfig,
    pub seo: SeoConfig,
    pub files: FilesConfig,
    pub services: ServicesConfig,
    pub bus: BusConfig,
    pub redis: RedisConfig,
    pub gateway: GatewayConfig,
    pub admin: AdminConfig,
    pub storage: StorageConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            inference: InferenceConfig::default(),
            chat: ChatConfig::default(),
            seo: SeoConfig::default(),
            files: FilesConfig::default(),
            services: ServicesConfig::default(),
            bus: BusConfig::default(),
            redis: RedisConfig::default(),
            gateway: GatewayConfig::default(),
            admin: AdminConfig::default(),
            storage: StorageConfig::default(),
        }
    }
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

    /// `services.require_tls`: no URL of another service may be plain `http://`, nor a
    /// gateway upstream other than `https://host:port` (`dns://` entries are dialled in
    /// plain HTTP).
    fn check_services_tls(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("services.auth_url", &self.services.auth_url),
            ("services.admin_url", &self.services.admin_url),
            ("chat.inference_url", &self.chat.inference_url),
            ("chat.files_url", &self.chat.files_url),
        ] {
            if let Some(url) = url
                && !url.starts_with("https://")
            {
                return Err(ConfigError::Invalid(format!(
                    "services.require_tls: {key} `{url}` is not an https:// URL"
                )));
            }
        }
        for (service, entries) in self.gateway.upstreams.all() {
            for entry in entries {
                if !entry.starts_with("https://") {
                    return Err(ConfigError::Invalid(format!(
                        "services.require_tls: gateway.upstreams.{service} `{entry}` is not an \
                         https://host:port entry"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks rules that types alone do not express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.database.max_connections == 0 {
            return bad("database.max_connections must be at least 1");
        }
        if let Some(read_url) = &self.database.read_url {
            let read_url = read_url.expose();
            if !(read_url.starts_with("postgres://") || read_url.starts_with("postgresql://")) {
                return bad(
                    "database.read_url must be a postgres:// URL (a streaming replica of \
                     database.url)",
                );
            }
            if !self.database_url().starts_with("postgres") {
                return bad(
                    "database.read_url needs database.url to be PostgreSQL: a replica follows \
                     a PostgreSQL primary",
                );
            }
        }
        if let Some(token) = &self.services.token
            && let Err(e) = crate::auth::ServiceTokens::new(token.expose().as_bytes())
        {
            return Err(ConfigError::Invalid(format!("services.token: {e}")));
        }
        for (key, url) in [
            ("services.auth_url", &self.services.auth_url),
            ("services.admin_url", &self.services.admin_url),
        ] {
            if let Some(url) = url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || check_http_url(url).is_err())
            {
                return Err(ConfigError::Invalid(format!(
                    "{key} `{url}` is not an http:// or https:// URL"
                )));
            }
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
        if let Some(url) = &self.chat.files_url {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || check_http_url(url).is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "chat.files_url `{url}` is not an http:// or https:// URL"
                )));
            }
            if self.services.token.is_none() {
                return bad(
                    "chat.files_url needs services.token: the secret the chat and files services \
                     share",
                );
            }
        }
        if let Some(problem) = self.telemetry.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        self.redis.validate().map_err(ConfigError::Invalid)?;
        self.storage.validate().map_err(ConfigError::Invalid)?;
        self.files.validate().map_err(ConfigError::Invalid)?;
        self.gateway.validate().map_err(ConfigError::Invalid)?;
        self.server.tls.validate().map_err(ConfigError::Invalid)?;
        if self.services.require_tls {
            self.check_services_tls()?;
        }
        if let Some(problem) = self.seo.problem() {
            return Err(ConfigError::Invalid(problem));
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
