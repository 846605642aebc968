//! The event bus: services publish what happened on a topic (`user.<id>` for what one user's
//! tabs should see); subscribers receive the events of the topics they follow. The port is
//! [`EventBus`]; [`MemoryBus`] is the in-process adapter of the all-in-one server. A NATS
//! adapter (subjects for topics) serves split mode, so two replicas deliver the same events.
//!
//! Delivery here is at-most-once and live: a subscriber that falls behind is told how many
//! events it missed ([`Received::Lagged`]) and should resynchronise from the API. Durable
//! delivery (an outbox, durable consumers) is for events that must survive a crash.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub mod audit;
mod consumer;
mod durable;
pub mod events;
mod jobs;
mod memory;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "nats")]
mod nats_jobs;
pub mod purge;
mod sql_jobs;
mod sql_outbox;
mod worker;

pub use consumer::{DeliveryHandler, HandlerError, run_consumer};
pub use durable::{Delivery, DurableEvents, ack_all};
pub use events::TypedEvent;
pub use jobs::{
    Heartbeat, Job, JobError, JobFilter, JobQueue, JobState, KindStats, Lease, NewJob, Progress,
};
pub use memory::MemoryBus;
#[cfg(feature = "nats")]
pub use nats::{NatsBus, NatsDurable, NatsDurableConfig};
#[cfg(feature = "nats")]
pub use nats_jobs::{NatsJobQueue, NatsJobsConfig};
pub use sql_jobs::{SqlJobQueue, migrations};
pub use sql_outbox::SqlOutbox;
pub use worker::{
    JOB_UPDATED, JOBS_TOPIC, JobContext, JobFailure, JobHandler, RunObserver, RunOutcome,
    WorkerConfig, Workers, job_event_data,
};

/// One event: what happened (`kind`, e.g. `message.delta`), about what (`data`), for whom
/// (`topic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub topic: String,
    pub kind: String,
    pub data: serde_json::Value,
    /// Unix milliseconds.
    pub at: i64,
}

impl Envelope {
    pub fn new(topic: impl Into<String>, kind: impl Into<String>, data: serde_json::Value) -> Self {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            topic: topic.into(),
            kind: kind.into(),
            data,
            at,
        }
    }
}

/// The topic of one user's events.
pub fn user_topic(user_id: uuid::Uuid) -> String {
    format!("user.{user_id}")
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Event(Envelope),
    /// This many events were missed because the subscriber fell behind.
    Lagged(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event to the subscribers of its topic. Having no subscriber is not an
    /// error.
    async fn publish(&self, event: Envelope) -> Result<(), BusError>;
    /// The events of `topic` published from now on.
    fn subscribe(&self, topic: &str) -> BoxStream<'static, Received>;
}
