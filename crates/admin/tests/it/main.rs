//! The contract suites of the admin service's storage ports, run against their SQL adapters on
//! the backend under test (SQLite by default, PostgreSQL with `TEST_BACKEND=postgres`;
//! `scripts/test.sh` runs both): usage statistics (`usage.rs`) and runtime settings
//! (`settings.rs`), and the audit records other processes send (`audit.rs`). The audit log's
//! own suite is in `crates/confab/tests/it/audit.rs`.
#![expect(clippy::unwrap_used, reason = "test code: panics are failures")]

mod audit;
mod settings;
mod usage;

use confab_core::config::DatabaseConfig;
use confab_store::Db;
use confab_testkit::TestDb;

/// A fresh database of the backend under test with the admin service's migrations.
async fn database() -> (Db, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    confab_admin::migrations().run(&db).await.unwrap();
    (db, test_db)
}
