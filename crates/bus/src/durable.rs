//! Durable events: what must reach its consumers even across a crash (usage records feeding
//! the usage read model, a deleted user's data to purge). A publisher stores the event;
//! each named consumer receives every event of its topics in order, from where it left off,
//! and acknowledges it; what is not acknowledged is delivered again (at-least-once, so
//! consumers are idempotent).
//!
//! Adapters: [`crate::SqlOutbox`] (an outbox table in the database, all-in-one) and the NATS
//! JetStream adapter (a stream with durable pull consumers, split mode).

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::{BusError, Envelope};

/// One event handed to a durable consumer.
pub struct Delivery {
    pub event: Envelope,
    /// Increasing per adapter; the consumer's position after an ack.
    pub seq: u64,
    ack: Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BusError>> + Send>,
    /// Acknowledging this event also acknowledges the earlier ones of its stream (an
    /// adapter whose acknowledgement is a position).
    covers_earlier: bool,
}

impl Delivery {
    pub fn new(
        event: Envelope,
        seq: u64,
        ack: impl FnOnce() -> BoxFuture<'static, Result<(), BusError>> + Send + 'static,
    ) -> Self {
        Self {
            event,
            seq,
            ack: Box::new(ack),
            covers_earlier: false,
        }
    }

    /// A delivery whose acknowledgement is a position: it also acknowledges every earlier
    /// event of the same stream, so [`ack_all`] acknowledges a batch with its last one.
    pub fn positional(
        event: Envelope,
        seq: u64,
        ack: impl FnOnce() -> BoxFuture<'static, Result<(), BusError>> + Send + 'static,
    ) -> Self {
        Self {
            covers_earlier: true,
            ..Self::new(event, seq, ack)
        }
    }

    /// Marks the event handled for this consumer; it will not be delivered to it again.
    pub async fn ack(self) -> Result<(), BusError> {
        (self.ack)().await
    }
}

/// Acknowledges a batch of deliveries read in order from one stream: with one ack of the
/// last when acks are positions, otherwise every ack at once rather than one round trip
/// after another.
pub async fn ack_all(deliveries: Vec<Delivery>) -> Result<(), BusError> {
    if deliveries.iter().all(|d| d.covers_earlier) {
        return match deliveries.into_iter().last() {
            Some(last) => last.ack().await,
            None => Ok(()),
        };
    }
    futures::future::try_join_all(deliveries.into_iter().map(Delivery::ack))
        .await
        .map(drop)
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait DurableEvents: Send + Sync {
    /// Stores the event; returns once it is durable.
    async fn publish(&self, event: Envelope) -> Result<(), BusError>;

    /// Stores the events in order; returns once all are durable. Adapters store a batch in
    /// one transaction or one pipelined round; on an error a prefix may have been stored
    /// (publishing the batch again is safe: consumers are idempotent).
    async fn publish_all(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        for event in events {
            self.publish(event).await?;
        }
        Ok(())
    }

    /// The events whose topic starts with `topic_prefix`, for the consumer `consumer`: from
    /// its last acknowledged position (a new consumer starts at the beginning), then live.
    /// Unacknowledged events come again after a restart (or after the adapter's ack wait).
    /// One consumer name should be read by one stream at a time.
    async fn consume(
        &self,
        consumer: &str,
        topic_prefix: &str,
    ) -> Result<BoxStream<'static, Result<Delivery, BusError>>, BusError>;
}
