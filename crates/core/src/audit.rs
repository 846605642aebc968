//! The audit port: services record security-relevant events through it; the admin service
//! owns the log behind it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::extract::ClientMeta;

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// An action a service records in the audit log. Each service declares its own as an enum
/// (`AuthAction`, `AdminAction`, …), so every name it can write is listed in one place and a
/// typo is a compile error rather than a row no filter finds.
pub trait AuditAction: Copy + Send + Sync + 'static {
    /// The dotted name stored in the log, such as `auth.login`.
    fn name(self) -> &'static str;
}

/// Checks a service's list of actions: every name starts with `prefix`, is a dotted
/// lower-case identifier, and is written once. For the services' unit tests.
pub fn check_action_names<A: AuditAction>(prefix: &str, all: &[A]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for action in all {
        let name = action.name();
        let rest = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| format!("`{name}` does not start with `{prefix}.`"))?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!("`{name}` is not a dotted lower-case name"));
        }
        if !seen.insert(name) {
            return Err(format!("`{name}` is declared twice"));
        }
    }
    Ok(())
}

/// One audited event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who did it (`None` for anonymous callers).
    pub actor: Option<Uuid>,
    /// The action's dotted name, such as `auth.login` (from the service's [`AuditAction`]).
    pub action: &'static str,
    /// What it was done to (a user id, a key id, an email for failed logins).
    pub target: Option<String>,
    pub outcome: Outcome,
    pub client: ClientMeta,
    /// Anything else worth keeping, as JSON.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(action: impl AuditAction, outcome: Outcome, client: &ClientMeta) -> Self {
        Self {
            actor: None,
            action: action.name(),
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

/// An audit event in the form that travels and is stored: the id and time it was given where
/// it happened, and owned strings. A service without the admin service in its process sends
/// these as durable events; the admin service appends each once (the id makes a redelivery
/// harmless).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: Uuid,
    /// When it happened, in Unix milliseconds.
    pub at: i64,
    pub actor: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// The record of this event, happening now.
    pub fn into_record(self) -> AuditRecord {
        AuditRecord {
            id: crate::new_id(),
            at: crate::now_ms(),
            actor: self.actor,
            action: self.action.to_owned(),
            target: self.target,
            outcome: self.outcome,
            ip: self.client.ip,
            user_agent: self.client.user_agent,
            request_id: self.client.request_id,
            details: self.details,
        }
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
