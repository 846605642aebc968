//! The inference vocabulary. Everything a caller of models needs lives in
//! `confab-model-client` (so that other services depend on it, not on this crate); it is
//! re-exported here under the names the inference code has always used.

pub use confab_model_client::types::*;
pub use confab_model_client::wire::*;
