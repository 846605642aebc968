//! The database: one pool over SQLite or PostgreSQL (chosen by URL at start), the neutral
//! [`StoreError`] that service adapters map driver errors into, and the per-service migration
//! runner.
//!
//! Services write portable SQL (`$1` parameters, `BIGINT` milliseconds, `TEXT` ids) against
//! [`Db`], and keep backend-specific SQL to their migrations. With PostgreSQL, reads that
//! tolerate lag can go to a streaming replica ([`Db::with_replica`], [`Db::read_lagging`]).

mod error;
mod migrate;
mod replica;
pub mod rows;
mod snapshot;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use confab_core::config::DatabaseConfig;
use confab_core::http::{NotReady, ReadinessCheck};
use confab_core::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::StoreError;
pub use migrate::{MigrationReport, ServiceMigrations};
pub use snapshot::{PgSnapshot, RowCounts, sqlite_file};
pub use sqlx;

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool with its backend.
///
/// SQLite lets one connection write at a time; writers that collide wait in SQLite's busy
/// handler, which sleeps in steps of milliseconds. So for SQLite, [`Db::writer`] is a second
/// pool of one connection over the same file: write transactions queue for it in the
/// process instead (fair, no sleeping), while reads use [`Db::pool`] and run beside the
/// writer (WAL). For PostgreSQL both are the same pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
    /// A streaming replica for reads that tolerate lag (PostgreSQL, `database.read_url`).
    replica: Option<Arc<replica::Replica>>,
}

impl Db {
    /// Connects to `url` (`sqlite:` or `postgres:`); for SQLite the file and its directory are
    /// created, and WAL mode is switched on.
    pub async fn connect(url: &str, config: &DatabaseConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(
                "database URL must start with sqlite: or postgres:".to_owned(),
            ));
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(redact(&e.to_string())))?;
        let pool_options = |connections: u32| {
            let pool = AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs));
            if backend == Backend::Sqlite {
                // A connection to a local file does not go away: testing it before each use
                // (a ping, one more round trip to its thread) would only cost.
                pool.test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
            } else {
                postgres_session(pool)
            }
        };
        let pool = pool_options(config.max_connections)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from)?;
        // An in-memory database exists once per connection: there the one pool must do.
        let writer = if backend == Backend::Sqlite && !url.contains(":memory:") {
            pool_options(1)
                .connect_with(options)
                .await
                .map_err(StoreError::from)?
        } else {
            pool.clone()
        };
        Ok(Self {
            pool,
            writer,
            backend,
            replica: None,
        })
    }

    /// Adds a streaming replica of this PostgreSQL database, at `url`, for the reads that
    /// tolerate lag ([`Db::read_lagging`]). Its connections are made on demand: a replica
    /// that is down at start only logs a warning, and reads go to the primary until it
    /// answers ([`Db::watch_replica`] probes it).
    pub async fn with_replica(
        mut self,
        url: &str,
        config: &DatabaseConfig,
    ) -> Result<Self, StoreError> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::Config(
                "a read replica needs a PostgreSQL database (database.url)".to_owned(),
            ));
        }
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Err(StoreError::Config(
                "database.read_url must start with postgres:".to_owned(),
            ));
        }
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(redact(&e.to_string())))?;
        let pool = postgres_session(
            AnyPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(
                    Duration::from_secs(config.acquire_timeout_secs).min(replica::ACQUIRE_TIMEOUT),
                ),
        )
        .connect_lazy_with(options.clone());
        let replica = Arc::new(replica::Replica::new(pool, options));
        replica.check().await;
        self.replica = Some(replica);
        Ok(self)
    }

    /// The pool for reads (and for writes off the hot paths).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for write transactions on hot paths; see [`Db`].
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Runs `read` — a read that tolerates replication lag: listings whose caller did not
    /// just write what they show — on the replica when one is configured and answering,
    /// else on the primary. Whatever fails on the replica is run again on the primary (a
    /// query error then comes back from there); when the replica no longer answers a
    /// probe it is marked down, and reads stay on the primary until [`Db::watch_replica`]
    /// sees it back. Without a replica this is `read(self.pool())`.
    pub async fn read_lagging<T, E, F, Fut>(&self, read: F) -> Result<T, E>
    where
        F: Fn(AnyPool) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        if let Some(replica) = &self.replica {
            if replica.is_up() {
                match read(replica.pool().clone()).await {
                    Ok(value) => return Ok(value),
                    Err(e) => replica.failed(&e.to_string()).await,
                }
            }
            replica.fell_back();
        }
        read(self.pool.clone()).await
    }

    /// The pool for a read that tolerates lag and cannot be run twice (a stream consumed by
    /// its caller): the replica's while it is up, else the primary's. Prefer
    /// [`Db::read_lagging`], which also falls back when the replica fails mid-read.
    pub fn lagging_pool(&self) -> &AnyPool {
        match &self.replica {
            Some(replica) if replica.is_up() => replica.pool(),
            Some(replica) => {
                replica.fell_back();
                &self.pool
            }
            None => &self.pool,
        }
    }

    /// Whether a replica is configured and reads go to it now.
    pub fn replica_up(&self) -> Option<bool> {
        self.replica.as_ref().map(|r| r.is_up())
    }

    /// Probes the replica (when one is configured) every few seconds until `shutdown`: a
    /// replica that stops answering is marked down before a read has to find out, and one
    /// that answers again gets the reads back.
    pub fn watch_replica(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        if let Some(replica) = &self.replica {
            let replica = replica.clone();
            tasks.spawn(async move { replica.watch(shutdown).await });
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A trivial query, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for checked-out connections to return, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
        if let Some(replica) = &self.replica {
            replica.pool().close().await;
        }
    }

    /// Pool gauges, refreshed at each scrape.
    pub fn register_metrics(&self, metrics: &mut MetricsBuilder) {
        let connections = Family::<PoolLabels, Gauge<i64, AtomicI64>>::default();
        metrics.registry().register(
            "db_pool_connections",
            "Database pool connections by state (idle, in_use, max)",
            connections.clone(),
        );
        let pool = self.pool.clone();
        let max = i64::from(pool.options().get_max_connections());
        metrics.on_scrape(move || {
            let size = i64::from(pool.size());
            let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
            connections
                .get_or_create(&PoolLabels { state: "idle" })
                .set(idle);
            connections
                .get_or_create(&PoolLabels { state: "in_use" })
                .set((size - idle).max(0));
            connections
                .get_or_create(&PoolLabels { state: "max" })
                .set(max);
        });
        if let Some(replica) = &self.replica {
            replica.register_metrics(metrics);
        }
    }

    /// A readiness check for `/readyz`.
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.clone())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[async_trait::async_trait]
impl ReadinessCheck for Db {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), NotReady> {
        self.ping().await.map_err(|e| NotReady(e.to_string()))
    }
}

