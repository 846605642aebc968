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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{CONSUMER, TOPIC_PREFIX, USAGE_RECORDED, UsageEvent};
use crate::ports::UsageStatsStore;

/// Events applied per transaction at most.
const BATCH: usize = 256;
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

/// The `usage.recorded` events among `events`, each id once; other kinds are left out and
/// malformed events skipped (and logged).
pub fn decode(events: &[Envelope]) -> Vec<UsageEvent> {
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
            if let Err(e) = UsageProjection::apply(store, &envelopes).await {
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
}
