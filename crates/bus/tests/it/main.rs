//! The integration tests of the bus crate, one binary: the contract suites of the ports
//! (`jobs`, `events`), run against the SQL adapters on the backend under test (SQLite by
//! default, PostgreSQL with `TEST_BACKEND=postgres`), and reusable by other adapters' modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: panics are failures"
)]

mod events;
mod jobs;
