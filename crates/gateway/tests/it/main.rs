//! The gateway's integration tests: real gateways on 127.0.0.1 port 0 in front of fake
//! upstream services (axum servers started by the tests), driven over real sockets.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: panics are failures"
)]

mod caching;
mod edge;
mod proxying;
mod resilience;
mod routing;
mod support;
mod tls;
