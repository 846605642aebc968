//! Usage statistics per user, model and UTC day: a read model (CQRS) built from the
//! `usage.recorded` events that the inference service publishes for each request, never from
//! the inference service's tables. [`UsageProjection`] consumes the events durably and folds
//! them into `usage_daily`; [`UsageReadModel`] answers the queries of the admin charts, the
//! CSV export and each user's own page.
//!
//! Latencies are kept as counts in fixed log-spaced buckets ([`LatencyHistogram`]): rows of
//! any days, users and models merge by adding counts, and p50/p95 come from the merged
//! counts, accurate to within one bucket (a factor of 2^(1/4), about 19%).
//!
//! Delivery is at-least-once and a usage row may be published twice, so each event's id is
//! stored with the counts it changed, in one transaction, and an id seen before is skipped.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use confab_bus::{BusError, DurableEvents, Envelope};
use confab_store::{Backend, Db, StoreError};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::{Date, Month};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;
use uuid::Uuid;

/// The durable consumer's name.
pub const CONSUMER: &str = "admin.usage";
/// The topics it reads (the inference service publishes on `usage.inference`).
pub const TOPIC_PREFIX: &str = "usage.";
/// The event kind it counts.
pub const USAGE_RECORDED: &str = "usage.recorded";

/// Events applied per transaction at most.
const BATCH: usize = 256;
/// How long an applied event's id is remembered: a repeat later than this counts again.
const REMEMBER_IDS_MS: i64 = 7 * 24 * 3600 * 1000;
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The longest range a query may span, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_RANGE_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------
// Latency histogram
// ---------------------------------------------------------------------------------------

/// Buckets per doubling of latency.
const STEPS_PER_DOUBLING: f64 = 4.0;
/// Bucket `i` holds latencies in `(bound(i - 1), bound(i)]` ms with `bound(i) = 2^(i/4)`;
/// bucket 0 holds up to 1 ms and the last one everything above `bound(BUCKETS - 2)` (about
/// 12 minutes).
pub const BUCKETS: usize = 80;

/// Request counts per latency bucket; trailing empty buckets are not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket a latency falls in.
    pub fn bucket_of(ms: i64) -> usize {
        if ms <= 1 {
            return 0;
        }
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive latency in ms; the bucket index is small"
        )]
        let index = ((ms as f64).log2() * STEPS_PER_DOUBLING - 1e-9).ceil() as usize;
        index.min(BUCKETS - 1)
    }

    /// The upper bound of bucket `i` in ms (infinite for the last).
    pub fn upper_bound(i: usize) -> f64 {
        if i >= BUCKETS - 1 {
            return f64::INFINITY;
        }
        #[expect(clippy::cast_precision_loss, reason = "a small index")]
        (i as f64 / STEPS_PER_DOUBLING).exp2()
    }

    fn lower_bound(i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            Self::upper_bound(i - 1)
        }
    }

    pub fn record(&mut self, ms: i64) {
        self.add(Self::bucket_of(ms), 1);
    }

    fn add(&mut self, bucket: usize, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += count;
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bucket, &count) in other.counts.iter().enumerate() {
            self.add(bucket.min(BUCKETS - 1), count);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency below which a fraction `p` (0..=1) of the requests fall, interpolated
    /// linearly inside its bucket; `None` without requests. Above the last finite bound the
    /// answer is that bound.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let rank = (p.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0.0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let count = count as f64;
            if below + count >= rank {
                let lower = Self::lower_bound(bucket);
                let upper = Self::upper_bound(bucket);
                if upper.is_infinite() {
                    return Some(lower);
                }
                return Some(lower + (upper - lower) * (rank - below) / count);
            }
            below += count;
        }
        None
    }

    /// The stored form: a JSON array of counts.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.counts).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Rounds a latency for display.
#[expect(
    clippy::cast_possible_truncation,
    reason = "latencies in ms fit an i64 by far"
)]
fn round_ms(ms: f64) -> i64 {
    ms.round() as i64
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

/// Why a query was refused; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("group_by must be user, model or day, not `{0}`")]
    InvalidGroupBy(String),
    #[error("{0}")]
    InvalidDate(String),
    #[error("{0}")]
    InvalidRange(String),
    #[error("user must be a user id, not `{0}`")]
    InvalidUser(String),
    #[error("format must be csv, not `{0}`")]
    InvalidFormat(String),
}

