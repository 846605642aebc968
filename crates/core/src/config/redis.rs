//! The `[redis]` section: the shared cache and limiter state of a split deployment.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{redact_url, serialize_redacted_url};

/// Redis (or a server speaking its protocol, such as Valkey): set in split mode so that every
/// replica shares the response caches, rate-limit and quota counters, the auth lookup caches'
/// invalidations and WebSocket presence. Unset: all of it lives in this process.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket` (TLS,
    /// `rediss://`, is not built in: put a TLS proxy beside the process). `REDIS_URL` sets it too. Credentials in it are
    /// redacted when shown.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_redacted_url"
    )]
    pub url: Option<String>,
    /// Prefixes every key this deployment writes (`<prefix>:cache:…`), so deployments can
    /// share one server. Letters, digits, `_`, `-`.
    pub key_prefix: String,
    /// How long one command may take before it counts as a failure (the caller then
    /// degrades: a cache miss, or the per-process limiter), in milliseconds.
    pub timeout_ms: u64,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "confab".to_owned(),
            timeout_ms: 250,
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            if url.starts_with("rediss://") {
                return Err(format!(
                    "redis.url (REDIS_URL) `{}`: TLS to Redis (rediss://) is not built in; \
                     use redis:// to a TLS proxy beside the process",
                    redact_url(url)
                ));
            }
            let known = ["redis://", "redis+unix://", "unix://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(format!(
                    "redis.url (REDIS_URL) `{}` must start with redis:// or redis+unix://",
                    redact_url(url)
                ));
            }
        }
        if self.key_prefix.is_empty()
            || !self
                .key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "redis.key_prefix `{}` must be letters, digits, `_` or `-`",
                self.key_prefix
            ));
        }
        if self.timeout_ms == 0 {
            return Err("redis.timeout_ms must be at least 1".into());
        }
        Ok(())
    }
}
