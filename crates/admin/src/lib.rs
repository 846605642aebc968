//! The admin service. It owns the audit log ([`audit`]: an append-only, hash-chained table
//! behind the [`confab_core::audit::AuditLog`] port that other services record through, with
//! verification and archiving retention; [`audit_api`] its HTTP API) and usage statistics
//! ([`usage`], [`usage_api`]). User management, jobs and runtime configuration land here too.

pub mod audit;
pub mod audit_api;
pub mod csv;
pub mod jobs_api;
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
