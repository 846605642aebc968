//! The files service's background jobs, both durable and idempotent (a job whose worker died
//! runs again):
//! - `files.scan` streams a pending file to the scanner. Clean: the file becomes servable
//!   (and an image gets its variants queued). Infected: quarantined with the signature's name,
//!   audited as `files.infected`. Scanner down: retried with the queue's backoff while the
//!   file stays pending — nothing is served unscanned.
//! - `files.variants` decodes an image on a blocking thread under the pixel and allocation
//!   caps, applies its EXIF orientation, and stores a thumbnail and a preview re-encoded from
//!   pixels (so without the original's metadata, GPS included).

use confab_blob::{BlobError, BlobKey};
use confab_bus::NewJob;
use confab_core::extract::ClientMeta;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::files::collect;
use super::{FilesAction, FilesError, FilesResult, FilesService};
use crate::domain::{FileKind, FileRecord, FileState, Variant};
use crate::images;
use crate::ports::{ScanError, ScanVerdict};

/// The job kind that scans a file.
pub const SCAN_JOB: &str = "files.scan";
/// The job kind that makes an image's thumbnail and preview.
pub const VARIANTS_JOB: &str = "files.variants";

/// Attempts of a scan: with the queue's backoff (capped), about half a day of clamd outage.
const SCAN_ATTEMPTS: u32 = 300;
const VARIANT_ATTEMPTS: u32 = 5;

/// Both jobs' payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileJob {
    pub file_id: Uuid,
}

/// How a job run ended, for the job handler.
#[derive(Debug)]
pub enum JobOutcome {
    Done(serde_json::Value),
    /// Worth another attempt later.
    Retry(String),
    /// Will not get better.
    Fatal(String),
}

impl FilesService {
    /// Queues what a new file needs: its scan, or (unscanned) an image's variants.
    pub(super) async fn queue_checks(&self, file: &FileRecord) -> FilesResult<()> {
        if file.state == FileState::Pending {
            self.enqueue(SCAN_JOB, file, SCAN_ATTEMPTS).await
        } else if file.kind == FileKind::Image {
            self.enqueue(VARIANTS_JOB, file, VARIANT_ATTEMPTS).await
        } else {
            Ok(())
        }
    }

    async fn enqueue(&self, kind: &str, file: &FileRecord, attempts: u32) -> FilesResult<()> {
        self.jobs
            .enqueue(
                NewJob::new(kind, json!(FileJob { file_id: file.id }))
                    .max_attempts(attempts)
                    .created_by(file.owner),
            )
            .await?;
        Ok(())
    }

    /// Runs one `files.scan` job.
    pub async fn run_scan(&self, job: &FileJob) -> JobOutcome {
        let file = match self.store.get_any(job.file_id).await {
            Ok(Some(file)) => file,
            Ok(None) => return JobOutcome::Done(json!({ "skipped": "deleted" })),
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        if file.state != FileState::Pending {
            return JobOutcome::Done(json!({ "state": file.state.as_str() }));
        }
        let Some(scanner) = &self.scanner else {
            return JobOutcome::Retry("no virus scanner is configured in this process".into());
        };
        let key = match BlobKey::new(file.blob_key()) {
            Ok(key) => key,
            Err(e) => return JobOutcome::Fatal(e.to_string()),
        };
        let read = match self.blobs.get(&key, None).await {
            Ok(read) => read,
            // The file was deleted while the job waited.
            Err(BlobError::NotFound(_)) => match self.store.get_any(file.id).await {
                Ok(None) => return JobOutcome::Done(json!({ "skipped": "deleted" })),
                _ => return JobOutcome::Fatal("the file's content is missing".into()),
            },
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        let verdict = match scanner.scan(read.body).await {
            Ok(verdict) => verdict,
            Err(ScanError::Unavailable(e)) => return JobOutcome::Retry(e),
            Err(e @ ScanError::TooLarge { .. }) => return JobOutcome::Fatal(e.to_string()),
            Err(ScanError::Failed(e)) => return JobOutcome::Retry(e),
        };
        let now = confab_core::now_ms();
        match verdict {
            ScanVerdict::Clean => {
                match self
                    .store
                    .set_state(file.id, FileState::Pending, FileState::Clean, None, now)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return JobOutcome::Done(json!({ "skipped": "moved on" })),
                    Err(e) => return JobOutcome::Retry(e.to_string()),
                }
                if file.kind == FileKind::Image
                    && let Err(e) = self.enqueue(VARIANTS_JOB, &file, VARIANT_ATTEMPTS).await
                {
                    tracing::warn!(error = %e, file = %file.id, "cannot queue an image's variants");
                }
                JobOutcome::Done(json!({ "state": "clean" }))
            }
            ScanVerdict::Infected(threat) => {
                match self
                    .store
                    .set_state(
                        file.id,
                        FileState::Pending,
                        FileState::Infected,
                        Some(&threat),
                        now,
                    )
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return JobOutcome::Done(json!({ "skipped": "moved on" })),
                    Err(e) => return JobOutcome::Retry(e.to_string()),
                }
                tracing::warn!(file = %file.id, owner = %file.owner, threat = %threat, "a virus was found in an upload; the file is quarantined");
                self.audit(
                    Self::audit_event(FilesAction::Infected, &ClientMeta::default())
                        .actor(file.owner)
                        .target(file.id.to_string())
                        .details(
                            json!({ "threat": threat, "name": file.name, "sha256": file.sha256 }),
                        ),
                )
                .await;
                JobOutcome::Done(json!({ "state": "infected", "threat": threat }))
            }
        }
    }

    /// Runs one `files.variants` job.
    pub async fn run_variants(&self, job: &FileJob) -> JobOutcome {
        let file = match self.store.get_any(job.file_id).await {
            Ok(Some(file)) => file,
            Ok(None) => return JobOutcome::Done(json!({ "skipped": "deleted" })),
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        if file.kind != FileKind::Image || file.variants || !file.state.servable() {
            return JobOutcome::Done(json!({ "skipped": "nothing to do" }));
        }
        match self.make_variants(&file).await {
            Ok((width, height)) => JobOutcome::Done(json!({ "width": width, "height": height })),
            Err(FilesError::Image(e)) => JobOutcome::Fatal(e.to_string()),
            Err(FilesError::Blob(BlobError::NotFound(_))) => {
                JobOutcome::Done(json!({ "skipped": "deleted" }))
            }
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    async fn make_variants(&self, file: &FileRecord) -> FilesResult<(u32, u32)> {
        let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
        let bytes = collect(self.blobs.get(&key, None).await?).await?;
        let limits = self.settings.images;
        let made = tokio::task::spawn_blocking(move || images::variants(&bytes, &limits))
            .await
            .map_err(|e| FilesError::Incomplete(format!("the image worker stopped: {e}")))?
            .map_err(FilesError::Image)?;
        for (variant, encoded) in [
            (Variant::Thumb, made.thumb),
            (Variant::Preview, made.preview),
        ] {
            let key = BlobKey::new(file.variant_key(variant)).map_err(BlobError::from)?;
            self.blobs.put(&key, encoded.bytes.into()).await?;
        }
        match self
            .store
            .set_variants(file.id, made.width, made.height)
            .await
        {
            Ok(()) => {}
            // Deleted meanwhile: its variants must not stay behind.
            Err(confab_store::StoreError::NotFound) => self.remove_blobs(file).await,
            Err(e) => return Err(e.into()),
        }
        // Deleted between the update and now: the same.
        if self.store.get_any(file.id).await?.is_none() {
            self.remove_blobs(file).await;
        }
        Ok((made.width, made.height))
    }
}
