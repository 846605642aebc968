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
//!
//! The records are kept through the [`UsageLog`] port (which the daily token limits of
//! [`crate::limits`] read too); its SQL adapter is [`SqlUsageLog`].

mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// Rows published per page; pages repeat while the record queue is empty.
const PUBLISH_PAGE: usize = 512;
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
        tasks.spawn(writer(log, events, receiver, shutdown));
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
    log: Arc<dyn UsageLog>,
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
                        unpublished |= flush(log.as_ref(), &mut batch).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                unpublished |= flush(log.as_ref(), &mut batch).await;
                if let (Some(events), true) = (&events, unpublished) {
                    unpublished = publish_pending(log.as_ref(), events.as_ref(), &receiver).await;
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
    flush(log.as_ref(), &mut batch).await;
    if let Some(events) = &events {
        publish_pending(log.as_ref(), events.as_ref(), &receiver).await;
    }
}

/// Writes the batch; true when rows were written.
async fn flush(log: &dyn UsageLog, batch: &mut Vec<UsageRecord>) -> bool {
    if batch.is_empty() {
        return false;
    }
    let count = batch.len();
    let written = match log.append(batch).await {
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

impl UsageEvent {
    /// The outcome of a record with this status: `ok`, or `error` for every error code.
    pub fn outcome_of(status: &str) -> &'static str {
        if status == "ok" { "ok" } else { "error" }
    }
}

/// Publishes unpublished rows, oldest first, a page at a time while no records wait, and
/// marks those published. Returns whether rows may still be waiting (a failure, or more
/// than was published); they are tried again at the next tick. Never waits for long on an
/// unreachable bus: the first failure ends the round.
async fn publish_pending(
    log: &dyn UsageLog,
    events: &dyn DurableEvents,
    receiver: &mpsc::Receiver<UsageRecord>,
) -> bool {
    loop {
        let page = match log.unpublished(PUBLISH_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "unpublished usage rows could not be read");
                return true;
            }
        };
        let full = page.len() >= PUBLISH_PAGE;
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
            && let Err(e) = log.mark_published(&published).await
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
