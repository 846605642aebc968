//! The audit records of services in other processes (split mode): they arrive as durable
//! `audit.recorded` events (`confab_bus::audit`) and are appended to the chain here, each
//! once (the record's id makes a redelivery harmless).

use std::sync::Arc;

use async_trait::async_trait;
use confab_bus::audit::{AUDIT_TOPIC_PREFIX, decode_record};
use confab_bus::{DeliveryHandler, DurableEvents, Envelope, HandlerError, run_consumer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SqlAuditLog;

/// The durable consumer's name.
pub const AUDIT_INGEST_CONSUMER: &str = "admin.audit";

/// Appends the records other processes send.
pub struct AuditIngest {
    log: Arc<SqlAuditLog>,
}

impl std::fmt::Debug for AuditIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditIngest").finish_non_exhaustive()
    }
}

impl AuditIngest {
    pub fn new(log: Arc<SqlAuditLog>) -> Self {
        Self { log }
    }

    /// Consumes `audit.*` for the life of the process.
    pub fn start(
        log: Arc<SqlAuditLog>,
        events: Arc<dyn DurableEvents>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        run_consumer(
            events,
            AUDIT_INGEST_CONSUMER,
            AUDIT_TOPIC_PREFIX,
            Arc::new(Self::new(log)),
            tasks,
            shutdown,
        );
    }
}

#[async_trait]
impl DeliveryHandler for AuditIngest {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let Some(record) = decode_record(event) else {
            tracing::warn!(kind = %event.kind, topic = %event.topic, "not an audit record; skipped");
            return Ok(());
        };
        self.log
            .append_record(record)
            .await
            .map(|_| ())
            .map_err(|e| HandlerError(e.to_string()))
    }
}