impl QueryError {
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidGroupBy(_) => "invalid_group_by",
            QueryError::InvalidDate(_) => "invalid_date",
            QueryError::InvalidRange(_) => "invalid_range",
            QueryError::InvalidUser(_) => "invalid_user",
            QueryError::InvalidFormat(_) => "invalid_format",
        }
    }
}

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    User,
    Model,
    Day,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(GroupBy::User),
            "model" => Ok(GroupBy::Model),
            "day" => Ok(GroupBy::Day),
            other => Err(QueryError::InvalidGroupBy(other.into())),
        }
    }
}

/// A UTC date as `YYYY-MM-DD`.
pub fn format_day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses `YYYY-MM-DD` strictly.
pub fn parse_day(text: &str) -> Result<Date, QueryError> {
    let invalid = || QueryError::InvalidDate(format!("`{text}` is not a date (YYYY-MM-DD)"));
    let bytes = text.as_bytes();
    if bytes.len() != 10
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !text
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let year: i32 = text[..4].parse().map_err(|_| invalid())?;
    let month: u8 = text[5..7].parse().map_err(|_| invalid())?;
    let day: u8 = text[8..].parse().map_err(|_| invalid())?;
    let month = Month::try_from(month).map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

/// The UTC day of a millisecond instant.
pub fn day_of(ms: i64) -> String {
    format_day(confab_core::id::ms_to_datetime(ms).date())
}

/// Days from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: Date,
    pub to: Date,
}

impl DateRange {
    /// From optional `YYYY-MM-DD` bounds: `to` defaults to `today`, `from` to 30 days
    /// ending at `to`. At most [`MAX_RANGE_DAYS`] days; `from` not after `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Self, QueryError> {
        let to = match to {
            Some(text) => parse_day(text)?,
            None => today,
        };
        let from = match from {
            Some(text) => parse_day(text)?,
            None => to
                .checked_sub(time::Duration::days(DEFAULT_RANGE_DAYS - 1))
                .unwrap_or(to),
        };
        if from > to {
            return Err(QueryError::InvalidRange(format!(
                "from ({}) is after to ({})",
                format_day(from),
                format_day(to)
            )));
        }
        let days = (to - from).whole_days() + 1;
        if days > MAX_RANGE_DAYS {
            return Err(QueryError::InvalidRange(format!(
                "the range spans {days} days; at most {MAX_RANGE_DAYS}"
            )));
        }
        Ok(Self { from, to })
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + use<> {
        let to = self.to;
        std::iter::successors(Some(self.from), move |d| {
            d.next_day().filter(|next| *next <= to)
        })
    }
}

/// Today in UTC.
pub fn today() -> Date {
    confab_core::id::ms_to_datetime(confab_core::now_ms()).date()
}

/// A report's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub group_by: GroupBy,
    pub range: DateRange,
    /// Only this user's usage.
    pub user: Option<Uuid>,
}

/// Totals of some requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageStats {
    pub requests: i64,
    /// Requests that did not end `ok`.
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prompt and completion tokens.
    pub tokens: i64,
    pub latency_avg_ms: Option<i64>,
    /// Median latency, from the merged histogram (within about 19%).
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// One row of a report: the totals of one user, model or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    /// A user id (`group_by=user`; join with `/api/v1/auth/users` for names), a model name,
    /// or a day `YYYY-MM-DD`.
    pub key: String,
    #[serde(flatten)]
    pub stats: UsageStats,
}

/// One day of the chart series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub stats: UsageStats,
}

/// Usage over a range of days: totals, rows grouped as asked (most requests first; days in
/// order), and one point per day of the range (days without requests included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// `user`, `model` or `day`.
    pub group_by: String,
    pub from: String,
    pub to: String,
    pub totals: UsageStats,
    pub rows: Vec<UsageRow>,
    pub series: Vec<SeriesPoint>,
}

/// One stored row: a user's use of a model on a day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyUsage {
    pub day: String,
    /// Empty for requests without a user.
    pub user_id: String,
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms_sum: i64,
    pub latency: LatencyHistogram,
}

impl DailyUsage {
    pub fn stats(&self) -> UsageStats {
        let mut totals = Totals::default();
        totals.add(self);
        totals.stats()
    }
}

/// Totals being summed.
#[derive(Debug, Clone, Default)]
struct Totals {
    requests: i64,
    errors: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    latency_ms_sum: i64,
    latency: LatencyHistogram,
}

