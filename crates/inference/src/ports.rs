//! The inference service's storage ports: what its services need from storage, whatever
//! keeps it. Errors are the neutral [`StoreError`]. The SQL adapters ([`SqlUsageLog`],
//! [`SqlPullStore`]) are the only code that touches the inference tables; `tests/it` holds a
//! contract suite per port, run on SQLite and PostgreSQL.
//!
//! [`SqlUsageLog`]: crate::usage::SqlUsageLog
//! [`SqlPullStore`]: crate::pulls::SqlPullStore

use async_trait::async_trait;
use confab_store::StoreError;
use uuid::Uuid;

use crate::pulls::{NewPull, PullProgress, PullRecord};
use crate::usage::{Subject, UsageEvent, UsageRecord, UsageRow};

/// The usage records: one per request, appended in batches, published once each as a
/// `usage.recorded` event, and summed for the daily token limits.
#[async_trait]
pub trait UsageLog: Send + Sync {
    /// Appends a batch, all or nothing; each record gets an id of its own and starts
    /// unpublished. Returns the events that publish the stored records, in the batch's order.
    async fn append(&self, batch: &[UsageRecord]) -> Result<Vec<UsageEvent>, StoreError>;

    /// Up to `limit` records not yet marked published, oldest first, as the events that
    /// publish them.
    async fn unpublished(&self, limit: usize) -> Result<Vec<UsageEvent>, StoreError>;

    /// Marks the records with these ids published; ids that name nothing are ignored.
    async fn mark_published(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Tokens (prompt and completion) a user or an API key used on the UTC day `day`
    /// (`YYYY-MM-DD`), answers from the cache not counted: what the daily token limit
    /// starts from.
    async fn tokens_used(&self, subject: Subject, day: &str) -> Result<u64, StoreError>;

    /// Totals per day, user and model between two days (inclusive), in that order;
    /// optionally of one user.
    async fn daily_totals(
        &self,
        user: Option<Uuid>,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<UsageRow>, StoreError>;
}

/// The model pulls: one record per pull with its state, bytes and job, so a pull survives a
/// restart and its status outlives the process that ran it.
#[async_trait]
pub trait PullStore: Send + Sync {
    /// Records a new pull, `queued`, without bytes, error or job.
    async fn insert(&self, pull: &NewPull) -> Result<(), StoreError>;

    /// Notes the job that runs the pull.
    async fn set_job(&self, id: Uuid, job_id: Uuid) -> Result<(), StoreError>;

    /// Records where a pull stands: its state, the bytes it has (what a retried pull resumes
    /// from), the total when known and the last error, at `now_ms`. A pull that does not
    /// exist is left alone.
    async fn update(
        &self,
        id: Uuid,
        progress: &PullProgress,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    async fn get(&self, id: Uuid) -> Result<Option<PullRecord>, StoreError>;

    /// The pulls that have not ended (`queued` or `running`), oldest first: those to resume
    /// at start.
    async fn unfinished(&self) -> Result<Vec<PullRecord>, StoreError>;

    /// The newest `limit` pulls, newest first.
    async fn recent(&self, limit: usize) -> Result<Vec<PullRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    /// Architecture invariant: only the adapters (`store.rs`) know SQL; the rules and the
    /// services reach the inference tables through the ports.
    #[test]
    fn only_the_store_modules_know_sql() {
        let sources = [
            ("ports.rs", include_str!("ports.rs")),
            ("usage/mod.rs", include_str!("usage/mod.rs")),
            ("limits.rs", include_str!("limits.rs")),
            ("service/mod.rs", include_str!("service/mod.rs")),
            ("service/calls.rs", include_str!("service/calls.rs")),
            ("pulls/mod.rs", include_str!("pulls/mod.rs")),
            ("pulls/state.rs", include_str!("pulls/state.rs")),
            ("pulls/fetch.rs", include_str!("pulls/fetch.rs")),
        ];
        confab_testkit::assert_no_sql(&sources);
    }
}
