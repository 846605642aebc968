//! The admin service's storage ports: what its services need from storage, whatever keeps
//! it. Errors are the neutral [`StoreError`]. The SQL adapters ([`SqlUsageStats`],
//! [`SqlSettingsStore`], [`SqlAuditLog`]) are the only code that touches the admin tables;
//! `tests/it` holds a contract suite per port, run on SQLite and PostgreSQL.
//!
//! [`SqlUsageStats`]: crate::usage::SqlUsageStats
//! [`SqlSettingsStore`]: crate::settings::SqlSettingsStore
//! [`SqlAuditLog`]: crate::audit::SqlAuditLog

use async_trait::async_trait;
use confab_core::runtime::RuntimeSettings;
use confab_store::StoreError;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::settings::SettingsView;
use crate::usage::{DailyUsage, DateRange, UsageEvent, UsageKey};

pub use crate::audit::AuditReader;

/// The usage statistics: daily rows (day × user × model) that `usage.recorded` events are
/// folded into, and the reads of the reports and the export.
#[async_trait]
pub trait UsageStatsStore: Send + Sync {
    /// Adds the events not applied before to their daily rows, all or nothing, and returns
    /// how many were new. An event whose id was applied within
    /// [`REMEMBER_IDS_MS`](crate::usage::REMEMBER_IDS_MS) before `now_ms` is skipped, as is
    /// an id repeated within `events`: delivery is at-least-once.
    async fn apply(&self, events: &[UsageEvent], now_ms: i64) -> Result<usize, StoreError>;

    /// Every row of the days in `range` (of one user, when given), in no particular order,
    /// read as the stream is polled.
    fn rows(
        &self,
        range: DateRange,
        user: Option<Uuid>,
    ) -> BoxStream<'_, Result<DailyUsage, StoreError>>;

    /// Up to `limit` rows of the range (of one user, when given) in day, user and model
    /// order, those after `after` when given: a page of the export.
    async fn page(
        &self,
        range: DateRange,
        user: Option<Uuid>,
        after: Option<&UsageKey>,
        limit: usize,
    ) -> Result<Vec<DailyUsage>, StoreError>;
}

/// The runtime settings an admin changed: one record with a version, changed by
/// compare-and-set so that two admins' changes never overwrite each other unseen.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The stored settings; `None` while no admin changed them (version 0).
    async fn load(&self) -> Result<Option<SettingsView>, StoreError>;

    /// Stores `settings` as version `expected + 1`, changed by `by` at `now_ms`, if the
    /// stored version is `expected` (0: nothing stored yet); returns the new version.
    /// `Conflict("version")` when another change came first.
    async fn save(
        &self,
        settings: &RuntimeSettings,
        expected: i64,
        by: Uuid,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
}

#[cfg(test)]
mod tests {
    /// Architecture invariant: only the adapters (`store.rs`) know SQL; the rules, the
    /// services and the handlers reach storage through the ports.
    #[test]
    fn only_the_store_modules_know_sql() {
        let sources = [
            ("ports.rs", include_str!("ports.rs")),
            ("usage/mod.rs", include_str!("usage/mod.rs")),
            ("usage/histogram.rs", include_str!("usage/histogram.rs")),
            ("usage/query.rs", include_str!("usage/query.rs")),
            ("usage/report.rs", include_str!("usage/report.rs")),
            ("usage/projection.rs", include_str!("usage/projection.rs")),
            ("usage_api.rs", include_str!("usage_api.rs")),
            ("settings/mod.rs", include_str!("settings/mod.rs")),
            ("settings/patch.rs", include_str!("settings/patch.rs")),
            ("jobs_api.rs", include_str!("jobs_api.rs")),
            ("backups/mod.rs", include_str!("backups/mod.rs")),
        ];
        confab_testkit::assert_no_sql(&sources);
    }
}
