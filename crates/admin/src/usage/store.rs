//! [`SqlUsageStats`]: the usage statistics in the database (SQLite or PostgreSQL), the
//! adapter of the [`UsageStatsStore`] port and the only code that reads or writes
//! `usage_daily` and `usage_applied`.

use std::collections::HashSet;

use async_trait::async_trait;
use confab_store::{Backend, Db, StoreError};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::histogram::LatencyHistogram;
use super::query::{DateRange, format_day};
use super::report::{DailyUsage, UsageKey, fold_events};
use super::{REMEMBER_IDS_MS, UsageEvent};
use crate::ports::UsageStatsStore;

/// A `SELECT` of every column of `usage_daily`, then the rest of the statement.
macro_rules! select_daily {
    ($rest:literal) => {
        concat!(
            "SELECT day, user_id, model, requests, errors, prompt_tokens, completion_tokens, \
             latency_ms_sum, latency_buckets FROM usage_daily ",
            $rest
        )
    };
}

fn histogram(json: &str) -> Result<LatencyHistogram, StoreError> {
    LatencyHistogram::from_json(json)
        .map_err(|e| StoreError::Other(format!("usage_daily.latency_buckets: {e}")))
}

fn daily_from_row(row: &AnyRow) -> Result<DailyUsage, StoreError> {
    let buckets: String = row.try_get("latency_buckets")?;
    Ok(DailyUsage {
        day: row.try_get("day")?,
        user_id: row.try_get("user_id")?,
        model: row.try_get("model")?,
        requests: row.try_get("requests")?,
        errors: row.try_get("errors")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        latency_ms_sum: row.try_get("latency_ms_sum")?,
        latency: histogram(&buckets)?,
    })
}

/// The usage statistics in the database.
#[derive(Debug, Clone)]
pub struct SqlUsageStats {
    db: Db,
}

impl SqlUsageStats {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UsageStatsStore for SqlUsageStats {
    async fn apply(&self, events: &[UsageEvent], now_ms: i64) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut tx = self.db.writer().begin().await?;
        // The first statement writes, so SQLite takes its write lock up front.
        let claim = match self.db.backend() {
            Backend::Sqlite => {
                "INSERT INTO usage_applied (event_id, applied_at) \
                 SELECT value, CAST($2 AS BIGINT) FROM json_each($1) WHERE true \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            }
            Backend::Postgres => {
                "INSERT INTO usage_applied (event_id, applied_at) \
                 SELECT DISTINCT value, CAST($2 AS BIGINT) \
                 FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS ids(value) \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            }
        };
        let fresh: HashSet<String> = sqlx::query(claim)
            .bind(ids)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("event_id"))
            .collect::<Result<_, _>>()?;
        let groups = fold_events(events.iter().filter(|e| fresh.contains(&e.id)));
        for (
            UsageKey {
                day,
                user_id,
                model,
            },
            totals,
        ) in groups
        {
            // The histogram merges in Rust: read it, add, write the sum back. The projection
            // is the table's only writer, so nothing changes it in between.
            let stored: Option<String> = sqlx::query(
                "SELECT latency_buckets FROM usage_daily \
                 WHERE day = $1 AND user_id = $2 AND model = $3",
            )
            .bind(&day)
            .bind(&user_id)
            .bind(&model)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get("latency_buckets"))
            .transpose()?;
            let mut latency = totals.latency.clone();
            if let Some(stored) = stored {
                latency.merge(&histogram(&stored)?);
            }
            sqlx::query(
                "INSERT INTO usage_daily (day, user_id, model, requests, errors, prompt_tokens, \
                 completion_tokens, latency_ms_sum, latency_buckets) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (day, user_id, model) DO UPDATE SET \
                 requests = usage_daily.requests + excluded.requests, \
                 errors = usage_daily.errors + excluded.errors, \
                 prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, \
                 latency_ms_sum = usage_daily.latency_ms_sum + excluded.latency_ms_sum, \
                 latency_buckets = excluded.latency_buckets",
            )
            .bind(&day)
            .bind(&user_id)
            .bind(&model)
            .bind(totals.requests)
            .bind(totals.errors)
            .bind(totals.prompt_tokens)
            .bind(totals.completion_tokens)
            .bind(totals.latency_ms_sum)
            .bind(latency.to_json())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM usage_applied WHERE applied_at < $1")
            .bind(now_ms - REMEMBER_IDS_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(fresh.len())
    }

    fn rows(
        &self,
        range: DateRange,
        user: Option<Uuid>,
    ) -> BoxStream<'_, Result<DailyUsage, StoreError>> {
        sqlx::query(select_daily!(
            "WHERE day >= $1 AND day <= $2 AND ($3 IS NULL OR user_id = $3)"
        ))
        .bind(format_day(range.from))
        .bind(format_day(range.to))
        .bind(user.map(|u| u.to_string()))
        // A report tolerates replication lag: a replica serves it when configured.
        .fetch(self.db.lagging_pool())
        .map_err(StoreError::from)
        .and_then(|row| async move { daily_from_row(&row) })
        .boxed()
    }

    async fn page(
        &self,
        range: DateRange,
        user: Option<Uuid>,
        after: Option<&UsageKey>,
        limit: usize,
    ) -> Result<Vec<DailyUsage>, StoreError> {
        let sql = select_daily!(
            "WHERE day >= $1 AND day <= $2 AND ($3 IS NULL OR user_id = $3) \
             AND ($4 IS NULL OR (day, user_id, model) > ($4, $5, $6)) \
             ORDER BY day, user_id, model LIMIT $7"
        );
        // A listing tolerates replication lag: a replica serves it when configured.
        let rows = self
            .db
            .read_lagging(|pool| async move {
                sqlx::query(sql)
                    .bind(format_day(range.from))
                    .bind(format_day(range.to))
                    .bind(user.map(|u| u.to_string()))
                    .bind(after.map(|k| k.day.clone()))
                    .bind(after.map(|k| k.user_id.clone()))
                    .bind(after.map(|k| k.model.clone()))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&pool)
                    .await
            })
            .await?;
        rows.iter().map(daily_from_row).collect()
    }
}
