//! [`SqlSettingsStore`]: the runtime settings in the database (`runtime_settings`, one row
//! with a version), the adapter of the [`SettingsStore`] port.

use async_trait::async_trait;
use confab_core::runtime::RuntimeSettings;
use confab_store::{Db, StoreError};
use sqlx::Row;
use uuid::Uuid;

use super::SettingsView;
use crate::ports::SettingsStore;

/// The stored settings.
#[derive(Debug, Clone)]
pub struct SqlSettingsStore {
    db: Db,
}

impl SqlSettingsStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SettingsStore for SqlSettingsStore {
    async fn load(&self) -> Result<Option<SettingsView>, StoreError> {
        let row = sqlx::query(
            "SELECT settings, version, updated_at, updated_by FROM runtime_settings WHERE id = 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("settings")?;
        let settings = serde_json::from_str(&text)
            .map_err(|e| StoreError::Other(format!("runtime_settings: {e}")))?;
        let updated_by: Option<String> = row.try_get("updated_by")?;
        Ok(Some(SettingsView {
            settings,
            version: row.try_get("version")?,
            updated_at: Some(row.try_get("updated_at")?),
            updated_by: updated_by.and_then(|u| u.parse().ok()),
        }))
    }

    async fn save(
        &self,
        settings: &RuntimeSettings,
        expected: i64,
        by: Uuid,
        now: i64,
    ) -> Result<i64, StoreError> {
        let text = serde_json::to_string(settings).map_err(|e| StoreError::Other(e.to_string()))?;
        let done = if expected == 0 {
            sqlx::query(
                "INSERT INTO runtime_settings (id, settings, version, updated_at, updated_by) \
                 VALUES (1, $1, 1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(text)
            .bind(now)
            .bind(by.to_string())
            .execute(self.db.writer())
            .await?
        } else {
            sqlx::query(
                "UPDATE runtime_settings SET settings = $1, version = version + 1, updated_at = $2, \
                 updated_by = $3 WHERE id = 1 AND version = $4",
            )
            .bind(text)
            .bind(now)
            .bind(by.to_string())
            .bind(expected)
            .execute(self.db.writer())
            .await?
        };
        if done.rows_affected() == 1 {
            Ok(expected + 1)
        } else {
            Err(StoreError::Conflict("version".into()))
        }
    }
}
