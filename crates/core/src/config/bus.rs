//! The `[bus]` section: events and background jobs, in process or over NATS.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{redact_url, serialize_redacted_url};

/// Events and background jobs.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// A NATS server with JetStream (split mode): events, durable events and jobs go through
    /// it so every replica sees them. Unset: in-process events, jobs and the outbox in the
    /// database. Credentials in it (`nats://user:password@host`) are redacted when shown.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_redacted_url"
    )]
    pub nats_url: Option<String>,
    /// Names this deployment's JetStream streams, buckets and subjects (`<ns>.jobs.*`,
    /// `<NS>_JOBS`, …), so deployments can share one NATS server. Letters, digits, `_`, `-`.
    pub nats_namespace: String,
    /// How long a worker holds a job without a heartbeat; a crashed worker's jobs are
    /// retaken after this.
    pub job_lease_secs: u64,
    /// How often idle workers look for due jobs, in milliseconds.
    pub job_poll_ms: u64,
    /// Background jobs of one kind run at the same time per process.
    pub job_concurrency: u32,
    /// Finished jobs are deleted this many days after they ended.
    pub job_retention_days: u32,
    /// Durable events every consumer has handled are deleted after this many days.
    pub event_retention_days: u32,
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("nats_url", &self.nats_url.as_deref().map(redact_url))
            .field("nats_namespace", &self.nats_namespace)
            .field("job_lease_secs", &self.job_lease_secs)
            .field("job_poll_ms", &self.job_poll_ms)
            .field("job_concurrency", &self.job_concurrency)
            .field("job_retention_days", &self.job_retention_days)
            .field("event_retention_days", &self.event_retention_days)
            .finish()
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            nats_url: None,
            nats_namespace: "confab".to_owned(),
            job_lease_secs: 30,
            job_poll_ms: 500,
            job_concurrency: 4,
            job_retention_days: 30,
            event_retention_days: 7,
        }
    }
}
