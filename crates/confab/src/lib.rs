//! The composition root of Confab: reads configuration, builds adapters, mounts every
//! service's router behind the common middleware, and serves it. `main.rs` is the CLI over
//! this library; the integration tests build the same [`app::App`].

pub mod app;
pub mod backup;
pub mod build_info;
pub mod bus;
pub mod docs;
pub mod jobs;
pub mod maintenance;
pub mod models;
pub mod purge;
pub mod remote;
pub mod remote_files;
pub mod server;
pub mod services;
pub mod tls;
pub mod web;
