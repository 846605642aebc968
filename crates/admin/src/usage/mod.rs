//! Usage statistics per user, model and UTC day: a read model (CQRS) built from the
//! `usage.recorded` events that the inference service publishes for each request, never from
//! the inference service's tables. [`UsageProjection`] consumes the events durably and folds
//! them into the daily rows; [`UsageReadModel`] answers the queries of the admin charts, the
//! CSV export and each user's own page. Both hold the [`UsageStatsStore`] port; its SQL
//! adapter is [`SqlUsageStats`] (`usage_daily`, `usage_applied`).
//!
//! The parts are pure where they can be: [`histogram`] (latencies as counts in fixed
//! log-spaced buckets: rows of any days, users and models merge by adding counts, and p50/p95
//! come from the merged counts, accurate to within one bucket, about 19%), [`query`] (days,
//! ranges, grouping) and [`report`] (rows folded into reports, events into rows).
//!
//! Delivery is at-least-once and a usage row may be published twice, so the store keeps each
//! event's id with the counts it changed, in one transaction, and skips an id seen before.

pub mod histogram;
pub mod projection;
pub mod query;
pub mod report;
mod store;

use std::sync::Arc;

use confab_store::StoreError;
use futures::{Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ports::UsageStatsStore;

pub use histogram::{BUCKETS, LatencyHistogram};
pub use projection::UsageProjection;
pub use query::{
    DEFAULT_RANGE_DAYS, DateRange, GroupBy, MAX_RANGE_DAYS, QueryError, UsageQuery, day_of,
    format_day, parse_day, today,
};
pub use report::{
    DailyUsage, ReportBuilder, SeriesPoint, Totals, UsageKey, UsageReport, UsageRow, UsageStats,
};
pub use store::SqlUsageStats;

/// The durable consumer's name.
pub const CONSUMER: &str = "admin.usage";
/// The topics it reads (the inference service publishes on `usage.inference`).
pub const TOPIC_PREFIX: &str = "usage.";
/// The event kinds it counts: one row (what earlier versions published), and rows stored
/// together (`{"rows": [...]}`, what the inference service publishes now).
pub const USAGE_RECORDED: &str = "usage.recorded";
pub const USAGE_BATCH: &str = "usage.batch";
/// How long an applied event's id is remembered: a repeat later than this counts again.
pub const REMEMBER_IDS_MS: i64 = 7 * 24 * 3600 * 1000;

/// Rows read per page by [`UsageReadModel::export`].
const EXPORT_PAGE: usize = 1000;

/// The data of a `usage.recorded` event, as the inference service publishes it (see
/// `confab_inference::usage::UsageEvent`; the integration tests check that the two agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The usage record's id; the same record published again carries the same id.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub user_id: Option<String>,
    #[serde(default)]
    pub api_key_id: Option<String>,
    pub model: String,
    #[serde(default)]
    pub backend: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    #[serde(default)]
    pub ttft_ms: Option<i64>,
    #[serde(default)]
    pub status: String,
    /// `ok` or `error`.
    pub outcome: String,
    #[serde(default)]
    pub cached: bool,
}

/// Answers the usage queries from the stored daily rows.
#[derive(Clone)]
pub struct UsageReadModel {
    store: Arc<dyn UsageStatsStore>,
}

impl std::fmt::Debug for UsageReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageReadModel").finish_non_exhaustive()
    }
}

impl UsageReadModel {
    pub fn new(store: Arc<dyn UsageStatsStore>) -> Self {
        Self { store }
    }

    /// The report for a query. Rows are folded as they stream from the store, so memory
    /// follows the size of the answer, not the number of stored rows.
    pub async fn report(&self, query: &UsageQuery) -> Result<UsageReport, StoreError> {
        let mut report = ReportBuilder::new(query);
        let mut rows = self.store.rows(query.range, query.user);
        while let Some(row) = rows.try_next().await? {
            report.add(&row);
        }
        Ok(report.finish())
    }

    /// Every stored row of the range (optionally of one user) in day, user and model order,
    /// read a page at a time as the stream is polled.
    pub fn export(
        &self,
        range: DateRange,
        user: Option<Uuid>,
    ) -> impl Stream<Item = Result<DailyUsage, StoreError>> + Send + 'static {
        struct Cursor {
            store: Arc<dyn UsageStatsStore>,
            after: Option<UsageKey>,
            done: bool,
        }
        let cursor = Cursor {
            store: self.store.clone(),
            after: None,
            done: false,
        };
        futures::stream::try_unfold(cursor, move |mut cursor| async move {
            if cursor.done {
                return Ok::<_, StoreError>(None);
            }
            let page = cursor
                .store
                .page(range, user, cursor.after.as_ref(), EXPORT_PAGE)
                .await?;
            cursor.done = page.len() < EXPORT_PAGE;
            cursor.after = page.last().map(DailyUsage::key);
            if page.is_empty() {
                return Ok(None);
            }
            Ok(Some((
                futures::stream::iter(page.into_iter().map(Ok)),
                cursor,
            )))
        })
        .try_flatten()
    }
}
