//! The files service: uploads typed by their content (magic bytes) against an allowlist,
//! streamed to a [`confab_blob::BlobStore`] under per-file and per-user limits, scanned for
//! viruses by clamd before anything is served, images given a thumbnail and a preview, and
//! shared without signing in through signed, expiring, revocable links.

pub mod api;
pub mod domain;
pub mod images;
pub mod pdf;
pub mod ports;
pub mod scan;
pub mod service;
pub mod store;

pub use api::{FilesState, InternalFilesState, internal_router, router};
pub use service::{FilesDeps, FilesError, FilesService, FilesSettings};
pub use store::{SqlFileStore, migrations};
