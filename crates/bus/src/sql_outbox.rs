//! [`DurableEvents`] in the database: an outbox table of events numbered in commit order
//! (`bus_events.seq`) and one row per named consumer holding the last sequence number it
//! acknowledged (`bus_consumers.position`). A consumer reads the events after its position
//! in batches, then waits for a publish in this process (or polls, for other processes).
//!
//! Acknowledging `n` means every event up to `n` is handled for that consumer: positions
//! only move forward, so an ack that arrives late changes nothing, but a consumer that acks
//! out of order may skip an unacknowledged event after a restart. Consumers ack in order.
//!
//! On PostgreSQL a sequence number is taken when the insert runs, not when it commits, so
//! two concurrent publishers could commit 8 after a reader saw 9 and moved past it.
//! Publishers therefore take a table lock that only they conflict on, one at a time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_store::{Backend, Db, StoreError};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::Row;
use tokio::sync::watch;

use crate::{BusError, Delivery, DurableEvents, Envelope};

/// Events read per query.
const BATCH: i64 = 256;
/// Sequence numbers one read looks through at most: a consumer of a rare topic moves past
/// other topics' events a window at a time, instead of scanning all of them again at every
/// read while its position stays behind (work that grew with the log).
const WINDOW: i64 = 4096;
/// How often a consumer whose events are rare saves how far it has looked, so `prune` is
/// not held back by it.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// How consumers read: the window and how often a position is saved.
#[derive(Debug, Clone, Copy)]
struct Reading {
    window: i64,
    save_every: Duration,
}

/// The durable event log in the database; its tables come with the bus [`crate::migrations`].
#[derive(Clone)]
pub struct SqlOutbox {
    db: Db,
    /// Bumped on every publish in this process, so waiting consumers read at once.
    published: Arc<watch::Sender<u64>>,
    poll: Duration,
    reading: Reading,
}

impl std::fmt::Debug for SqlOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlOutbox")
            .field("backend", &self.db.backend())
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl SqlOutbox {
    /// The outbox over `db`; caught-up consumers look for events from other processes every
    /// 500 ms.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            published: Arc::new(watch::Sender::new(0)),
            poll: Duration::from_millis(500),
            reading: Reading {
                window: WINDOW,
                save_every: SAVE_EVERY,
            },
        }
    }

    /// Consumers look through at most `window` sequence numbers per read (at least 1), and a
    /// consumer passing other topics' events saves its position at most every `save_every`.
    pub fn with_reading(mut self, window: i64, save_every: Duration) -> Self {
        self.reading = Reading {
            window: window.max(1),
            save_every,
        };
        self
    }

    /// How often caught-up consumers look for events published by other processes.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Deletes events published before `before_ms` that every consumer has acknowledged;
    /// returns how many went. (A consumer that has never consumed yet does not hold events
    /// back: it starts at the oldest event still kept.)
    pub async fn prune(&self, before_ms: i64) -> Result<u64, BusError> {
        let done = sqlx::query(
            "DELETE FROM bus_events WHERE at < $1 \
             AND seq <= (SELECT COALESCE(MIN(position), 0) FROM bus_consumers)",
        )
        .bind(before_ms)
        .execute(self.db.writer())
        .await
        .map_err(bus_error)?;
        Ok(done.rows_affected())
    }

    /// A consumer's position: the last sequence number it acknowledged (0 for none).
    pub async fn position(&self, consumer: &str) -> Result<u64, BusError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM bus_consumers WHERE name = $1")
                .bind(consumer)
                .fetch_optional(self.db.pool())
                .await
                .map_err(bus_error)?;
        Ok(to_u64(position.unwrap_or(0)))
    }
}

fn bus_error(error: sqlx::Error) -> BusError {
    BusError::Unavailable(StoreError::from(error).to_string())
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One event as a publish batch carries it to the database.
#[derive(serde::Serialize)]
struct OutboxRow<'a> {
    topic: &'a str,
    kind: &'a str,
    data: String,
    at: i64,
}

/// One consumer's reading state.
struct Reader {
    db: Db,
    name: String,
    prefix: String,
    /// How far this stream has looked: every event up to it was read (or is not its topic's).
    after: i64,
    buffer: VecDeque<Delivery>,
    published: watch::Receiver<u64>,
    poll: Duration,
    /// A read failed: wait a poll interval before the next.
    failed: bool,
    /// The last sequence number handed out, and the last one the consumer acknowledged.
    delivered: i64,
    acked: Arc<AtomicI64>,
    /// The position this reader saved itself, and when.
    saved: i64,
    saved_at: Option<Instant>,
    reading: Reading,
}

