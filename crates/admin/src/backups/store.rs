//! `admin_backups`: the SQL adapter of the backup record.

use confab_store::{Db, StoreError};
use sqlx::Row;

use super::BackupRecord;

/// The completed backups in the database.
#[derive(Debug, Clone)]
pub struct SqlBackupLog {
    db: Db,
}

impl SqlBackupLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a completed backup.
    pub async fn record(&self, record: &BackupRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_backups \
             (id, started_at, completed_at, backend, location, bytes, files) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record.id.to_string())
        .bind(record.started_at)
        .bind(record.completed_at)
        .bind(record.backend.clone())
        .bind(record.location.clone())
        .bind(record.bytes)
        .bind(record.files)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// When the newest backup completed (Unix milliseconds).
    pub async fn last_completed_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT max(completed_at) AS at FROM admin_backups")
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get::<Option<i64>, _>("at")?)
    }
}
