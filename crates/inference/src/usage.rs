//! Usage accounting: one record per request (user, key, model, backend, tokens, time to first
//! token, latency, outcome), queued without waiting and written in batches by a background
//! task, so the request path never waits for the database. Queryable per user, model and day.
//!
//! With a [`DurableEvents`] port, the writer also publishes every row as a `usage.recorded`
//! event on `usage.inference` (the admin service's usage statistics are built from them). It
//! does so after the batch is stored, from the table: rows carry a `published` flag set once
//! their events are durable, so an unreachable bus or a crash delays events but loses none
//! (a crash between publishing and marking publishes a row again; the event carries the row's
//! id so consumers drop the repeat). Rows that predate the flag are published once, the same
//! way: that is the backfill of a new read model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_bus::{DurableEvents, Envelope};
use confab_store::{Backend, Db, ServiceMigrations, StoreError};
use sqlx::Row;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// The inference service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "inference",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

const BATCH: usize = 256;
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const QUEUE: usize = 16_384;
/// Rows published per page; pages repeat while the record queue is empty.
const PUBLISH_PAGE: i64 = 512;
/// A publish that takes longer counts as failed, so a hanging bus cannot hold up the writer.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The topic of usage events.
pub const USAGE_TOPIC: &str = "usage.inference";
/// The kind of the event published for each usage row; its data is a [`UsageEvent`].
pub const USAGE_RECORDED: &str = "usage.recorded";

#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub at: i64,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub model: String,
    pub backend: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub ttft_ms: Option<i64>,
    pub latency_ms: i64,
    /// `ok` or an error code.
    pub status: String,
    pub cached: bool,
}

/// The UTC day of a millisecond instant, `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    let date = confab_core::id::ms_to_datetime(ms).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Queues records for the writer.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    queue: mpsc::Sender<UsageRecord>,
    dropped: Arc<AtomicU64>,
}

impl UsageRecorder {
    /// Starts the writer on `tasks`; it flushes and stops when `shutdown` is cancelled.
    pub fn start(db: Db, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        Self::start_with_events(db, None, tasks, shutdown)
    }

    /// The same, also publishing each stored row as a `usage.recorded` event when `events`
    /// is given (see the module's documentation).
    pub fn start_with_events(
        db: Db,
        events: Option<Arc<dyn DurableEvents>>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tasks.spawn(writer(db, events, receiver, shutdown));
        Self {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Never waits: when the writer is far behind, the record is counted and dropped.
    pub fn record(&self, record: UsageRecord) {
        if self.queue.try_send(record).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "usage queue full; records dropped");
            }
        }
    }
}

async fn writer(
    db: Db,
    events: Option<Arc<dyn DurableEvents>>,
    mut receiver: mpsc::Receiver<UsageRecord>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    // Rows may wait unpublished from an earlier run (or from before events existed).
    let mut unpublished = true;
    loop {
        tokio::select! {
            record = receiver.recv() => match record {
                Some(record) => {
                    batch.push(record);
                    if batch.len() >= BATCH {
                        unpublished |= flush(&db, &mut batch).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                unpublished |= flush(&db, &mut batch).await;
                if let (Some(events), true) = (&events, unpublished) {
                    unpublished = publish_pending(&db, events.as_ref(), &receiver).await;
                }
            }
            () = shutdown.cancelled() => {
                while let Ok(record) = receiver.try_recv() {
                    batch.push(record);
                }
                break;
            }
        }
    }
    flush(&db, &mut batch).await;
    if let Some(events) = &events {
        publish_pending(&db, events.as_ref(), &receiver).await;
    }
}

/// Writes the batch; true when rows were written.
async fn flush(db: &Db, batch: &mut Vec<UsageRecord>) -> bool {
    if batch.is_empty() {
        return false;
    }
    let count = batch.len();
    let written = match insert(db, batch).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, count, "usage records could not be written");
            false
        }
    };
    batch.clear();
    written
}

/// The data of a `usage.recorded` event: one usage row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageEvent {
    /// The usage row's id: the same row published twice carries the same id.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub user_id: Option<String>,
    pub api_key_id: Option<String>,
    pub model: String,
    pub backend: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    /// `ok` or an error code.
    pub status: String,
    /// `ok` or `error`.
    pub outcome: String,
    pub cached: bool,
}

/// Publishes unpublished rows, oldest first, a page at a time while no records wait, and
/// marks those published. Returns whether rows may still be waiting (a failure, or more
/// than was published); they are tried again at the next tick. Never waits for long on an
/// unreachable bus: the first failure ends the round.
async fn publish_pending(
    db: &Db,
    events: &dyn DurableEvents,
    receiver: &mpsc::Receiver<UsageRecord>,
) -> bool {
    loop {
        let page = match unpublished_rows(db, PUBLISH_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "unpublished usage rows could not be read");
                return true;
            }
        };
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= PUBLISH_PAGE;
        let mut published = Vec::with_capacity(page.len());
        let mut failed = false;
        for event in page {
            let id = event.id.clone();
            let data = match serde_json::to_value(&event) {
                Ok(data) => data,
                Err(e) => {
                    tracing::error!(error = %e, "a usage event could not be encoded");
                    failed = true;
                    break;
                }
            };
            let mut envelope = Envelope::new(USAGE_TOPIC, USAGE_RECORDED, data);
            envelope.at = event.at;
            let error = match tokio::time::timeout(PUBLISH_TIMEOUT, events.publish(envelope)).await
            {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer in {} s", PUBLISH_TIMEOUT.as_secs())),
            };
            if let Some(error) = error {
                tracing::warn!(error, "usage events could not be published; retrying later");
                failed = true;
                break;
            }
            published.push(id);
        }
        if !published.is_empty()
            && let Err(e) = mark_published(db, &published).await
        {
            // Published again next time; consumers drop repeated ids.
            tracing::warn!(error = %e, "published usage rows could not be marked");
            return true;
        }
        if failed {
            return true;
        }
        if !full {
            return false;
        }
        if !receiver.is_empty() {
            return true;
        }
    }
}

