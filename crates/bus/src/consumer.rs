//! Running a durable consumer for the life of the process: [`run_consumer`] reads a topic
//! prefix as a named consumer, hands each delivery to a [`DeliveryHandler`] and acknowledges
//! it once the handler succeeded. When the stream, the handler or the acknowledgement fails
//! it reconnects with backoff (200 ms doubling to 30 s, back to 200 ms after a success); what
//! was not acknowledged is delivered again, so handlers are idempotent.
//!
//! Several processes may run the same consumer name (replicas of one service): over NATS
//! JetStream they share its deliveries; over the SQL outbox each reads every event, which an
//! idempotent handler makes harmless.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{BusError, DurableEvents, Envelope};

const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why a handler could not handle an event now (it will be delivered again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl From<BusError> for HandlerError {
    fn from(error: BusError) -> Self {
        HandlerError(error.to_string())
    }
}

/// What a durable consumer does with each event of its topics.
#[async_trait]
pub trait DeliveryHandler: Send + Sync {
    /// Handles one event; `Ok` acknowledges it. Events the handler does not know should be
    /// `Ok` (skipped), or they would come back forever.
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError>;
}

/// Runs `handler` as the durable consumer `consumer` of `topic_prefix` on `tasks` until
/// `shutdown` (see the module documentation).
pub fn run_consumer(
    events: Arc<dyn DurableEvents>,
    consumer: &str,
    topic_prefix: &str,
    handler: Arc<dyn DeliveryHandler>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let consumer = consumer.to_owned();
    let prefix = topic_prefix.to_owned();
    tasks.spawn(async move {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let error = tokio::select! {
                error = consume(events.as_ref(), &consumer, &prefix, handler.as_ref(), &mut backoff) => error,
                () = shutdown.cancelled() => return,
            };
            tracing::warn!(
                consumer = %consumer,
                error = %error,
                retry_in_ms = backoff.as_millis(),
                "durable consumer interrupted; reconnecting"
            );
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    });
}

/// Reads, handles and acknowledges deliveries until something fails.
async fn consume(
    events: &dyn DurableEvents,
    consumer: &str,
    prefix: &str,
    handler: &dyn DeliveryHandler,
    backoff: &mut Duration,
) -> HandlerError {
    let mut stream = match events.consume(consumer, prefix).await {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    while let Some(item) = stream.next().await {
        let delivery = match item {
            Ok(delivery) => delivery,
            Err(e) => return e.into(),
        };
        if let Err(e) = handler.handle(&delivery.event).await {
            return e;
        }
        if let Err(e) = delivery.ack().await {
            return e.into();
        }
        *backoff = BACKOFF_FIRST;
    }
    HandlerError("the event stream ended".to_owned())
}
