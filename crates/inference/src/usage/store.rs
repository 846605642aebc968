//! [`SqlUsageLog`]: the usage records in the database (`inference_usage`; SQLite or
//! PostgreSQL), the adapter of the [`UsageLog`] port and the only code that reads or writes
//! the table. Rows are written once; the ids of rows whose event is not yet durable are in
//! `inference_usage_outbox` beside them (migration 0010 says why).

use async_trait::async_trait;
use confab_store::{Backend, Db, StoreError};
use sqlx::Row;
use uuid::Uuid;

use super::{Subject, UsageEvent, UsageRecord, UsageRow, day_of};
use crate::ports::UsageLog;

/// One row as the insert statement reads it from its JSON parameter.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    id: String,
    at: i64,
    day: String,
    user_id: Option<Uuid>,
    api_key_id: Option<Uuid>,
    model: &'a str,
    backend: &'a str,
    prompt_tokens: u32,
    completion_tokens: u32,
    ttft_ms: Option<i64>,
    latency_ms: i64,
    status: &'a str,
    cached: i64,
}

/// The columns, read from each element `value` of the JSON array (`->>` gives text or
/// numbers in both databases; the casts make them the columns' types in PostgreSQL).
macro_rules! usage_insert {
    ($rows:literal) => {
        concat!(
            "INSERT INTO inference_usage (id, at, day, user_id, api_key_id, model, backend, \
             prompt_tokens, completion_tokens, ttft_ms, latency_ms, status, cached) \
             SELECT value ->> 'id', CAST(value ->> 'at' AS BIGINT), value ->> 'day', \
             value ->> 'user_id', value ->> 'api_key_id', value ->> 'model', value ->> 'backend', \
             CAST(value ->> 'prompt_tokens' AS BIGINT), CAST(value ->> 'completion_tokens' AS BIGINT), \
             CAST(value ->> 'ttft_ms' AS BIGINT), CAST(value ->> 'latency_ms' AS BIGINT), \
             value ->> 'status', CAST(value ->> 'cached' AS BIGINT) FROM ",
            $rows
        )
    };
}

/// The usage records in the database.
#[derive(Debug, Clone)]
pub struct SqlUsageLog {
    db: Db,
}

