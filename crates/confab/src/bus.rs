//! Chooses the event bus, durable events and job queue from configuration: in this process
//! and its database (all-in-one), or NATS JetStream (`bus.nats_url`, split mode) so that every
//! replica sees the same events and shares the jobs.

use std::sync::Arc;

use anyhow::Context;
use confab_bus::{DurableEvents, EventBus, JobQueue, MemoryBus, SqlJobQueue, SqlOutbox};
use confab_core::config::{Config, redact_url};
use confab_store::Db;

/// The bus adapters of one process.
#[derive(Clone)]
pub struct Bus {
    pub events: Arc<dyn EventBus>,
    pub durable: Arc<dyn DurableEvents>,
    pub jobs: Arc<dyn JobQueue>,
    /// The adapters that keep what must be pruned now and then.
    stores: Stores,
    /// The NATS connection, when the bus is NATS (`confab_nats_up`).
    pub nats: Option<confab_bus::NatsBus>,
}

#[derive(Clone)]
enum Stores {
    Database(SqlOutbox, SqlJobQueue),
    /// The durable events stream ages out by itself (`max_age`).
    Nats(Box<confab_bus::NatsJobQueue>),
}

impl Bus {
    /// Deletes finished jobs last changed before `jobs_before` and durable events every
    /// consumer has passed that are older than `events_before` (Unix ms). Returns how many
    /// of each went.
    pub async fn prune(&self, jobs_before: i64, events_before: i64) -> anyhow::Result<(u64, u64)> {
        Ok(match &self.stores {
            Stores::Database(outbox, jobs) => (
                jobs.prune(jobs_before).await?,
                outbox.prune(events_before).await?,
            ),
            Stores::Nats(jobs) => (jobs.prune(jobs_before).await?, 0),
        })
    }
}

pub async fn connect(config: &Config, db: &Db) -> anyhow::Result<Bus> {
    let Some(url) = &config.bus.nats_url else {
        let outbox = SqlOutbox::new(db.clone());
        let jobs = SqlJobQueue::new(db.clone());
        return Ok(Bus {
            events: Arc::new(MemoryBus::default()),
            durable: Arc::new(outbox.clone()),
            jobs: Arc::new(jobs.clone()),
            stores: Stores::Database(outbox, jobs),
            nats: None,
        });
    };
    let events = confab_bus::NatsBus::connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at bus.nats_url `{}`", redact_url(url)))?;
    let ns = &config.bus.nats_namespace;
    let upper = ns.to_uppercase().replace('-', "_");
    let durable = confab_bus::NatsDurable::new(
        events.client().clone(),
        confab_bus::NatsDurableConfig {
            stream: format!("{upper}_EVENTS"),
            subject_root: format!("{ns}.durable"),
            ..confab_bus::NatsDurableConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "JetStream at bus.nats_url `{}` (start nats-server with -js)",
            redact_url(url)
        )
    })?;
    let jobs = confab_bus::NatsJobQueue::new(
        events.client().clone(),
        confab_bus::NatsJobsConfig {
            stream: format!("{upper}_JOBS"),
            subject_root: format!("{ns}.jobs"),
            bucket: format!("{}_jobs", ns.replace('-', "_")),
            ..confab_bus::NatsJobsConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "the job queue on JetStream at bus.nats_url `{}`",
            redact_url(url)
        )
    })?;
    tracing::info!(url = %redact_url(url), "events, durable events and jobs go through NATS JetStream");
    Ok(Bus {
        nats: Some(events.clone()),
        events: Arc::new(events),
        durable: Arc::new(durable),
        jobs: Arc::new(jobs.clone()),
        stores: Stores::Nats(Box::new(jobs)),
    })
}
