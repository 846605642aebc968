//! The files crate's integration tests: one binary.
mod attach;
mod clamd;
mod store;
mod uploads;