impl Reader {
    /// The next events after `after`, within a window; true when more may follow at once.
    async fn read(&mut self) -> Result<bool, BusError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM bus_events")
            .fetch_one(self.db.pool())
            .await
            .map_err(bus_error)?;
        // Publishers commit in sequence order (see the module), so everything up to the
        // highest visible number is there.
        let Some(head) = head.filter(|head| *head > self.after) else {
            return Ok(false);
        };
        let upper = head.min(self.after.saturating_add(self.reading.window));
        let rows = sqlx::query(
            "SELECT seq, topic, kind, data, at FROM bus_events \
             WHERE seq > $1 AND seq <= $2 AND substr(topic, 1, length($3)) = $3 \
             ORDER BY seq LIMIT $4",
        )
        .bind(self.after)
        .bind(upper)
        .bind(self.prefix.as_str())
        .bind(BATCH)
        .fetch_all(self.db.pool())
        .await
        .map_err(bus_error)?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= BATCH;
        for row in rows {
            let seq: i64 = row.try_get("seq").map_err(bus_error)?;
            let data: String = row.try_get("data").map_err(bus_error)?;
            let event = Envelope {
                topic: row.try_get("topic").map_err(bus_error)?,
                kind: row.try_get("kind").map_err(bus_error)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                at: row.try_get("at").map_err(bus_error)?,
            };
            let db = self.db.clone();
            let name = self.name.clone();
            let acked = self.acked.clone();
            self.buffer
                .push_back(Delivery::positional(event, to_u64(seq), move || {
                    Box::pin(async move {
                        ack(&db, &name, seq).await?;
                        acked.fetch_max(seq, Ordering::Relaxed);
                        Ok(())
                    })
                }));
            self.after = seq;
        }
        if !full {
            // The whole window was read.
            self.after = upper;
        }
        Ok(self.after < head)
    }

    /// With nothing handed out unacknowledged and nothing buffered, saves how far this
    /// stream has looked (at most every `save_every`): events of other topics do not hold
    /// the position of a consumer whose own events are rare.
    async fn save_position(&mut self) {
        let settled = self.buffer.is_empty()
            && self.acked.load(Ordering::Relaxed) >= self.delivered
            && self.after > self.saved.max(self.acked.load(Ordering::Relaxed));
        let due = self
            .saved_at
            .is_none_or(|at| at.elapsed() >= self.reading.save_every);
        if !settled || !due {
            return;
        }
        match ack(&self.db, &self.name, self.after).await {
            Ok(()) => {
                self.saved = self.after;
                self.saved_at = Some(Instant::now());
            }
            Err(e) => tracing::debug!(consumer = %self.name, error = %e, "position not saved"),
        }
    }

    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            if let Some(delivery) = self.buffer.pop_front() {
                self.delivered = to_i64(delivery.seq);
                return Ok(delivery);
            }
            if self.failed {
                self.failed = false;
                tokio::time::sleep(self.poll).await;
            }
            // Seen before reading: a publish after this point wakes the wait below.
            self.published.borrow_and_update();
            let more = match self.read().await {
                Ok(more) => more,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            };
            if self.buffer.is_empty() {
                self.save_position().await;
                if !more {
                    // A closed channel cannot happen while the outbox lives; then poll alone.
                    let _ = tokio::time::timeout(self.poll, self.published.changed()).await;
                }
            }
        }
    }
}

async fn ack(db: &Db, consumer: &str, seq: i64) -> Result<(), BusError> {
    sqlx::query(
        "UPDATE bus_consumers SET position = $1, updated_at = $2 WHERE name = $3 AND position < $1",
    )
    .bind(seq)
    .bind(confab_core::now_ms())
    .bind(consumer)
    .execute(db.writer())
    .await
    .map_err(bus_error)?;
    Ok(())
}

#[async_trait]
impl DurableEvents for SqlOutbox {
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        self.publish_all(vec![event]).await
    }

    /// One transaction and one insert for the whole batch, its rows numbered in order.
    async fn publish_all(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<OutboxRow<'_>> = events
            .iter()
            .map(|e| OutboxRow {
                topic: &e.topic,
                kind: &e.kind,
                data: e.data.to_string(),
                at: e.at,
            })
            .collect();
        let json = serde_json::to_string(&rows)
            .map_err(|e| BusError::Unavailable(format!("events not encoded: {e}")))?;
        let mut tx = self.db.writer().begin().await.map_err(bus_error)?;
        let insert = match self.db.backend() {
            Backend::Sqlite => {
                "INSERT INTO bus_events (topic, kind, data, at) \
                 SELECT value ->> 'topic', value ->> 'kind', value ->> 'data', value ->> 'at' \
                 FROM jsonb_each(jsonb($1)) ORDER BY key"
            }
            Backend::Postgres => {
                sqlx::query("LOCK TABLE bus_events IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(bus_error)?;
                "INSERT INTO bus_events (topic, kind, data, at) \
                 SELECT value ->> 'topic', value ->> 'kind', value ->> 'data', \
                 CAST(value ->> 'at' AS BIGINT) \
                 FROM jsonb_array_elements(CAST($1 AS jsonb)) WITH ORDINALITY AS rows(value, n) \
                 ORDER BY n"
            }
        };
        sqlx::query(insert)
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(bus_error)?;
        tx.commit().await.map_err(bus_error)?;
        self.published.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &str,
        topic_prefix: &str,
    ) -> Result<BoxStream<'static, Result<Delivery, BusError>>, BusError> {
        sqlx::query(
            "INSERT INTO bus_consumers (name, position, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(consumer)
        .bind(confab_core::now_ms())
        .execute(self.db.writer())
        .await
        .map_err(bus_error)?;
        let after = to_i64(self.position(consumer).await?);
        let reader = Reader {
            db: self.db.clone(),
            name: consumer.to_owned(),
            prefix: topic_prefix.to_owned(),
            after,
            buffer: VecDeque::new(),
            published: self.published.subscribe(),
            poll: self.poll,
            failed: false,
            delivered: after,
            acked: Arc::new(AtomicI64::new(after)),
            saved: after,
            saved_at: None,
            reading: self.reading,
        };
        Ok(futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next().await;
            Some((item, reader))
        })
        .boxed())
    }
}