impl Totals {
    fn add(&mut self, row: &DailyUsage) {
        self.requests += row.requests;
        self.errors += row.errors;
        self.prompt_tokens += row.prompt_tokens;
        self.completion_tokens += row.completion_tokens;
        self.latency_ms_sum += row.latency_ms_sum;
        self.latency.merge(&row.latency);
    }

    fn add_event(&mut self, event: &UsageEvent) {
        self.requests += 1;
        if event.outcome != "ok" {
            self.errors += 1;
        }
        self.prompt_tokens += event.prompt_tokens.max(0);
        self.completion_tokens += event.completion_tokens.max(0);
        self.latency_ms_sum += event.latency_ms.max(0);
        self.latency.record(event.latency_ms);
    }

    fn stats(&self) -> UsageStats {
        UsageStats {
            requests: self.requests,
            errors: self.errors,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            tokens: self.prompt_tokens + self.completion_tokens,
            latency_avg_ms: (self.requests > 0).then(|| {
                #[expect(clippy::cast_precision_loss, reason = "sums far below 2^52")]
                round_ms(self.latency_ms_sum as f64 / self.requests as f64)
            }),
            latency_p50_ms: self.latency.percentile(0.50).map(round_ms),
            latency_p95_ms: self.latency.percentile(0.95).map(round_ms),
        }
    }
}

/// Rows read per page by [`UsageReadModel::export`].
const EXPORT_PAGE: i64 = 1000;

/// Reads the read model.
#[derive(Debug, Clone)]
pub struct UsageReadModel {
    db: Db,
}

fn daily_from_row(row: &sqlx::any::AnyRow) -> Result<DailyUsage, StoreError> {
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
        latency: LatencyHistogram::from_json(&buckets)
            .map_err(|e| StoreError::Other(format!("usage_daily.latency_buckets: {e}")))?,
    })
}

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

impl UsageReadModel {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The report for a query. Rows are folded as they stream from the database, so memory
    /// follows the size of the answer, not the number of stored rows.
    pub async fn report(&self, query: &UsageQuery) -> Result<UsageReport, StoreError> {
        let from = format_day(query.range.from);
        let to = format_day(query.range.to);
        let mut totals = Totals::default();
        let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
        let mut days: BTreeMap<String, Totals> = BTreeMap::new();
        let user = query.user.map(|u| u.to_string());
        let mut rows = sqlx::query(select_daily!(
            "WHERE day >= $1 AND day <= $2 AND ($3 IS NULL OR user_id = $3)"
        ))
        .bind(&from)
        .bind(&to)
        .bind(user)
        .fetch(self.db.pool());
        while let Some(row) = rows.try_next().await? {
            let row = daily_from_row(&row)?;
            totals.add(&row);
            days.entry(row.day.clone()).or_default().add(&row);
            let key = match query.group_by {
                GroupBy::User => &row.user_id,
                GroupBy::Model => &row.model,
                GroupBy::Day => &row.day,
            };
            match groups.get_mut(key) {
                Some(group) => group.add(&row),
                None => groups.entry(key.clone()).or_default().add(&row),
            }
        }
        let mut rows: Vec<UsageRow> = groups
            .into_iter()
            .map(|(key, totals)| UsageRow {
                key,
                stats: totals.stats(),
            })
            .collect();
        if query.group_by != GroupBy::Day {
            // Most used first; the sort is stable, so ties keep the key order.
            rows.sort_by_key(|row| std::cmp::Reverse(row.stats.requests));
        }
        let series = query
            .range
            .days()
            .map(|date| {
                let day = format_day(date);
                let stats = days.get(&day).map(Totals::stats).unwrap_or_default();
                SeriesPoint { day, stats }
            })
            .collect();
        Ok(UsageReport {
            group_by: query.group_by.as_str().into(),
            from,
            to,
            totals: totals.stats(),
            rows,
            series,
        })
    }

