//! Usage accounting: one record per request (user, key, model, backend, tokens, time to first
//! token, latency, outcome), queued without waiting and written in batches by a background
//! task, so the request path never waits for the database. Queryable per user, model and day.
//!
//! With a [`DurableEvents`] port, every stored row is also published on `usage.inference`
//! (the admin service's usage statistics are built from them), the rows of a stored batch
//! together in `usage.batch` events of up to [`ROWS_PER_EVENT`] rows (one event per row cost
//! the bus and its consumer a message, a store and an acknowledgement each), by a publisher
//! task of its own, so a slow bus never holds up the writer. A row's id waits in the
//! log's outbox until its event is durable: an unreachable bus or a crash delays events but
//! loses none (a crash between publishing and marking publishes a row again; the event carries
//! the row's id so consumers drop the repeat). The writer hands each stored batch's events to
//! the publisher; when the publisher is behind (or after a failure, or at start) it pages
//! through the outbox instead.
//!
//! The records are kept through the [`UsageLog`] port (which the daily token limits of
//! [`crate::limits`] read too); its SQL adapter is [`SqlUsageLog`].

mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use confab_bus::{DurableEvents, Envelope};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use crate::ports::UsageLog;
pub use store::SqlUsageLog;

const BATCH: usize = 256;
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const QUEUE: usize = 16_384;
/// Stored batches waiting for the publisher; past that, their events wait in the outbox.
const PUBLISH_QUEUE: usize = 64;
/// Rows published per page of the outbox.
const PUBLISH_PAGE: usize = 512;
/// A publish that takes longer counts as failed, so a hanging bus cannot hold up the writer.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The topic of usage events.
pub const USAGE_TOPIC: &str = "usage.inference";
/// The kind of an event of one usage row, its data a [`UsageEvent`]: what earlier versions
/// published, still understood by consumers.
pub const USAGE_RECORDED: &str = "usage.recorded";
/// The kind of the events published now: rows stored together, the data a [`UsageBatch`].
pub const USAGE_BATCH: &str = "usage.batch";
/// Rows carried by one `usage.batch` event at most (about 300 bytes each).
pub const ROWS_PER_EVENT: usize = 256;

