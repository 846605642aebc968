//! The Redis adapters (feature `redis`, split mode): [`RedisConnection`], the handle they
//! share, and [`RedisCache`]; the limiters are in `limit`. Every key is prefixed
//! `<key_prefix>:`; every command is bounded by `timeout_ms`; the connection is made lazily
//! and remade by redis-rs's `ConnectionManager` after a failure, so a process starts while
//! Redis is down and recovers by itself when it returns.

mod limit;

pub use limit::{RedisAdmission, RedisCounters, RedisMembership, RedisRateLimiter};

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_core::config::RedisConfig;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError};

use crate::Cache;
use crate::limit::Unavailable;
use crate::metrics::RedisMetrics;
use crate::warn::{WARN_EVERY, WarnEvery};

/// How long commands fail at once after a connection failure or a timeout, before one is
/// sent again: a dead Redis then costs callers nothing instead of `timeout_ms` each.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Why a [`RedisConnection`] could not be made (configuration only: it never waits for
/// Redis).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("redis.url (REDIS_URL) is not set")]
    NoUrl,
    #[error("redis.url (REDIS_URL) is not usable: {0}")]
    Url(String),
}

/// One connection to Redis that every adapter of a process shares (cheap to clone: a
/// multiplexed connection that pipelines concurrent commands).
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    metrics: Arc<RedisMetrics>,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl RedisConnection {
    /// A connection to `config.url`, made on first use (call inside a Tokio runtime). Fails
    /// only on configuration: unset, unparsable, or TLS (`rediss://`, not built in).
    pub fn new(config: &RedisConfig, metrics: Arc<RedisMetrics>) -> Result<Self, RedisSetupError> {
        let url = config.url.as_deref().ok_or(RedisSetupError::NoUrl)?;
        let client = redis::Client::open(url).map_err(|e| RedisSetupError::Url(e.to_string()))?;
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // A few quick tries per reconnection; callers' own timeouts bound the wait, and
            // the next command after a failure starts another reconnection.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| RedisSetupError::Url(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                prefix: config.key_prefix.clone(),
                timeout,
                metrics,
                paused_until: Mutex::new(None),
            }),
        })
    }

    /// `<key_prefix>:<kind>:<key>`.
    pub(crate) fn key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{key}", self.inner.prefix)
    }

    pub(crate) fn metrics(&self) -> &RedisMetrics {
        &self.inner.metrics
    }

    /// Whether Redis answers a PING now (for readiness checks and tests).
    pub async fn ping(&self) -> Result<(), Unavailable> {
        self.call(async |conn| redis::cmd("PING").query_async::<()>(conn).await)
            .await
    }

    /// Runs one command (or script) on the shared connection within the timeout; marks
    /// Redis up or down, and fails at once while paused after a connection failure.
    pub(crate) async fn call<T>(
        &self,
        command: impl AsyncFnOnce(&mut ConnectionManager) -> Result<T, RedisError>,
    ) -> Result<T, Unavailable> {
        let inner = &self.inner;
        if let Some(until) = *inner.paused_until.lock()
            && Instant::now() < until
        {
            return Err(Unavailable(
                "redis failed a moment ago; not asked again yet".to_owned(),
            ));
        }
        let mut conn = inner.manager.clone();
        match tokio::time::timeout(inner.timeout, command(&mut conn)).await {
            Ok(Ok(answer)) => {
                inner.metrics.set_up(true);
                Ok(answer)
            }
            Ok(Err(error)) => {
                let down = error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal();
                if down {
                    self.went_down();
                } else {
                    // An answer, if an error one (a script error, out of memory): Redis is up.
                    inner.metrics.set_up(true);
                }
                Err(Unavailable(format!("redis: {error}")))
            }
            Err(_) => {
                self.went_down();
                Err(Unavailable(format!(
                    "redis did not answer within {} ms",
                    inner.timeout.as_millis()
                )))
            }
        }
    }

    fn went_down(&self) {
        self.inner.metrics.set_up(false);
        *self.inner.paused_until.lock() = Some(Instant::now() + PAUSE_AFTER_FAILURE);
    }
}

/// The [`Cache`] port over Redis (`GET`, `SET … PX`, `DEL` under `<prefix>:cache:`). Any
/// failure is a miss (or a value not stored), counted and logged at most every few seconds.
#[derive(Debug)]
pub struct RedisCache {
    conn: RedisConnection,
    warn: WarnEvery,
}

impl RedisCache {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            warn: WarnEvery::new(WARN_EVERY),
        }
    }

    fn failed(&self, op: &'static str, error: &Unavailable) {
        self.conn.metrics().cache_error();
        if self.warn.ready() {
            tracing::warn!(op, %error, "redis cache unavailable: misses until it returns");
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let key = self.conn.key("cache", key);
        match self
            .conn
            .call(async |conn| conn.get::<_, Option<Vec<u8>>>(&key).await)
            .await
        {
            Ok(value) => value.map(Arc::new),
            Err(error) => {
                self.failed("get", &error);
                None
            }
        }
    }

    async fn set(&self, key: String, value: Vec<u8>, ttl: Duration) {
        let key = self.conn.key("cache", &key);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let result = self
            .conn
            .call(async |conn| conn.pset_ex::<_, _, ()>(&key, value, ms).await)
            .await;
        if let Err(error) = result {
            self.failed("set", &error);
        }
    }

    async fn remove(&self, key: &str) {
        let key = self.conn.key("cache", key);
        let result = self
            .conn
            .call(async |conn| conn.del::<_, ()>(&key).await)
            .await;
        if let Err(error) = result {
            self.failed("remove", &error);
        }
    }
}
