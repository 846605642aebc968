//! The auth service seen from another process (split mode): [`RemoteAuthenticator`], the
//! HTTP adapter of the `Authenticator` port. Access tokens are verified locally with the
//! auth service's JWKS (fetched at start, retried in the background while auth is down,
//! refreshed on an unknown `kid`, single-flight and rate-limited); the session behind a token,
//! API keys and accounts' standing are asked of auth's internal routes behind short caches;
//! the published `AuthRevocation`s drop a user's cached answers at once.
//!
//! A crate of its own so that the gateway and the other services depend on this and on
//! `confab-core` only, not on the auth service's crate with its password hashing, SQL store
//! and signing keys.

mod remote;

pub use remote::{RemoteAuthConfig, RemoteAuthError, RemoteAuthenticator};
