//! The audit port over durable events, for processes that do not hold the admin service
//! (split mode): each event becomes an `audit.recorded` durable event on `audit.<service>`,
//! and the admin service appends it to the log (once: the record's id makes a redelivery
//! harmless). All-in-one, services write to the log directly.

use std::sync::Arc;

use async_trait::async_trait;
use confab_core::audit::{AuditEvent, AuditLog, AuditLogError, AuditRecord};

use crate::{DurableEvents, Envelope};

/// The kind of the durable event that carries an [`AuditRecord`].
pub const AUDIT_RECORDED: &str = "audit.recorded";
/// The topics audit records travel on: `audit.<service>`.
pub const AUDIT_TOPIC_PREFIX: &str = "audit.";

/// The [`AuditLog`] adapter that publishes records as durable events.
pub struct DurableAuditLog {
    events: Arc<dyn DurableEvents>,
    topic: String,
}

impl std::fmt::Debug for DurableAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableAuditLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DurableAuditLog {
    /// Records of `service` (`auth`, `chat`, …) go to `audit.<service>`.
    pub fn new(events: Arc<dyn DurableEvents>, service: &str) -> Self {
        Self {
            events,
            topic: format!("{AUDIT_TOPIC_PREFIX}{service}"),
        }
    }
}

#[async_trait]
impl AuditLog for DurableAuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), AuditLogError> {
        let record = event.into_record();
        let data = serde_json::to_value(&record)
            .map_err(|e| AuditLogError::Unavailable(format!("cannot encode the record: {e}")))?;
        self.events
            .publish(Envelope::new(self.topic.clone(), AUDIT_RECORDED, data))
            .await
            .map_err(|e| {
                tracing::error!(action = %record.action, error = %e, "audit record not published");
                AuditLogError::Unavailable(e.to_string())
            })
    }
}

/// The record an `audit.recorded` event carries; `None` for another kind or a malformed one.
pub fn decode_record(envelope: &Envelope) -> Option<AuditRecord> {
    if envelope.kind != AUDIT_RECORDED {
        return None;
    }
    serde_json::from_value(envelope.data.clone()).ok()
}
