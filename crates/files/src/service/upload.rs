//! Uploads: a streamed body becomes a stored file, or nothing.
//!
//! The order is what keeps every bad input from leaving a trace: the name is checked, a slot
//! is taken (a per-user cap in this process), the first 64 KiB are read to type the content
//! (and to refuse an image whose header announces too many pixels), then the body streams to
//! the blob store through a meter (`meter`) that counts, hashes and stops it past the limit. Only a
//! body stored whole gets a row, inserted with the owner's usage in one transaction that
//! refuses to pass the quota; a refusal, a short body or a failed enqueue removes the blob.

use std::io;

use bytes::{Bytes, BytesMut};
use confab_blob::{BlobError, BlobKey, ByteStream};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::meter::Meter;
use super::{FilesError, FilesResult, FilesService};
use crate::domain::{FileKind, FileRecord, blob_key, names};
use crate::images;

/// How much of the body is read before anything is stored, to type the content.
pub const HEAD_BYTES: usize = 64 * 1024;

/// One upload as the API hands it over.
pub struct Upload {
    /// The name the client gave (checked here).
    pub name: String,
    /// The type the client declared (`Content-Type` of the body or the part), if any.
    pub declared_type: Option<String>,
    pub body: ByteStream,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("name", &self.name)
            .field("declared_type", &self.declared_type)
            .finish_non_exhaustive()
    }
}

/// Why the meter stopped a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Past `files.max_file_bytes`.
    FileLimit(u64),
    /// Past what the scanner accepts.
    ScanLimit(u64),
    /// Past what is left of the owner's quota.
    Quota,
}

impl FilesService {
    /// Stores an upload for `owner`: typed, limited, counted against the quota, then queued
    /// for its scan (or, unscanned, for its image variants).
    pub async fn upload(&self, owner: Uuid, upload: Upload) -> FilesResult<FileRecord> {
        let name = names::sanitize(&upload.name)?;
        let _slot = self.uploads.take(owner).ok_or(FilesError::TooManyUploads {
            max: self.uploads.max(),
        })?;
        let quota = self.settings.quota;
        let usage = self.store.usage(owner).await?;
        if usage.files >= quota.max_files || usage.bytes >= quota.max_bytes {
            return Err(self.over_quota_error(usage));
        }
        // The tightest of the three limits, and which one it is.
        let mut limit = (
            self.settings.max_file_bytes,
            Stop::FileLimit(self.settings.max_file_bytes),
        );
        if let Some(scanner) = &self.scanner
            && scanner.max_bytes() < limit.0
        {
            limit = (scanner.max_bytes(), Stop::ScanLimit(scanner.max_bytes()));
        }
        let room = quota.max_bytes - usage.bytes;
        if room < limit.0 {
            limit = (room, Stop::Quota);
        }

        let mut body = upload.body;
        let head = read_head(&mut body)
            .await
            .map_err(|e| FilesError::Incomplete(e.to_string()))?;
        let detected = self
            .settings
            .types
            .check(&head, &name, upload.declared_type.as_deref())?;
        if detected.kind == FileKind::Image {
            images::probe(&head, &self.settings.images).map_err(FilesError::Image)?;
        }
        if head.len() as u64 > limit.0 {
            return Err(self.stopped(limit.1, owner).await);
        }

        let body = futures::stream::iter([Ok(head)]).chain(body).boxed();
        let (counted, meter) = Meter::new(body, limit.0);

        let id = confab_core::new_id();
        let key = BlobKey::new(blob_key(owner, id)).map_err(BlobError::from)?;
        if let Err(e) = self.blobs.put_stream(&key, counted).await {
            return Err(match (meter.passed_limit(), e) {
                (true, _) => self.stopped(limit.1, owner).await,
                (false, BlobError::Body(e)) => FilesError::Incomplete(e.to_string()),
                (false, e) => FilesError::Blob(e),
            });
        }
        let (size, sha256) = match meter.finish().await {
            Ok(metered) => metered,
            Err(e) => {
                self.remove_blob(&key).await;
                return Err(FilesError::Incomplete(e.to_string()));
            }
        };

        let record = FileRecord {
            id,
            owner,
            name,
            content_type: detected.content_type,
            kind: detected.kind,
            size,
            sha256,
            state: self.initial_state(),
            threat: None,
            width: None,
            height: None,
            variants: false,
            created_ms: confab_core::now_ms(),
            scanned_ms: None,
        };
        match self.store.insert(&record, quota).await {
            Ok(Ok(())) => {}
            Ok(Err(over)) => {
                self.remove_blob(&key).await;
                return Err(self.over_quota_error(over.usage));
            }
            Err(e) => {
                self.remove_blob(&key).await;
                return Err(e.into());
            }
        }
        if let Err(e) = self.queue_checks(&record).await {
            // Not queued: the file would wait forever, so it is not kept.
            if let Err(undo) = self.store.delete(owner, id).await {
                tracing::error!(error = %undo, file = %id, "cannot remove a file whose checks were not queued");
            }
            self.remove_blob(&key).await;
            return Err(e);
        }
        Ok(record)
    }

    /// Removes a blob that must not stay; a failure leaves an orphan for the reconciliation.
    pub(super) async fn remove_blob(&self, key: &BlobKey) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(error = %e, key = %key, "cannot remove a blob; the reconciliation will");
        }
    }

    async fn stopped(&self, stop: Stop, owner: Uuid) -> FilesError {
        match stop {
            Stop::FileLimit(max) => FilesError::TooLarge { max },
            Stop::ScanLimit(max) => FilesError::TooLargeToScan { max },
            Stop::Quota => match self.store.usage(owner).await {
                Ok(usage) => self.over_quota_error(usage),
                Err(e) => e.into(),
            },
        }
    }
}

/// Reads the body until [`HEAD_BYTES`] are in (or it ends).
async fn read_head(body: &mut ByteStream) -> io::Result<Bytes> {
    let mut head = BytesMut::new();
    while head.len() < HEAD_BYTES {
        match body.try_next().await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(head.freeze())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
