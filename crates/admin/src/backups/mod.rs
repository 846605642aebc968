//! The record of completed backups: `confab backup` writes one row at its end
//! ([`SqlBackupLog::record`]), and the process that runs the admin service exports the time of
//! the newest as `confab_backup_last_success_timestamp_seconds` (0 while there is none), which
//! the "backup older than 26 h" alert watches. The gauge is refreshed from the table once a
//! minute ([`BackupMetrics::start`]), so every replica reports the same value.

mod store;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use confab_core::metrics::MetricsBuilder;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use store::SqlBackupLog;

/// One completed backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub id: Uuid,
    /// When the snapshot was taken (Unix milliseconds).
    pub started_at: i64,
    /// When the manifest was written (Unix milliseconds).
    pub completed_at: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Where the backup went (a directory), as the command was given it.
    pub location: String,
    pub bytes: i64,
    pub files: i64,
}

/// How often the gauge is read back from the table.
const REFRESH: Duration = Duration::from_secs(60);

/// `confab_backup_last_success_timestamp_seconds`.
#[derive(Clone, Default)]
pub struct BackupMetrics {
    last_success: Gauge<i64, AtomicI64>,
}

impl BackupMetrics {
    pub fn register(metrics: &mut MetricsBuilder) -> Self {
        let this = Self::default();
        metrics.registry().register(
            "backup_last_success_timestamp_seconds",
            "Unix time of the newest completed `confab backup` (0: none recorded)",
            this.last_success.clone(),
        );
        this
    }

    /// The value now exported.
    pub fn last_success_seconds(&self) -> i64 {
        self.last_success.get()
    }

    /// Reads the newest backup's time into the gauge once.
    pub async fn refresh(&self, log: &SqlBackupLog) -> Result<(), confab_store::StoreError> {
        let newest = log.last_completed_at().await?;
        self.last_success
            .set(newest.map_or(0, |ms| ms.div_euclid(1000)));
        Ok(())
    }

    /// Refreshes the gauge now and then every minute until `shutdown`.
    pub fn start(self, log: Arc<SqlBackupLog>, tasks: &TaskTracker, shutdown: CancellationToken) {
        tasks.spawn(async move {
            loop {
                if let Err(e) = self.refresh(&log).await {
                    tracing::warn!(error = %e, "cannot read the time of the last backup");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(REFRESH) => {}
                }
            }
        });
    }
}
