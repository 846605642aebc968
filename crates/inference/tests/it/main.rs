//! The inference service's integration tests: the embedded engine on real models
//! (`engine`, with the `llama` feature), the model store (`store`), and the contract suites
//! of the storage ports on the backend under test — SQLite by default, PostgreSQL with
//! `TEST_BACKEND=postgres` — (`pulls`: `PullStore`, `usage`: `UsageLog`).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code"
)]

#[cfg(feature = "llama")]
mod engine;
mod limits;
mod pulls;
mod store;
mod usage;

use confab_core::config::DatabaseConfig;
use confab_store::Db;
use confab_testkit::TestDb;

/// A fresh database of the backend under test with the inference service's migrations.
async fn database() -> (Db, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    confab_inference::migrations().run(&db).await.unwrap();
    (db, test_db)
}