async fn unpublished_rows(db: &Db, limit: i64) -> Result<Vec<UsageEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, user_id, api_key_id, model, backend, prompt_tokens, completion_tokens, \
         latency_ms, ttft_ms, status, cached FROM inference_usage WHERE published = 0 \
         ORDER BY at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
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
                outcome: if status == "ok" { "ok" } else { "error" }.to_owned(),
                status,
                cached: row.try_get::<i64, _>("cached")? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

async fn mark_published(db: &Db, ids: &[String]) -> Result<(), StoreError> {
    let json = serde_json::to_string(ids).map_err(|e| StoreError::Other(e.to_string()))?;
    let sql = match db.backend() {
        Backend::Sqlite => {
            "UPDATE inference_usage SET published = 1 \
             WHERE id IN (SELECT value FROM json_each($1))"
        }
        Backend::Postgres => {
            "UPDATE inference_usage SET published = 1 \
             WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))"
        }
    };
    sqlx::query(sql).bind(json).execute(db.writer()).await?;
    Ok(())
}

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

/// Writes a batch as one statement whose one parameter is the rows as a JSON array: a
/// single round trip and a single parse, where a statement per row (or a multi-row VALUES
/// list, whose parameter lookup grows with the square of its size in SQLite) costs far more.
async fn insert(db: &Db, batch: &[UsageRecord]) -> Result<(), StoreError> {
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
    let sql = match db.backend() {
        Backend::Sqlite => usage_insert!("jsonb_each(jsonb($1))"),
        Backend::Postgres => {
            usage_insert!("jsonb_array_elements(CAST($1 AS jsonb)) AS rows(value)")
        }
    };
    sqlx::query(sql).bind(json).execute(db.writer()).await?;
    Ok(())
}

/// Totals of one user, model and day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    pub day: String,
    pub user_id: Option<String>,
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Reads usage back.
#[derive(Debug, Clone)]
pub struct UsageStore {
    db: Db,
}

impl UsageStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Totals per day, user and model between two days (inclusive), optionally for one user.
    pub async fn summary(
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

    /// Tokens a user (or an API key) used on a day, for the daily token limit.
    pub async fn tokens_on(&self, subject: Subject, day: &str) -> Result<u64, StoreError> {
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

/// Whose limits and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(Uuid),
    Key(Uuid),
}

impl Subject {
    pub fn id(self) -> Uuid {
        match self {
            Subject::User(id) | Subject::Key(id) => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_308_378_000), "2026-11-22");
    }

    /// A bus that refuses the first publishes, then keeps what it is given.
    struct Flaky {
        failures: AtomicU64,
        events: parking_lot::Mutex<Vec<Envelope>>,
    }

    #[async_trait::async_trait]
    impl DurableEvents for Flaky {
        async fn publish(&self, event: Envelope) -> Result<(), confab_bus::BusError> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(confab_bus::BusError::Unavailable("down".into()));
            }
            self.events.lock().push(event);
            Ok(())
        }

        async fn consume(
            &self,
            _consumer: &str,
            _topic_prefix: &str,
        ) -> Result<
            futures::stream::BoxStream<'static, Result<confab_bus::Delivery, confab_bus::BusError>>,
            confab_bus::BusError,
        > {
            Err(confab_bus::BusError::Unavailable(
                "not for consuming".into(),
            ))
        }
    }

    #[tokio::test]
    async fn a_failing_bus_delays_usage_events_but_loses_none() {
        let test_db = confab_testkit::TestDb::new().await.unwrap();
        let db = Db::connect(
            &test_db.url,
            &confab_core::config::DatabaseConfig::default(),
        )
        .await
        .unwrap();
        migrations().run(&db).await.unwrap();
        let bus = Arc::new(Flaky {
            failures: AtomicU64::new(2),
            events: parking_lot::Mutex::new(Vec::new()),
        });
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let recorder = UsageRecorder::start_with_events(
            db.clone(),
            Some(bus.clone()),
            &tasks,
            shutdown.clone(),
        );
        for (i, status) in ["ok", "upstream_error", "ok"].into_iter().enumerate() {
            recorder.record(UsageRecord {
                at: confab_core::now_ms(),
                user_id: Some(Uuid::now_v7()),
                api_key_id: None,
                model: "m".into(),
                backend: "b".into(),
                prompt_tokens: 1,
                completion_tokens: u32::try_from(i).unwrap(),
                ttft_ms: None,
                latency_ms: 7,
                status: status.into(),
                cached: false,
            });
        }
        let unpublished = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inference_usage WHERE published = 0")
                .fetch_one(db.pool())
                .await
                .unwrap()
        };
        for _ in 0..500 {
            if bus.events.lock().len() >= 3 && unpublished().await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(unpublished().await, 0);
        let events = bus.events.lock().clone();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.topic == USAGE_TOPIC && e.kind == USAGE_RECORDED)
        );
        let data: Vec<UsageEvent> = events
            .iter()
            .map(|e| serde_json::from_value(e.data.clone()).unwrap())
            .collect();
        let ids: std::collections::HashSet<&str> = data.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        let mut outcomes: Vec<&str> = data.iter().map(|d| d.outcome.as_str()).collect();
        outcomes.sort_unstable();
        assert_eq!(outcomes, ["error", "ok", "ok"]);
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        db.close().await;
    }
}