    /// Every stored row of the range (optionally of one user) in day, user and model order,
    /// read a page at a time as the stream is polled.
    pub fn export(
        &self,
        range: DateRange,
        user: Option<Uuid>,
    ) -> impl Stream<Item = Result<DailyUsage, StoreError>> + Send + 'static {
        struct Cursor {
            db: Db,
            from: String,
            to: String,
            user: Option<String>,
            after: Option<(String, String, String)>,
            done: bool,
        }
        let cursor = Cursor {
            db: self.db.clone(),
            from: format_day(range.from),
            to: format_day(range.to),
            user: user.map(|u| u.to_string()),
            after: None,
            done: false,
        };
        futures::stream::try_unfold(cursor, |mut cursor| async move {
            if cursor.done {
                return Ok::<_, StoreError>(None);
            }
            let sql = select_daily!(
                "WHERE day >= $1 AND day <= $2 AND ($3 IS NULL OR user_id = $3) \
                 AND ($4 IS NULL OR (day, user_id, model) > ($4, $5, $6)) \
                 ORDER BY day, user_id, model LIMIT $7"
            );
            let (day, user_id, model) = match &cursor.after {
                Some((d, u, m)) => (Some(d.clone()), Some(u.clone()), Some(m.clone())),
                None => (None, None, None),
            };
            let rows = sqlx::query(sql)
                .bind(&cursor.from)
                .bind(&cursor.to)
                .bind(cursor.user.clone())
                .bind(day)
                .bind(user_id)
                .bind(model)
                .bind(EXPORT_PAGE)
                .fetch_all(cursor.db.pool())
                .await?;
            let page = rows
                .iter()
                .map(daily_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            cursor.done = i64::try_from(page.len()).unwrap_or(i64::MAX) < EXPORT_PAGE;
            cursor.after = page
                .last()
                .map(|r| (r.day.clone(), r.user_id.clone(), r.model.clone()));
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

// ---------------------------------------------------------------------------------------
// The projection
// ---------------------------------------------------------------------------------------

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

#[derive(Debug, thiserror::Error)]
enum ProjectionError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event stream ended")]
    Ended,
}

/// The consumer that keeps `usage_daily` up to date.
#[derive(Debug)]
pub struct UsageProjection;

impl UsageProjection {
    /// Consumes `usage.*` as [`CONSUMER`] on `tasks` until `shutdown`: deliveries are applied
    /// in batches, one transaction each, and acknowledged after the commit. When the stream
    /// or the database fails, it reconnects with backoff (200 ms doubling to 30 s); what was
    /// not acknowledged is delivered again and skipped if it was counted.
    pub fn start(
        db: Db,
        events: Arc<dyn DurableEvents>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        tasks.spawn(run(db, events, shutdown));
    }

    /// Counts the `usage.recorded` events among `events` that were not counted before, in one
    /// transaction; returns how many were new. Other kinds and malformed events are skipped.
    pub async fn apply(db: &Db, events: &[Envelope]) -> Result<usize, StoreError> {
        let mut seen = HashSet::new();
        let mut decoded = Vec::with_capacity(events.len());
        for envelope in events {
            if envelope.kind != USAGE_RECORDED {
                continue;
            }
            match serde_json::from_value::<UsageEvent>(envelope.data.clone()) {
                Ok(event) => {
                    if seen.insert(event.id.clone()) {
                        decoded.push(event);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a malformed usage event is skipped"),
            }
        }
        if decoded.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = decoded.iter().map(|e| e.id.as_str()).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Other(e.to_string()))?;
        let now = confab_core::now_ms();
        let mut tx = db.writer().begin().await?;
        // The first statement writes, so SQLite takes its write lock up front.
        let claim = match db.backend() {
            Backend::Sqlite => {
                "INSERT INTO usage_applied (event_id, applied_at) \
                 SELECT value, CAST($2 AS BIGINT) FROM json_each($1) WHERE true \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            }
            Backend::Postgres => {
                "INSERT INTO usage_applied (event_id, applied_at) \
                 SELECT value, CAST($2 AS BIGINT) \
                 FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS ids(value) \
                 ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            }
        };
        let fresh: HashSet<String> = sqlx::query(claim)
            .bind(ids)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("event_id"))
            .collect::<Result<_, _>>()?;
        let mut groups: BTreeMap<(String, String, String), Totals> = BTreeMap::new();
        for event in decoded.iter().filter(|e| fresh.contains(&e.id)) {
            let key = (
                day_of(event.at),
                event.user_id.clone().unwrap_or_default(),
                event.model.clone(),
            );
            groups.entry(key).or_default().add_event(event);
        }
        for ((day, user_id, model), totals) in groups {
            // The histogram merges in Rust: read it, add, write the sum back. The consumer is
            // the table's only writer, so nothing changes it in between.
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
                let stored = LatencyHistogram::from_json(&stored)
                    .map_err(|e| StoreError::Other(format!("usage_daily.latency_buckets: {e}")))?;
                latency.merge(&stored);
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
            .bind(now - REMEMBER_IDS_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(fresh.len())
    }
}

async fn run(db: Db, events: Arc<dyn DurableEvents>, shutdown: CancellationToken) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let error = tokio::select! {
            error = consume(&db, events.as_ref(), &mut backoff) => error,
            () = shutdown.cancelled() => return,
        };
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis(), "usage projection interrupted; reconnecting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Reads and applies deliveries until something fails.
async fn consume(db: &Db, events: &dyn DurableEvents, backoff: &mut Duration) -> ProjectionError {
    let stream = match events.consume(CONSUMER, TOPIC_PREFIX).await {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    // Whatever is ready at once, up to a batch, goes in one transaction.
    let mut batches = stream.ready_chunks(BATCH);
    while let Some(batch) = batches.next().await {
        let mut deliveries = Vec::with_capacity(batch.len());
        let mut failure = None;
        for item in batch {
            match item {
                Ok(delivery) => deliveries.push(delivery),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !deliveries.is_empty() {
            let envelopes: Vec<Envelope> = deliveries.iter().map(|d| d.event.clone()).collect();
            if let Err(e) = UsageProjection::apply(db, &envelopes).await {
                return e.into();
            }
            for delivery in deliveries {
                if let Err(e) = delivery.ack().await {
                    return e.into();
                }
            }
            *backoff = BACKOFF_FIRST;
        }
        if let Some(e) = failure {
            return e.into();
        }
    }
    ProjectionError::Ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced() {
        assert_eq!(LatencyHistogram::bucket_of(-5), 0);
        assert_eq!(LatencyHistogram::bucket_of(1), 0);
        assert_eq!(LatencyHistogram::bucket_of(2), 4);
        assert_eq!(LatencyHistogram::bucket_of(1024), 40);
        assert_eq!(LatencyHistogram::bucket_of(1025), 41);
        assert_eq!(LatencyHistogram::bucket_of(i64::MAX), BUCKETS - 1);
        for ms in [1, 2, 3, 7, 100, 999, 1000, 65_000, 700_000] {
            let bucket = LatencyHistogram::bucket_of(ms);
            #[expect(clippy::cast_precision_loss, reason = "small numbers")]
            let ms = ms as f64;
            assert!(ms <= LatencyHistogram::upper_bound(bucket) + 1e-9, "{ms}");
            assert!(
                ms > LatencyHistogram::lower_bound(bucket) || bucket == 0,
                "{ms}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.percentile(0.5), None);
        for ms in 1..=100 {
            h.record(ms);
        }
        let p50 = h.percentile(0.5).unwrap();
        let p95 = h.percentile(0.95).unwrap();
        // Within one bucket (a factor of 2^(1/4)) of the exact values 50 and 95.
        assert!((50.0 / 1.19..=50.0 * 1.19).contains(&p50), "{p50}");
        assert!((95.0 / 1.19..=95.0 * 1.19).contains(&p95), "{p95}");
        assert!(h.percentile(1.0).unwrap() <= LatencyHistogram::upper_bound(27));
        // One value: every percentile lies in its bucket.
        let mut one = LatencyHistogram::new();
        one.record(300);
        let bucket = LatencyHistogram::bucket_of(300);
        for p in [0.0, 0.5, 0.95, 1.0] {
            let v = one.percentile(p).unwrap();
            assert!(
                v > LatencyHistogram::lower_bound(bucket)
                    && v <= LatencyHistogram::upper_bound(bucket)
            );
        }
        // Beyond the last finite bound, the bound is the answer.
        let mut slow = LatencyHistogram::new();
        slow.record(i64::MAX);
        assert_eq!(
            slow.percentile(0.5),
            Some(LatencyHistogram::upper_bound(BUCKETS - 2))
        );
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_everything() {
        let mut all = LatencyHistogram::new();
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for ms in [3, 40, 40, 900] {
            a.record(ms);
            all.record(ms);
        }
        for ms in [1, 40, 20_000] {
            b.record(ms);
            all.record(ms);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        assert_eq!(merged.count(), 7);
        assert_eq!(merged.percentile(0.5), all.percentile(0.5));
        // Stored as a JSON array without trailing empty buckets, and read back the same.
        let json = merged.to_json();
        assert!(json.starts_with('[') && !json.ends_with(",0]"), "{json}");
        assert_eq!(LatencyHistogram::from_json(&json).unwrap(), merged);
        // Merging the empty histogram changes nothing.
        merged.merge(&LatencyHistogram::new());
        assert_eq!(merged, all);
    }

    #[test]
    fn dates_and_ranges_are_checked() {
        let today = parse_day("2026-03-10").unwrap();
        let range = DateRange::parse(None, None, today).unwrap();
        assert_eq!(format_day(range.from), "2026-02-09");
        assert_eq!(range.days().count(), 30);
        let one = DateRange::parse(Some("2026-01-01"), Some("2026-01-01"), today).unwrap();
        assert_eq!(
            one.days().map(format_day).collect::<Vec<_>>(),
            ["2026-01-01"]
        );
        for bad in [
            "2026-1-01",
            "2026-02-30",
            "20260101",
            "2026-01-01x",
            "yesterday",
            "+026-01-01",
        ] {
            assert_eq!(
                DateRange::parse(Some(bad), None, today).unwrap_err().code(),
                "invalid_date",
                "{bad}"
            );
        }
        assert_eq!(
            DateRange::parse(Some("2026-03-02"), Some("2026-03-01"), today)
                .unwrap_err()
                .code(),
            "invalid_range"
        );
        assert!(DateRange::parse(Some("2025-01-01"), Some("2025-12-31"), today).is_ok());
        assert_eq!(
            DateRange::parse(Some("2024-01-01"), Some("2025-01-01"), today)
                .unwrap_err()
                .code(),
            "invalid_range"
        );
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(
            "week".parse::<GroupBy>().unwrap_err().code(),
            "invalid_group_by"
        );
    }

    fn event(id: &str, at: i64, user: &str, model: &str, latency_ms: i64, ok: bool) -> Envelope {
        let mut envelope = Envelope::new(
            "usage.inference",
            USAGE_RECORDED,
            serde_json::json!({
                "id": id, "at": at, "user_id": user, "api_key_id": null, "model": model,
                "backend": "b", "prompt_tokens": 3, "completion_tokens": 5,
                "latency_ms": latency_ms, "ttft_ms": 1, "status": if ok { "ok" } else { "upstream_error" },
                "outcome": if ok { "ok" } else { "error" }, "cached": false,
            }),
        );
        envelope.at = at;
        envelope
    }

    #[tokio::test]
    async fn events_delivered_again_are_counted_once() {
        let test_db = confab_testkit::TestDb::new().await.unwrap();
        let db = Db::connect(
            &test_db.url,
            &confab_core::config::DatabaseConfig::default(),
        )
        .await
        .unwrap();
        crate::migrations().run(&db).await.unwrap();
        let user = Uuid::now_v7().to_string();
        let at = 1_795_308_378_000; // 2026-11-22
        let batch = vec![
            event("e1", at, &user, "m", 10, true),
            event("e2", at, &user, "m", 100, false),
            event("e3", at, &user, "other", 1000, true),
            // Repeated inside the batch, and an event of another kind.
            event("e1", at, &user, "m", 10, true),
            Envelope::new("usage.inference", "usage.other", serde_json::json!({})),
        ];
        assert_eq!(UsageProjection::apply(&db, &batch).await.unwrap(), 3);
        // The same batch again (a redelivery), then a later one overlapping it.
        assert_eq!(UsageProjection::apply(&db, &batch).await.unwrap(), 0);
        let later = vec![
            event("e2", at, &user, "m", 100, false),
            event("e4", at, &user, "m", 1, true),
        ];
        assert_eq!(UsageProjection::apply(&db, &later).await.unwrap(), 1);

        let model = UsageReadModel::new(db.clone());
        let range = DateRange::parse(Some("2026-11-22"), Some("2026-11-22"), today()).unwrap();
        let report = model
            .report(&UsageQuery {
                group_by: GroupBy::Model,
                range,
                user: None,
            })
            .await
            .unwrap();
        assert_eq!(report.totals.requests, 4);
        assert_eq!(report.totals.errors, 1);
        assert_eq!(report.totals.prompt_tokens, 12);
        assert_eq!(report.totals.completion_tokens, 20);
        assert_eq!(report.rows[0].key, "m");
        assert_eq!(report.rows[0].stats.requests, 3);
        assert_eq!(report.rows[0].stats.latency_avg_ms, Some(37));
        let exported: Vec<DailyUsage> = model.export(range, None).try_collect().await.unwrap();
        assert_eq!(exported.len(), 2);
        assert_eq!(exported[0].latency.count(), 3);
        db.close().await;
    }
}
