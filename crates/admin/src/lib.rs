//! The admin service. It owns the audit log ([`audit`]: an append-only, hash-chained table
//! behind the [`confab_core::audit::AuditLog`] port that other services record through, with
//! verification and archiving retention; [`audit_api`] its HTTP API) and usage statistics
//! ([`usage`], [`usage_api`]), runtime settings ([`settings`]), the admin view of background
//! jobs ([`jobs_api`]) and the record of completed backups ([`backups`]). Storage is reached
//! through the [`ports`]; each port has one SQL adapter next to the pure rules it serves
//! (`audit/store.rs`, `usage/store.rs`, `settings/store.rs`, `backups/store.rs`).

pub mod actions;
pub mod audit;
pub mod audit_api;
pub mod backups;
pub mod jobs_api;
pub mod ports;
pub mod settings;
pub mod usage;
pub mod usage_api;

use confab_store::ServiceMigrations;

pub use audit::{
    ActionMatch, Appended, ArchiveRecord, ArchiveReport, AuditEntry, AuditError, AuditFilter,
    AuditReader, BreakKind, BrokenEntry, SqlAuditLog, VerifyReport, archive_dir,
};
pub use audit_api::AuditState;

/// The admin service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "admin",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}
