//! The audit port: services record security-relevant events through it; the admin service
//! owns the log behind it.

use serde::Serialize;
use uuid::Uuid;

use crate::extract::ClientMeta;

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audited event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it (`None` for anonymous callers).
    pub actor: Option<Uuid>,
    /// A dotted name such as `auth.login`.
    pub action: &'static str,
    /// What it was done to (a user id, a key id, an email for failed logins).
    pub target: Option<String>,
    pub outcome: Outcome,
    pub client: ClientMeta,
    /// Anything else worth keeping, as JSON.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(action: &'static str, outcome: Outcome, client: &ClientMeta) -> Self {
        Self {
            actor: None,
            action,
            target: None,
            outcome,
            client: client.clone(),
            details: serde_json::Value::Null,
        }
    }

    pub fn actor(mut self, actor: Uuid) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// The log's storage cannot be reached or refused the write; the detail is for the log.
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
}

/// Where audit events go. Appending is the only write.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, event: AuditEvent) -> Result<(), AuditLogError>;
}
