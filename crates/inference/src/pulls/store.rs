//! [`SqlPullStore`]: the model pulls in the database (`model_pulls`; SQLite or PostgreSQL),
//! the adapter of the [`PullStore`] port and the only code that reads or writes the table.

use async_trait::async_trait;
use confab_store::{Db, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::state::{NewPull, PullProgress, PullRecord, PullState};
use crate::ports::PullStore;

/// Columns of a record, in `SELECT` lists.
macro_rules! pull_columns {
    () => {
        "id, source, sha256, model, state, bytes, total, error, job_id, created_by, created_at, \
         updated_at"
    };
}

fn uuid(text: &str, column: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Other(format!("model_pulls.{column}: {e}")))
}

fn record(row: &AnyRow) -> Result<PullRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let job_id: Option<String> = row.try_get("job_id")?;
    let created_by: Option<String> = row.try_get("created_by")?;
    Ok(PullRecord {
        id: uuid(&id, "id")?,
        source: row.try_get("source")?,
        sha256: row.try_get("sha256")?,
        model: row.try_get("model")?,
        state: PullState::parse(&row.try_get::<String, _>("state")?),
        // Never negative as written; a corrupt value reads as nothing done yet.
        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
        total: row
            .try_get::<Option<i64>, _>("total")?
            .and_then(|t| u64::try_from(t).ok()),
        error: row.try_get("error")?,
        // A reference that does not parse names no job: the pull gets a new one.
        job_id: job_id.and_then(|j| Uuid::parse_str(&j).ok()),
        created_by: created_by.and_then(|u| Uuid::parse_str(&u).ok()),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The model pulls in the database.
#[derive(Debug, Clone)]
pub struct SqlPullStore {
    db: Db,
}

impl SqlPullStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl PullStore for SqlPullStore {
    async fn insert(&self, pull: &NewPull) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO model_pulls (id, source, sha256, model, state, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6)",
        )
        .bind(pull.id.to_string())
        .bind(&pull.source)
        .bind(pull.sha256.clone())
        .bind(&pull.model)
        .bind(pull.created_by.map(|a| a.to_string()))
        .bind(pull.created_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn set_job(&self, id: Uuid, job_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE model_pulls SET job_id = $1 WHERE id = $2")
            .bind(job_id.to_string())
            .bind(id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn update(
        &self,
        id: Uuid,
        progress: &PullProgress,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE model_pulls SET state = $1, bytes = $2, total = $3, error = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(progress.state.as_str())
        .bind(confab_store::to_i64(progress.bytes))
        .bind(progress.total.map(confab_store::to_i64))
        .bind(progress.error.clone())
        .bind(now_ms)
        .bind(id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<PullRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            pull_columns!(),
            " FROM model_pulls WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }

    async fn unfinished(&self) -> Result<Vec<PullRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pull_columns!(),
            " FROM model_pulls WHERE state IN ('queued', 'running') ORDER BY created_at, id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        // A row that cannot be read is left out (and logged) rather than holding up every
        // other pull at start.
        Ok(rows
            .iter()
            .filter_map(|row| {
                record(row)
                    .inspect_err(|e| tracing::warn!(error = %e, "a model pull cannot be read"))
                    .ok()
            })
            .collect())
    }

    async fn recent(&self, limit: usize) -> Result<Vec<PullRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pull_columns!(),
            " FROM model_pulls ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(record).collect()
    }
}
