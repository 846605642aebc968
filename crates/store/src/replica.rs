//! A PostgreSQL streaming replica for reads that tolerate lag: whether it answers (probed on
//! a fresh connection, so a dead server is told from a busy pool), how far its replay lags,
//! and the metrics operators watch it by.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use confab_core::metrics::MetricsBuilder;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection};
use tokio_util::sync::CancellationToken;

/// The longest a read waits for a replica connection before the primary answers instead.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the watcher probes the replica.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a probe (connect and one query) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The replay lag in seconds: 0 while everything received is replayed (an idle primary sends
/// nothing, and the age of the last replayed transaction would grow without any lag), else
/// the age of the last transaction replayed; 0 on a server that is not a standby.
const LAG_SQL: &str = "SELECT CAST(CASE \
     WHEN NOT pg_is_in_recovery() THEN 0 \
     WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
     ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) \
     END AS DOUBLE PRECISION) AS lag";

pub(crate) struct Replica {
    pool: AnyPool,
    /// For probes: a fresh connection each time, outside the pool.
    options: AnyConnectOptions,
    /// Whether reads go to the replica.
    up: AtomicBool,
    /// Reads the primary served because the replica was down or failed them.
    fallbacks: Counter,
    /// The last probe's replay lag, as `f64` bits.
    lag_bits: AtomicU64,
}

/// Without the connect options, whose URL may carry a password.
impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Replica {
    pub(crate) fn new(pool: AnyPool, options: AnyConnectOptions) -> Self {
        Self {
            pool,
            options,
            up: AtomicBool::new(false),
            fallbacks: Counter::default(),
            lag_bits: AtomicU64::new(0),
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn fell_back(&self) {
        self.fallbacks.inc();
    }

    #[cfg(test)]
    pub(crate) fn fallbacks_so_far(&self) -> u64 {
        self.fallbacks.get()
    }

    /// Connects, asks for the replay lag, and disconnects.
    async fn probe(&self) -> Result<f64, String> {
        let attempt = async {
            let mut conn = self.options.connect().await?;
            let lag: f64 = sqlx::query_scalar(LAG_SQL).fetch_one(&mut conn).await?;
            conn.close().await?;
            Ok::<_, sqlx::Error>(lag)
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(lag)) => Ok(lag),
            Ok(Err(e)) => Err(crate::redact(&e.to_string())),
            Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    }

    /// Probes the replica and records the outcome: reads go to it from now on when it
    /// answers, to the primary when it does not. Logged when that changes.
    pub(crate) async fn check(&self) {
        match self.probe().await {
            Ok(lag) => {
                self.lag_bits.store(lag.to_bits(), Ordering::Relaxed);
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        lag_secs = lag,
                        "the database read replica answers; reads that tolerate lag go to it"
                    );
                }
            }
            Err(e) => self.mark_down(&e),
        }
    }

    /// A read failed on the replica (the caller runs it again on the primary): whether the
    /// replica is gone, or only this read failed, the probe tells.
    pub(crate) async fn failed(&self, error: &str) {
        match self.probe().await {
            Ok(_) => tracing::debug!(
                error = %crate::redact(error),
                "a read failed on the database read replica; the primary answers it"
            ),
            Err(probe) => self.mark_down(&format!("{}; probe: {probe}", crate::redact(error))),
        }
    }

    fn mark_down(&self, error: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "the database read replica does not answer; the primary serves every read \
                 until it does"
            );
        } else {
            tracing::debug!(error, "the database read replica still does not answer");
        }
    }

    /// Probes every [`PROBE_INTERVAL`] until `shutdown`.
    pub(crate) async fn watch(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(PROBE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => self.check().await,
            }
        }
    }

    pub(crate) fn register_metrics(self: &std::sync::Arc<Self>, metrics: &mut MetricsBuilder) {
        let up = Gauge::<i64>::default();
        metrics.registry().register(
            "db_replica_up",
            "Whether reads that tolerate lag go to the database read replica (1) or, the \
             replica down, to the primary (0)",
            up.clone(),
        );
        let lag = Gauge::<f64, AtomicU64>::default();
        metrics.registry().register(
            "db_replica_lag_seconds",
            "Replay lag of the database read replica at its last probe (0 when caught up)",
            lag.clone(),
        );
        metrics.registry().register(
            "db_replica_fallbacks",
            "Reads that tolerate lag served by the primary because the replica was down or \
             failed them",
            self.fallbacks.clone(),
        );
        let this = self.clone();
        metrics.on_scrape(move || {
            up.set(i64::from(this.is_up()));
            lag.set(f64::from_bits(this.lag_bits.load(Ordering::Relaxed)));
        });
    }
}
