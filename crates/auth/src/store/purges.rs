//! The record of users being deleted across services (`auth_purges`) and the services'
//! answers (`auth_purge_acks`) in the SQL auth store.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::ports::{PurgeAnswer, PurgeRecord, PurgeStore, StoreResult};

use super::{SqlAuthStore, uuid};

fn record_from_row(row: &AnyRow) -> Result<PurgeRecord, sqlx::Error> {
    Ok(PurgeRecord {
        user_id: uuid(row, "user_id")?,
        requested_at: row.try_get("requested_at")?,
        published_at: row.try_get("published_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn answer_from_row(row: &AnyRow) -> Result<PurgeAnswer, sqlx::Error> {
    let counts: String = row.try_get("counts")?;
    Ok(PurgeAnswer {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        service: row.try_get("service")?,
        counts: serde_json::from_str(&counts).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        at: row.try_get("at")?,
    })
}

#[async_trait]
impl PurgeStore for SqlAuthStore {
    async fn open_purge(&self, user_id: Uuid, now: i64) -> StoreResult<PurgeRecord> {
        sqlx::query(
            "INSERT INTO auth_purges (user_id, requested_at) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id.to_string())
        .bind(now)
        .execute(self.db.writer())
        .await?;
        let row = sqlx::query(
            "SELECT user_id, requested_at, published_at, finished_at FROM auth_purges \
             WHERE user_id = $1",
        )
        .bind(user_id.to_string())
        .fetch_one(self.db.writer())
        .await?;
        Ok(record_from_row(&row)?)
    }

    async fn mark_purge_published(&self, user_id: Uuid, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE auth_purges SET published_at = $1 WHERE user_id = $2 AND published_at IS NULL",
        )
        .bind(now)
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn record_purge_answer(&self, answer: &PurgeAnswer) -> StoreResult<bool> {
        let counts = serde_json::to_string(&answer.counts)
            .map_err(|e| confab_store::StoreError::Unavailable(e.to_string()))?;
        let done = sqlx::query(
            "INSERT INTO auth_purge_acks (id, user_id, service, counts, at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE EXISTS (SELECT 1 FROM auth_purges WHERE user_id = $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(answer.id.to_string())
        .bind(answer.user_id.to_string())
        .bind(answer.service.as_str())
        .bind(counts)
        .bind(answer.at)
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_answers(&self, user_id: Uuid) -> StoreResult<Vec<PurgeAnswer>> {
        let rows = sqlx::query(
            "SELECT id, user_id, service, counts, at FROM auth_purge_acks \
             WHERE user_id = $1 ORDER BY at, id",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(answer_from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn finish_purge(&self, user_id: Uuid, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE auth_purges SET finished_at = $1 WHERE user_id = $2 AND finished_at IS NULL",
        )
        .bind(now)
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}
