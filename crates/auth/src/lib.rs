//! placeholder
pub mod domain;
pub mod ports;
pub mod secret;
pub mod store;