/// A PostgreSQL connection's session settings.
///
/// Statements are prepared once per connection; left to itself PostgreSQL then settles on a
/// generic plan made from the statistics of that moment, and keeps it while a table grows
/// from empty to millions of rows (measured: the chat's path query stuck on sequential scans,
/// 4x slower sends). Planning each execution for its parameters costs tens of microseconds.
fn postgres_session(pool: AnyPoolOptions) -> AnyPoolOptions {
    pool.after_connect(|conn, _meta| {
        Box::pin(async move {
            conn.execute("SET plan_cache_mode = force_custom_plan")
                .await?;
            Ok(())
        })
    })
}

/// Creates the SQLite file's directory and asks for the file to be created if missing.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", parent.display())))?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Removes a password from a URL-bearing message.
fn redact(message: &str) -> String {
    match (message.find("://"), message.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://[redacted]{}", &message[..scheme], &message[at..])
        }
        _ => message.to_owned(),
    }
}

/// Converts a `u64` count or size to the `i64` the databases store.
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/db.sqlite");
        let url = prepare_sqlite_url(&format!("sqlite://{}", file.display())).unwrap();
        assert!(url.ends_with("db.sqlite?mode=rwc"), "{url}");
        assert!(dir.path().join("nested").is_dir());
    }

    #[tokio::test]
    async fn a_replica_follows_a_postgres_primary_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let db = Db::connect(&url, &DatabaseConfig::default()).await.unwrap();
        let e = db
            .with_replica("postgres://127.0.0.1:1/confab", &DatabaseConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Config(_)), "{e}");
    }

    /// A replica that refuses connections (nothing listens on port 1) is down from the start:
    /// reads go to the primary and are counted. Needs `TEST_POSTGRES_URL`; skipped without.
    #[tokio::test]
    async fn reads_go_to_the_primary_while_the_replica_is_unreachable() {
        let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
            return;
        };
        let db = Db::connect(&url, &DatabaseConfig::default())
            .await
            .unwrap()
            .with_replica(
                "postgres://postgres@127.0.0.1:1/postgres",
                &DatabaseConfig::default(),
            )
            .await
            .unwrap();
        assert_eq!(db.replica_up(), Some(false));
        let answer: i64 = db
            .read_lagging(|pool| async move {
                sqlx::query_scalar::<_, i64>("SELECT CAST(42 AS BIGINT)")
                    .fetch_one(&pool)
                    .await
            })
            .await
            .unwrap();
        assert_eq!(answer, 42);
        let replica = db.replica.as_ref().unwrap();
        assert_eq!(replica.fallbacks_so_far(), 1);
        // A check finds it still down.
        replica.check().await;
        assert_eq!(db.replica_up(), Some(false));
        db.close().await;
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("bad postgres://u:pw@h/db"),
            "bad postgres://[redacted]@h/db"
        );
    }
}