impl SqlUsageLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UsageLog for SqlUsageLog {
    /// Writes a batch as one statement whose one parameter is the rows as a JSON array: a
    /// single round trip and a single parse, where a statement per row (or a multi-row VALUES
    /// list, whose parameter lookup grows with the square of its size in SQLite) costs far more.
    async fn append(&self, batch: &[UsageRecord]) -> Result<Vec<UsageEvent>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<JsonRow<'_>> = batch
            .iter()
            .map(|r| JsonRow {
                id: Uuid::now_v7().to_string(),
                at: r.at,
                day: day_of(r.at),
                user_id: r.user_id,
                api_key_id: r.api_key_id,
                model: &r.model,
                backend: &r.backend,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                ttft_ms: r.ttft_ms,
                latency_ms: r.latency_ms,
                status: &r.status,
                cached: i64::from(r.cached),
            })
            .collect();
        let json = serde_json::to_string(&rows).map_err(|e| StoreError::Other(e.to_string()))?;
        let (insert, outbox) = match self.db.backend() {
            Backend::Sqlite => (
                usage_insert!("jsonb_each(jsonb($1))"),
                "INSERT INTO inference_usage_outbox (id, at) \
                 SELECT value ->> 'id', value ->> 'at' FROM jsonb_each(jsonb($1))",
            ),
            Backend::Postgres => (
                usage_insert!("jsonb_array_elements(CAST($1 AS jsonb)) AS rows(value)"),
                "INSERT INTO inference_usage_outbox (id, at) \
                 SELECT value ->> 'id', CAST(value ->> 'at' AS BIGINT) \
                 FROM jsonb_array_elements(CAST($1 AS jsonb)) AS rows(value)",
            ),
        };
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(insert).bind(&json).execute(&mut *tx).await?;
        sqlx::query(outbox).bind(&json).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(batch
            .iter()
            .zip(rows)
            .map(|(record, row)| UsageEvent {
                id: row.id,
                at: record.at,
                user_id: record.user_id.map(|u| u.to_string()),
                api_key_id: record.api_key_id.map(|k| k.to_string()),
                model: record.model.clone(),
                backend: record.backend.clone(),
                prompt_tokens: i64::from(record.prompt_tokens),
                completion_tokens: i64::from(record.completion_tokens),
                latency_ms: record.latency_ms,
                ttft_ms: record.ttft_ms,
                outcome: UsageEvent::outcome_of(&record.status).to_owned(),
                status: record.status.clone(),
                cached: record.cached,
            })
            .collect())
    }

    async fn unpublished(&self, limit: usize) -> Result<Vec<UsageEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.at, u.user_id, u.api_key_id, u.model, u.backend, u.prompt_tokens, \
             u.completion_tokens, u.latency_ms, u.ttft_ms, u.status, u.cached \
             FROM inference_usage_outbox o JOIN inference_usage u ON u.id = o.id \
             ORDER BY o.at, o.id LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(UsageEvent {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    user_id: row.try_get("user_id")?,
                    api_key_id: row.try_get("api_key_id")?,
                    model: row.try_get("model")?,
                    backend: row.try_get("backend")?,
                    prompt_tokens: row.try_get("prompt_tokens")?,
                    completion_tokens: row.try_get("completion_tokens")?,
                    latency_ms: row.try_get("latency_ms")?,
                    ttft_ms: row.try_get("ttft_ms")?,
                    outcome: UsageEvent::outcome_of(&status).to_owned(),
                    status,
                    cached: row.try_get::<i64, _>("cached")? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn mark_published(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(ids).map_err(|e| StoreError::Other(e.to_string()))?;
        let sql = match self.db.backend() {
            Backend::Sqlite => {
                "DELETE FROM inference_usage_outbox WHERE id IN (SELECT value FROM json_each($1))"
            }
            // An array, not a semi-join: one index probe per id whatever the planner thinks
            // of the function's row count or of a queue table full of dead rows.
            Backend::Postgres => {
                "DELETE FROM inference_usage_outbox \
                 WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST($1 AS jsonb))))"
            }
        };
        sqlx::query(sql)
            .bind(json)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    async fn daily_totals(
        &self,
        user: Option<Uuid>,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, user_id, model, COUNT(*) AS requests, \
             CAST(SUM(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) AS BIGINT) AS errors, \
             CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens \
             FROM inference_usage WHERE day >= $1 AND day <= $2 AND ($3 IS NULL OR user_id = $3) \
             GROUP BY day, user_id, model ORDER BY day, user_id, model",
        )
        .bind(from_day)
        .bind(to_day)
        .bind(user.map(|u| u.to_string()))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRow {
                    day: row.try_get("day")?,
                    user_id: row.try_get("user_id")?,
                    model: row.try_get("model")?,
                    requests: row.try_get("requests")?,
                    errors: row.try_get("errors")?,
                    prompt_tokens: row.try_get("prompt_tokens")?,
                    completion_tokens: row.try_get("completion_tokens")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn tokens_used(&self, subject: Subject, day: &str) -> Result<u64, StoreError> {
        let sql = match subject {
            Subject::User(_) => {
                "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS n FROM inference_usage \
                 WHERE user_id = $1 AND day = $2 AND cached = 0"
            }
            Subject::Key(_) => {
                "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS n FROM inference_usage \
                 WHERE api_key_id = $1 AND day = $2 AND cached = 0"
            }
        };
        let row = sqlx::query(sql)
            .bind(subject.id().to_string())
            .bind(day)
            .fetch_one(self.db.pool())
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}
