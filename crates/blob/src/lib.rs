//! Blob storage: the [`BlobStore`] port and its one adapter, [`ObjectBlobs`], over
//! `object_store` with three backends — memory (tests), a local directory (the laptop
//! default, `<data_dir>/blobs`) and S3-compatible storage (split mode, backups) — and
//! [`EncryptedBlobs`], which encrypts another store's blobs at rest (`files.encryption_key`).
//!
//! The port's promises, which the contract suite (`tests/it`) checks against every backend:
//! - a write is whole or absent: a streamed write whose body fails, or whose future is
//!   dropped, leaves nothing at its key (a multipart upload is aborted, a staged file removed);
//! - a body is never held whole in memory: a streamed write sends fixed-size parts;
//! - keys are checked ([`BlobKey`]): no `..`, no empty segment, a small safe alphabet, so a key
//!   can never leave the store's root directory or prefix;
//! - reads may take a byte range; a range past the end is an error, not a short body.

mod encrypted;
mod key;
mod object;

pub use encrypted::{
    EncryptedBlobs, HEADER_BYTES, KeyTooShort, SEGMENT_BYTES, plain_size, stored_size,
};
pub use key::{BlobKey, InvalidKey};
pub use object::{ObjectBlobs, PART_BYTES, S3Target};

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of body chunks, as read from a request or a file.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// What the store knows of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The key, relative to the store's root.
    pub key: String,
    pub size: u64,
    /// Last modification, in Unix milliseconds.
    pub modified_ms: i64,
    /// The store's entity tag, where it gives one.
    pub etag: Option<String>,
}

/// A blob being read: its metadata, the range served, and the bytes.
pub struct BlobRead {
    pub meta: BlobMeta,
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob at `{0}`")]
    NotFound(String),
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    /// The range starts at or past the end of the blob, or is empty.
    #[error("range {start}..{end} is not within the blob's {size} bytes")]
    InvalidRange { start: u64, end: u64, size: u64 },
    /// The body being written failed (the client went away, a file could not be read):
    /// nothing was stored.
    #[error("the body could not be read: {0}")]
    Body(std::io::Error),
    /// The store refused or could not be reached (credentials, network, disk).
    #[error("blob storage is unavailable: {0}")]
    Unavailable(String),
}

/// Where blobs are kept.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` at `key`, replacing what was there.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<BlobMeta, BlobError>;

    /// Stores a streamed body at `key`, in parts; whole or not at all.
    async fn put_stream(&self, key: &BlobKey, body: ByteStream) -> Result<BlobMeta, BlobError>;

    /// Reads the blob at `key`, or `range` of it.
    async fn get(&self, key: &BlobKey, range: Option<Range<u64>>) -> Result<BlobRead, BlobError>;

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError>;

    /// Removes the blob at `key`; a key with nothing there is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Every blob whose key is under `prefix` (by whole segments: `a/b` holds `a/b/c`, not
    /// `a/bc`; `None`: all), in key order.
    async fn list(&self, prefix: Option<&BlobKey>) -> Result<Vec<BlobMeta>, BlobError>;

    /// A URL that reads the blob without credentials until `expires_in` passes, where the
    /// store can sign one (S3); `None` for the others.
    async fn presign_get(
        &self,
        key: &BlobKey,
        expires_in: Duration,
    ) -> Result<Option<url::Url>, BlobError>;

    /// Where the blobs are, for logs and messages (`s3://bucket/prefix`, `file:///dir`).
    fn location(&self) -> String;

    /// Removes what interrupted writes left behind (a process killed mid-write) that is older
    /// than `older_than`; answers how many were removed. A local directory's staged files are
    /// swept here; an S3 bucket's incomplete multipart uploads are the bucket's lifecycle
    /// rule's (`AbortIncompleteMultipartUpload`), so the default does nothing.
    async fn sweep_incomplete(&self, older_than: Duration) -> Result<u64, BlobError> {
        let _ = older_than;
        Ok(0)
    }
}
