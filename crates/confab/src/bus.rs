//! Chooses the event bus, durable events and job queue from configuration: in this process
//! and its database (all-in-one), or NATS JetStream (`bus.nats_url`, split mode) so that every
//! replica sees the same events and shares the jobs.

use std::sync::Arc;

use anyhow::Context;
use confab_bus::{DurableEvents, EventBus, JobQueue, MemoryBus, SqlJobQueue, SqlOutbox};
use confab_core::config::Config;
use confab_store::Db;

/// The bus adapters of one process.
#[derive(Clone)]
pub struct Bus {
    pub events: Arc<dyn EventBus>,
    pub durable: Arc<dyn DurableEvents>,
    pub jobs: Arc<dyn JobQueue>,
}

pub async fn connect(config: &Config, db: &Db) -> anyhow::Result<Bus> {
    let Some(url) = &config.bus.nats_url else {
        return Ok(Bus {
            events: Arc::new(MemoryBus::default()),
            durable: Arc::new(SqlOutbox::new(db.clone())),
            jobs: Arc::new(SqlJobQueue::new(db.clone())),
        });
    };
    let events = confab_bus::NatsBus::connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at bus.nats_url `{url}`"))?;
    let durable = confab_bus::NatsDurable::new(
        events.client().clone(),
        confab_bus::NatsDurableConfig::default(),
    )
    .await
    .with_context(|| format!("JetStream at bus.nats_url `{url}` (start nats-server with -js)"))?;
    tracing::info!(url = %url, "events and durable events go through NATS JetStream");
    Ok(Bus {
        events: Arc::new(events),
        durable: Arc::new(durable),
        jobs: Arc::new(SqlJobQueue::new(db.clone())),
    })
}
