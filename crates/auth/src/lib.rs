//! The auth service: accounts (argon2id passwords, throttled sign-in, registration policy), sessions
//! (short Ed25519 JWT access tokens and rotating refresh tokens with reuse detection), scoped
//! API keys, roles and groups. Its public keys are served as JWKS so other services verify
//! tokens without calling it.

pub mod actions;
pub mod api;
pub mod domain;
pub mod guard;
pub mod keys;
pub mod ports;
pub mod secret;
pub mod service;
pub mod store;
pub mod throttle;

pub use api::{AuthState, InternalState, internal_router, router};
pub use service::{
    AuthDeps, AuthError, AuthService, PURGE_USER_JOB, PurgeAnswers, PurgeDeps, PurgeRun,
};
pub use store::{SqlAuthStore, migrations};
