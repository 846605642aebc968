//! The SEO crate's integration tests, one binary: the quota ledger's contract on the backend
//! under test (SQLite by default, PostgreSQL with `TEST_BACKEND=postgres`), and the YouTube
//! client and OAuth against the fake YouTube of `confab_testkit::youtube`, and the research cap
//! across replicas (`research_cap`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: panics are failures"
)]

mod fake;
mod oauth;
mod purity;
mod quota;
mod research_cap;
mod store;
mod youtube;
