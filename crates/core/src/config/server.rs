//! The process-wide sections: logging, the database, the HTTP server, calls between services
//! (`[services]`) and the admin service's one setting.

use serde::{Deserialize, Serialize};

use super::Secret;
use super::tls::TlsConfig;

/// The admin service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Audit entries older than this many days are moved into JSONL files under
    /// `<data_dir>/audit-archive` (hashes intact, then deleted from the database); 0 keeps
    /// them in the database forever.
    pub audit_retention_days: u32,
    /// Where `confab backup` and `confab restore` find `pg_dump` and `pg_restore` for a
    /// PostgreSQL database; unset: on the PATH, else the newest `/usr/lib/postgresql/*/bin`.
    /// They must be at least the server's major version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_pg_bin_dir: Option<std::path::PathBuf>,
}

/// Calls between Confab's services (split mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// The secret shared by every service of one deployment (at least 32 bytes): a service
    /// calling another on a user's behalf signs a short-lived token with it. Set, this
    /// process also accepts such tokens.
    pub token: Option<Secret>,
    /// The services that must answer before a deleted user's account goes (each deletes the
    /// user's data in its own tables and answers over durable events); unset: every
    /// data-holding service the binary has (`chat`, `seo`). List only those the deployment
    /// runs, or deletions wait for the missing ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_participants: Option<Vec<String>>,
    /// Split mode: the auth service's base URL (e.g. `http://auth:8080`), for processes that
    /// do not run it: its JWKS (tokens are verified here), and its internal routes (sessions,
    /// API keys and accounts, cached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// Split mode: the admin service's base URL, for processes that read the runtime settings
    /// without running it (auth and inference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// A PEM file of CA certificates trusted (besides the system's) for calls to the other
    /// services over `https://`: the auth service's JWKS and internal routes, the admin
    /// service's settings, chat and SEO to inference, the gateway to its `https://` upstreams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Refuse to start with any `http://` URL for another service (`services.auth_url`,
    /// `services.admin_url`, `chat.inference_url`, the gateway's upstreams, where `dns://`
    /// counts as plain), and make the clients between services refuse plain HTTP.
    pub require_tls: bool,
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
    /// A streaming replica of `url` (PostgreSQL only) for reads that tolerate lag: the
    /// conversation list and search, the admin usage and audit listings. Everything else,
    /// and every read that must see its own writes, stays on `url`. While the replica is
    /// down or not ready, those reads go to `url` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_url: Option<Secret>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations at start (all-in-one); otherwise only verify them.
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            read_url: None,
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
    /// HTTPS served by this process (`[server.tls]`); off unless `cert` and `key` are set.
    pub tls: TlsConfig,
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
            tls: TlsConfig::default(),
        }
    }
}
