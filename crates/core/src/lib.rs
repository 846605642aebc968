//! Shared vocabulary of Confab: ids and time, configuration, the HTTP error envelope, auth
//! principals and extractors, pagination, metrics and telemetry.
//!
//! Everything here is used by more than one service crate; nothing here knows SQL.

pub mod audit;
pub mod auth;
pub mod breaker;
pub mod config;
pub mod csv;
pub mod error;
pub mod extract;
pub mod html;
pub mod http;
pub mod id;
pub mod internal;
pub mod metrics;
pub mod net;
pub mod pagination;
pub mod runtime;
pub mod scoped;
pub mod secretbox;
pub mod service_tls;
pub mod sse;
pub mod ssrf;
pub mod telemetry;

pub use error::ApiError;
pub use id::{new_id, now_ms};