/// The data of a `usage.batch` event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageBatch {
    pub rows: Vec<UsageEvent>,
}

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
    pub fn start(log: Arc<dyn UsageLog>, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        Self::start_with_events(log, None, tasks, shutdown)
    }

    /// The same, also publishing each stored row as a `usage.recorded` event when `events`
    /// is given (see the module's documentation).
    pub fn start_with_events(
        log: Arc<dyn UsageLog>,
        events: Option<Arc<dyn DurableEvents>>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        match events {
            None => {
                tasks.spawn(writer(log, None, receiver, shutdown));
            }
            Some(events) => {
                let (stored, batches) = mpsc::channel(PUBLISH_QUEUE);
                let behind = Arc::new(AtomicBool::new(true));
                let handoff = Handoff {
                    stored,
                    behind: behind.clone(),
                };
                tasks.spawn(writer(log.clone(), Some(handoff), receiver, shutdown));
                tasks.spawn(publisher(log, events, batches, behind));
            }
        }
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

/// The writer's way to the publisher: the stored batches' events, and a flag raised when a
/// batch could not be handed over (its events wait in the outbox).
struct Handoff {
    stored: mpsc::Sender<Vec<UsageEvent>>,
    behind: Arc<AtomicBool>,
}

async fn writer(
    log: Arc<dyn UsageLog>,
    handoff: Option<Handoff>,
    mut receiver: mpsc::Receiver<UsageRecord>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            record = receiver.recv() => match record {
                Some(record) => {
                    batch.push(record);
                    if batch.len() >= BATCH {
                        flush(log.as_ref(), &mut batch, handoff.as_ref()).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => flush(log.as_ref(), &mut batch, handoff.as_ref()).await,
            () = shutdown.cancelled() => {
                while let Ok(record) = receiver.try_recv() {
                    batch.push(record);
                }
                break;
            }
        }
    }
    flush(log.as_ref(), &mut batch, handoff.as_ref()).await;
    // Dropping the handoff ends the publisher once it has published what it was given.
}

/// Writes the batch and hands its events to the publisher.
async fn flush(log: &dyn UsageLog, batch: &mut Vec<UsageRecord>, handoff: Option<&Handoff>) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len();
    match log.append(batch).await {
        Ok(events) => {
            if let Some(handoff) = handoff
                && handoff.stored.try_send(events).is_err()
            {
                handoff.behind.store(true, Ordering::Relaxed);
            }
        }
        Err(e) => tracing::error!(error = %e, count, "usage records could not be written"),
    }
    batch.clear();
}

/// Publishes what the writer stored; pages through the outbox when `behind` (at start, after
/// a failure, after a batch it could not take). Ends when the writer has ended.
async fn publisher(
    log: Arc<dyn UsageLog>,
    events: Arc<dyn DurableEvents>,
    mut batches: mpsc::Receiver<Vec<UsageEvent>>,
    behind: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            batch = batches.recv() => match batch {
                Some(batch) => {
                    if !publish(log.as_ref(), events.as_ref(), batch).await {
                        behind.store(true, Ordering::Relaxed);
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if behind.swap(false, Ordering::Relaxed)
                    && publish_pending(log.as_ref(), events.as_ref()).await
                {
                    behind.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    publish_pending(log.as_ref(), events.as_ref()).await;
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

impl UsageEvent {
    /// The outcome of a record with this status: `ok`, or `error` for every error code.
    pub fn outcome_of(status: &str) -> &'static str {
        if status == "ok" { "ok" } else { "error" }
    }
}

/// Publishes the outbox's rows, oldest first, a page at a time. Returns whether rows may
/// still be waiting (a failure); they are tried again at the next tick. Never waits for long
/// on an unreachable bus: the first failure ends the round.
async fn publish_pending(log: &dyn UsageLog, events: &dyn DurableEvents) -> bool {
    loop {
        let page = match log.unpublished(PUBLISH_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "unpublished usage rows could not be read");
                return true;
            }
        };
        let full = page.len() >= PUBLISH_PAGE;
        if !publish(log, events, page).await {
            return true;
        }
        if !full {
            return false;
        }
    }
}

/// Publishes `batch` in order, in `usage.batch` events published together, and marks it
/// published; false on a failure.
async fn publish(log: &dyn UsageLog, events: &dyn DurableEvents, batch: Vec<UsageEvent>) -> bool {
    if batch.is_empty() {
        return true;
    }
    let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    let mut envelopes = Vec::with_capacity(batch.len().div_ceil(ROWS_PER_EVENT));
    for rows in batch.chunks(ROWS_PER_EVENT) {
        let at = rows.first().map_or(0, |r| r.at);
        let data = match serde_json::to_value(UsageBatch {
            rows: rows.to_vec(),
        }) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(error = %e, "usage events could not be encoded");
                return false;
            }
        };
        let mut envelope = Envelope::new(USAGE_TOPIC, USAGE_BATCH, data);
        envelope.at = at;
        envelopes.push(envelope);
    }
    let error = match tokio::time::timeout(PUBLISH_TIMEOUT, events.publish_all(envelopes)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer in {} s", PUBLISH_TIMEOUT.as_secs())),
    };
    if let Some(error) = error {
        // Part of the batch may be stored: all of it is published again later, and
        // consumers drop repeated ids.
        tracing::warn!(error, "usage events could not be published; retrying later");
        return false;
    }
    if let Err(e) = log.mark_published(&ids).await {
        // Published again next time; consumers drop repeated ids.
        tracing::warn!(error = %e, "published usage rows could not be marked");
        return false;
    }
    true
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

    #[test]
    fn outcomes_are_ok_or_error() {
        assert_eq!(UsageEvent::outcome_of("ok"), "ok");
        for status in ["upstream_error", "cancelled", "incomplete", ""] {
            assert_eq!(UsageEvent::outcome_of(status), "error", "{status}");
        }
    }
}
