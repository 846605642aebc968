//! The quota ledger on SQLite and PostgreSQL: one row per quota day and bucket in
//! `seo_quota_usage`. A reservation is one transaction of conditional upserts, one per bucket
//! in a fixed order; a row that would pass its limit (or is marked exhausted) is left alone,
//! and the whole reservation rolls back.
//!
//! This module also holds the SEO service's [`migrations`] until the service's own store
//! module exists.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use confab_store::{Db, StoreError, to_i64};
use jiff::Timestamp;
use sqlx::Row;

use super::domain::{Bucket, Clock, CostTable, Method, QuotaSettings, last_days};
use super::{BucketUsage, QuotaError, QuotaLedger, Reservation, next_reset, quota_day};

/// The SQL adapter of [`QuotaLedger`].
#[derive(Clone)]
pub struct SqlQuotaLedger {
    db: Db,
    settings: QuotaSettings,
    costs: CostTable,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqlQuotaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlQuotaLedger")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SqlQuotaLedger {
    pub fn new(db: Db, settings: QuotaSettings, clock: Arc<dyn Clock>) -> Self {
        let costs = CostTable::from_settings(&settings);
        Self {
            db,
            settings,
            costs,
            clock,
        }
    }

    fn exhausted(&self, bucket: Bucket, now: Timestamp) -> QuotaError {
        QuotaError::Exhausted {
            bucket,
            resets_at: next_reset(now),
        }
    }
}

fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

#[async_trait]
impl QuotaLedger for SqlQuotaLedger {
    async fn reserve(&self, method: Method) -> Result<Reservation, QuotaError> {
        let now = self.clock.now();
        let day = quota_day(now);
        let day_text = day.to_string();
        let charges = self.costs.charges(method).to_vec();
        for charge in &charges {
            if charge.amount > self.settings.limits.of(charge.bucket) {
                return Err(self.exhausted(charge.bucket, now));
            }
        }
        let mut tx = self.db.writer().begin().await.map_err(StoreError::from)?;
        for charge in charges.iter().filter(|c| c.amount > 0) {
            let done = sqlx::query(
                "INSERT INTO seo_quota_usage (day, bucket, used, quota_limit, exhausted, updated_at) \
                 VALUES ($1, $2, $3, $4, 0, $5) \
                 ON CONFLICT (day, bucket) DO UPDATE SET \
                   used = seo_quota_usage.used + excluded.used, \
                   quota_limit = excluded.quota_limit, updated_at = excluded.updated_at \
                 WHERE seo_quota_usage.exhausted = 0 \
                   AND seo_quota_usage.used + excluded.used <= excluded.quota_limit",
            )
            .bind(day_text.clone())
            .bind(charge.bucket.as_str())
            .bind(to_i64(charge.amount))
            .bind(to_i64(self.settings.limits.of(charge.bucket)))
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            if done.rows_affected() == 0 {
                tx.rollback().await.map_err(StoreError::from)?;
                return Err(self.exhausted(charge.bucket, now));
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Reservation {
            method,
            day,
            charges,
        })
    }

    async fn mark_exhausted(&self, bucket: Bucket) -> Result<(), QuotaError> {
        let now = self.clock.now();
        sqlx::query(
            "INSERT INTO seo_quota_usage (day, bucket, used, quota_limit, exhausted, updated_at) \
             VALUES ($1, $2, 0, $3, 1, $4) \
             ON CONFLICT (day, bucket) DO UPDATE SET exhausted = 1, updated_at = excluded.updated_at",
        )
        .bind(quota_day(now).to_string())
        .bind(bucket.as_str())
        .bind(to_i64(self.settings.limits.of(bucket)))
        .bind(millis(now))
        .execute(self.db.writer())
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    async fn usage(&self, days: u32) -> Result<Vec<BucketUsage>, QuotaError> {
        let days = last_days(self.clock.now(), days);
        let first = days.first().map(ToString::to_string).unwrap_or_default();
        let rows = sqlx::query(
            "SELECT day, bucket, used, quota_limit, exhausted FROM seo_quota_usage WHERE day >= $1",
        )
        .bind(first)
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::from)?;
        let mut stored = HashMap::new();
        for row in rows {
            let day: String = row.try_get("day").map_err(StoreError::from)?;
            let bucket: String = row.try_get("bucket").map_err(StoreError::from)?;
            let used: i64 = row.try_get("used").map_err(StoreError::from)?;
            let limit: i64 = row.try_get("quota_limit").map_err(StoreError::from)?;
            let exhausted: i64 = row.try_get("exhausted").map_err(StoreError::from)?;
            if let Some(bucket) = Bucket::parse(&bucket) {
                stored.insert((day, bucket), (used, limit, exhausted != 0));
            }
        }
        let mut out = Vec::new();
        for day in days {
            let day = day.to_string();
            for bucket in Bucket::ALL {
                let (used, limit, exhausted) = stored.remove(&(day.clone(), bucket)).unwrap_or((
                    0,
                    to_i64(self.settings.limits.of(bucket)),
                    false,
                ));
                out.push(BucketUsage {
                    day: day.clone(),
                    bucket,
                    used: u64::try_from(used).unwrap_or(0),
                    limit: u64::try_from(limit).unwrap_or(0),
                    exhausted,
                });
            }
        }
        Ok(out)
    }

    fn next_reset(&self) -> Timestamp {
        next_reset(self.clock.now())
    }
}
