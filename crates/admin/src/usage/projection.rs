//! [`UsageProjection`]: the durable consumer of `usage.recorded` events that keeps the daily
//! rows up to date through the [`UsageStatsStore`] port. Delivery is at-least-once, so the
//! store skips events it applied before; this module decodes deliveries, batches them and
//! acknowledges them once they are stored.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_bus::{BusError, DurableEvents, Envelope};
use confab_store::StoreError;
use futures::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{CONSUMER, TOPIC_PREFIX, USAGE_BATCH, USAGE_RECORDED, UsageEvent};
use crate::ports::UsageStatsStore;

/// Events applied per transaction at most.
const BATCH: usize = 256;
/// How long a batch waits to fill: under load, fewer and larger transactions (the read model
/// is at most this much later); a lone event still lands within it.
const GATHER: Duration = Duration::from_millis(50);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum ProjectionError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event stream ended")]
    Ended,
}

/// The usage rows of the `usage.batch` and `usage.recorded` events among `events`, each id
/// once; other kinds are left out and malformed rows skipped (and logged).
pub fn decode(events: &[Envelope]) -> Vec<UsageEvent> {
    let mut seen = HashSet::new();
    let mut decoded = Vec::with_capacity(events.len());
    let mut keep = |row: &serde_json::Value| match UsageEvent::deserialize(row) {
        Ok(event) => {
            if seen.insert(event.id.clone()) {
                decoded.push(event);
            }
        }
        Err(e) => tracing::warn!(error = %e, "a malformed usage row is skipped"),
    };
    for envelope in events {
        match envelope.kind.as_str() {
            USAGE_RECORDED => keep(&envelope.data),
            USAGE_BATCH => match envelope.data.get("rows").and_then(|r| r.as_array()) {
                Some(rows) => rows.iter().for_each(&mut keep),
                None => tracing::warn!("a usage batch without rows is skipped"),
            },
            _ => {}
        }
    }
    decoded
}

/// The consumer that keeps the usage statistics up to date.
#[derive(Debug)]
pub struct UsageProjection;

impl UsageProjection {
    /// Consumes `usage.*` as [`CONSUMER`] on `tasks` until `shutdown`: deliveries are applied
    /// in batches, one transaction each, and acknowledged after the commit. When the stream
    /// or the store fails, it reconnects with backoff (200 ms doubling to 30 s); what was
    /// not acknowledged is delivered again and skipped if it was counted.
    pub fn start(
        store: Arc<dyn UsageStatsStore>,
        events: Arc<dyn DurableEvents>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        tasks.spawn(run(store, events, shutdown));
    }

    /// Counts the `usage.recorded` events among `events` that were not counted before, in one
    /// transaction; returns how many were new. Other kinds and malformed events are skipped.
    pub async fn apply(
        store: &dyn UsageStatsStore,
        events: &[Envelope],
    ) -> Result<usize, StoreError> {
        let decoded = decode(events);
        if decoded.is_empty() {
            return Ok(0);
        }
        store.apply(&decoded, confab_core::now_ms()).await
    }
}

async fn run(
    store: Arc<dyn UsageStatsStore>,
    events: Arc<dyn DurableEvents>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let error = tokio::select! {
            error = consume(store.as_ref(), events.as_ref(), &mut backoff) => error,
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
async fn consume(
    store: &dyn UsageStatsStore,
    events: &dyn DurableEvents,
    backoff: &mut Duration,
) -> ProjectionError {
    let stream = match events.consume(CONSUMER, TOPIC_PREFIX).await {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    // What arrives within GATHER, up to a batch, goes in one transaction.
    let batches = tokio_stream::StreamExt::chunks_timeout(stream, BATCH, GATHER);
    tokio::pin!(batches);
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
            if let Err(e) = UsageProjection::apply(store, &envelopes).await {
                return e.into();
            }
            if let Err(e) = confab_bus::ack_all(deliveries).await {
                return e.into();
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

    fn recorded(id: &str) -> Envelope {
        Envelope::new(
            "usage.inference",
            USAGE_RECORDED,
            serde_json::json!({
                "id": id, "at": 1, "user_id": null, "model": "m", "prompt_tokens": 1,
                "completion_tokens": 2, "latency_ms": 3, "outcome": "ok",
            }),
        )
    }

    #[test]
    fn only_usage_events_are_decoded_each_id_once() {
        let events = [
            recorded("a"),
            Envelope::new("usage.inference", "usage.other", serde_json::json!({})),
            recorded("b"),
            recorded("a"),
            Envelope::new(
                "usage.inference",
                USAGE_RECORDED,
                serde_json::json!({"id": "broken"}),
            ),
        ];
        let ids: Vec<String> = decode(&events).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn batches_are_decoded_row_by_row_each_id_once() {
        let row = |id: &str| recorded(id).data;
        let events = [
            Envelope::new(
                "usage.inference",
                USAGE_BATCH,
                serde_json::json!({"rows": [row("a"), {"id": "broken"}, row("b")]}),
            ),
            recorded("b"),
            Envelope::new(
                "usage.inference",
                USAGE_BATCH,
                serde_json::json!({"no": []}),
            ),
            Envelope::new(
                "usage.inference",
                USAGE_BATCH,
                serde_json::json!({"rows": [row("c"), row("a")]}),
            ),
        ];
        let ids: Vec<String> = decode(&events).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
