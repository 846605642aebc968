//! The files crate's integration tests: one binary.
mod clamd;
mod store;
mod uploads;
