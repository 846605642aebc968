//! Integration tests of the all-in-one server, at three depths: the router in-process
//! (`oneshot`), the app on a real socket on port 0, and the real binary spawned.
#![expect(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::field_reassign_with_default,
    reason = "test code: panics are failures, servers run on plain tasks"
)]

mod admin;
mod admin_settings;
mod audit;
mod auth_accounts;
mod auth_clients;
mod auth_flows;
mod backup;
mod binary;
mod chat;
mod chat_conversations;
mod chat_files;
mod chat_live;
mod chat_transfer;
mod cluster;
mod common;
mod files;
mod files_access;
mod files_more;
mod files_s3;
mod hygiene;
mod inference;
mod metrics;
mod model_calls;
mod models;
mod ops;
mod purge;
mod replica;
mod router;
mod routes;
mod routes_internal;
mod seo;
mod seo_real;
mod seo_youtube;
mod tls;
mod traces;
mod usage;
