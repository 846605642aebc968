//! The chat crate's integration tests, one binary: the contract suite of the chat store on the
//! backend under test (SQLite by default, PostgreSQL with `TEST_BACKEND=postgres`), the
//! service over fake ports, the live events' JSON, and the purity of the domain modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: panics are failures"
)]

mod attachments;
mod events;
mod harness;
mod purity;
mod replicas;
mod service;
mod store;
