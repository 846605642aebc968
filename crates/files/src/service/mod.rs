//! The files service's operations: uploads (`upload`), reading, listing and deleting
//! (`files`), the scan and image-variant jobs (`jobs`), share links (`links`), the admin
//! views (`admin`) and what other services need to attach files (`attach`). Handlers call these; every owner-facing operation takes the owner's id
//! and touches only that owner's rows, so another user's ids answer as missing ones do.

use std::sync::Arc;

use confab_blob::{BlobError, BlobStore};
use confab_bus::{JobError, JobQueue};
use confab_core::audit::{AuditAction, AuditEvent, AuditLog, Outcome};
use confab_core::extract::ClientMeta;
use confab_store::StoreError;
use tokio::sync::OnceCell;

use crate::domain::links::{LinkError, LinkSigner};
use crate::domain::names::NameError;
use crate::domain::range::RangeError;
use crate::domain::{FileState, KindError, Quota, Usage};
use crate::images::{ImageError, ImageLimits};
use crate::ports::{FileStore, Scanner, UploadStore};

mod admin;
mod attach;
mod files;
mod jobs;
mod links;
mod maintenance;
mod meter;
mod resumable;
mod slots;
mod upload;

pub use admin::{AdminFile, ScannerStatus, StorageReport};
pub use attach::{
    AttachProblem, MODEL_IMAGE_MAX_BYTES, MODEL_IMAGE_TYPES, MODEL_TEXT_MAX_BYTES, ModelInput,
    PDF_MAX_BYTES, PDF_READERS, PDF_TEXT_MAX_BYTES,
};
pub use files::{Content, FilePage};
pub use jobs::{FileJob, JobOutcome, SCAN_JOB, VARIANTS_JOB};
pub use links::{CreatedLink, Opened, PRESIGNED_FOR};
pub use maintenance::{ORPHAN_GRACE, Reconciliation};
pub use resumable::{NewUpload, UploadStatus};
pub use upload::Upload;

use slots::UserSlots;

/// How the service behaves; from `[files]` in the configuration.
#[derive(Debug, Clone)]
pub struct FilesSettings {
    /// The largest file one upload may store, in bytes.
    pub max_file_bytes: u64,
    /// What one user may store.
    pub quota: Quota,
    /// Which kinds of files are accepted.
    pub types: crate::domain::kinds::TypeRules,
    /// Caps on decoding images.
    pub images: ImageLimits,
    /// The longest a share link may live, in hours.
    pub link_max_hours: u32,
    /// Share links redirect to a presigned URL of the storage where it can sign one (S3).
    pub presigned_links: bool,
    /// The key share links are signed with; `None`: one kept in the database.
    pub link_key: Option<Vec<u8>>,
    /// Uploads one user may have in progress at once in this process.
    pub uploads_per_user: usize,
    /// The most files one page lists.
    pub page_max: u32,
    /// The size of a resumable upload's parts.
    pub part_bytes: u64,
    /// Resumable uploads one user may have open.
    pub open_uploads_per_user: u32,
    /// How long a resumable upload may stay open, in milliseconds.
    pub upload_expiry_ms: i64,
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            max_file_bytes: 100 * 1024 * 1024,
            quota: Quota {
                max_bytes: 1024 * 1024 * 1024,
                max_files: 1000,
            },
            types: crate::domain::kinds::TypeRules::default(),
            images: ImageLimits::default(),
            link_max_hours: 24 * 7,
            presigned_links: false,
            link_key: None,
            uploads_per_user: 4,
            page_max: 100,
            part_bytes: 8 * 1024 * 1024,
            open_uploads_per_user: 4,
            upload_expiry_ms: 24 * 3_600_000,
        }
    }
}

/// What the service needs from the rest of the platform.
pub struct FilesDeps {
    pub store: Arc<dyn FileStore>,
    /// Resumable uploads in progress.
    pub uploads: Arc<dyn UploadStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The virus scanner; `None`: files are stored `unscanned`.
    pub scanner: Option<Arc<dyn Scanner>>,
    pub jobs: Arc<dyn JobQueue>,
    pub audit: Arc<dyn AuditLog>,
}

/// Every action the files service writes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilesAction {
    /// A scan found a virus: the file is quarantined.
    Infected,
    /// A share link was made.
    LinkCreated,
    /// A share link was revoked.
    LinkRevoked,
}

impl FilesAction {
    pub const ALL: &'static [FilesAction] = &[
        FilesAction::Infected,
        FilesAction::LinkCreated,
        FilesAction::LinkRevoked,
    ];
}

impl AuditAction for FilesAction {
    fn name(self) -> &'static str {
        match self {
            FilesAction::Infected => "files.infected",
            FilesAction::LinkCreated => "files.link_created",
            FilesAction::LinkRevoked => "files.link_revoked",
        }
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// No such file (or link, or variant) for this owner.
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the file name is not accepted: {0}")]
    InvalidName(#[from] NameError),
    #[error(transparent)]
    Type(#[from] KindError),
    #[error(transparent)]
    Image(ImageError),
    /// Larger than `files.max_file_bytes`.
    #[error("the file is larger than the limit of {max} bytes")]
    TooLarge { max: u64 },
    /// Larger than the virus scanner accepts: refused rather than stored unscanned.
    #[error(
        "the file is larger than the {max} bytes the virus scanner accepts; files that cannot \
         be scanned are not stored"
    )]
    TooLargeToScan { max: u64 },
    /// The upload would pass the owner's quota.
    #[error(
        "this upload would pass your quota ({used_bytes} of {max_bytes} bytes and {used_files} \
         of {max_files} files used); delete files to make room"
    )]
    OverQuota {
        used_bytes: u64,
        max_bytes: u64,
        used_files: u64,
        max_files: u64,
    },
    #[error("{max} uploads are in progress already; wait for one to finish")]
    TooManyUploads { max: usize },
    #[error("{max} resumable uploads are open already; complete or cancel one first")]
    TooManyOpenUploads { max: u32 },
    #[error("the upload has {parts} parts, numbered from 0")]
    InvalidPart { parts: u32 },
    #[error("this part must be {expected} bytes; {got} arrived")]
    PartSize { expected: u64, got: u64 },
    #[error("parts are missing; send them first")]
    PartsMissing(Vec<u32>),
    /// The body ended early or could not be read (the client went away): nothing was kept.
    #[error("the upload did not arrive whole ({0}); nothing was stored, send it again")]
    Incomplete(String),
    /// The file is waiting for its virus scan.
    #[error("the file is still being scanned for viruses; try again in a moment")]
    NotReady,
    /// An image's preview is not made yet (the variants job has not run).
    #[error("the image is still being prepared; try again in a moment")]
    Preparing,
    /// A virus was found: the file is never served.
    #[error("the file is quarantined: the virus scanner found {threat}")]
    Quarantined { threat: String },
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("a link lives between 1 and {max} hours")]
    InvalidHours { max: u32 },
    /// The link's token is malformed, tampered with or expired.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The link was revoked, or its file is gone or not servable.
    #[error("this link was revoked or its file is no longer available")]
    LinkGone,
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("blob storage: {0}")]
    Blob(BlobError),
    #[error("job queue: {0}")]
    Jobs(#[from] JobError),
}

impl From<StoreError> for FilesError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => FilesError::NotFound("file"),
            other => FilesError::Store(other),
        }
    }
}

impl From<BlobError> for FilesError {
    fn from(e: BlobError) -> Self {
        FilesError::Blob(e)
    }
}

pub type FilesResult<T> = Result<T, FilesError>;

/// The files service.
pub struct FilesService {
    store: Arc<dyn FileStore>,
    uploads_store: Arc<dyn UploadStore>,
    blobs: Arc<dyn BlobStore>,
    scanner: Option<Arc<dyn Scanner>>,
    jobs: Arc<dyn JobQueue>,
    audit: Arc<dyn AuditLog>,
    settings: FilesSettings,
    uploads: UserSlots,
    /// The link signer, made at first use (its key may live in the database).
    signer: OnceCell<LinkSigner>,
    /// What the last reconciliation found in this process.
    reconciliation: parking_lot::Mutex<Option<Reconciliation>>,
    /// PDFs being read for their text in this process.
    pdf_readers: tokio::sync::Semaphore,
}

impl std::fmt::Debug for FilesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesService")
            .field("settings.max_file_bytes", &self.settings.max_file_bytes)
            .field("scanner", &self.scanner)
            .finish_non_exhaustive()
    }
}

impl FilesService {
    pub fn new(deps: FilesDeps, settings: FilesSettings) -> Arc<Self> {
        Arc::new(Self {
            store: deps.store,
            uploads_store: deps.uploads,
            blobs: deps.blobs,
            scanner: deps.scanner,
            jobs: deps.jobs,
            audit: deps.audit,
            uploads: UserSlots::new(settings.uploads_per_user),
            settings,
            signer: OnceCell::new(),
            reconciliation: parking_lot::Mutex::new(None),
            pdf_readers: tokio::sync::Semaphore::new(PDF_READERS),
        })
    }

    pub fn settings(&self) -> &FilesSettings {
        &self.settings
    }

    /// Whether uploads are scanned for viruses.
    pub fn scanning(&self) -> bool {
        self.scanner.is_some()
    }

    /// The largest upload accepted now: the per-file limit, and the scanner's when there is
    /// one.
    pub fn max_upload_bytes(&self) -> u64 {
        match &self.scanner {
            Some(scanner) => self.settings.max_file_bytes.min(scanner.max_bytes()),
            None => self.settings.max_file_bytes,
        }
    }

    /// What the owner stores.
    pub async fn usage(&self, owner: uuid::Uuid) -> FilesResult<Usage> {
        Ok(self.store.usage(owner).await?)
    }

    /// Whether `size` is within the upload limits (the per-file one, the scanner's).
    fn check_size(&self, size: u64) -> FilesResult<()> {
        if size > self.settings.max_file_bytes {
            return Err(FilesError::TooLarge {
                max: self.settings.max_file_bytes,
            });
        }
        if let Some(scanner) = &self.scanner
            && size > scanner.max_bytes()
        {
            return Err(FilesError::TooLargeToScan {
                max: scanner.max_bytes(),
            });
        }
        Ok(())
    }

    fn over_quota_error(&self, usage: Usage) -> FilesError {
        FilesError::OverQuota {
            used_bytes: usage.bytes,
            max_bytes: self.settings.quota.max_bytes,
            used_files: usage.files,
            max_files: self.settings.quota.max_files,
        }
    }

    /// The state a new upload starts in.
    fn initial_state(&self) -> FileState {
        if self.scanner.is_some() {
            FileState::Pending
        } else {
            FileState::Unscanned
        }
    }

    /// Records an audit event; a failure costs the entry (logged), not the operation.
    async fn audit(&self, event: AuditEvent) {
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, "cannot record an audit event");
        }
    }

    fn audit_event(action: FilesAction, client: &ClientMeta) -> AuditEvent {
        AuditEvent::new(action, Outcome::Success, client)
    }

    /// The link signer: the configured key, or the one kept in the database (made once).
    async fn signer(&self) -> FilesResult<&LinkSigner> {
        self.signer
            .get_or_try_init(|| async {
                let key = match &self.settings.link_key {
                    Some(key) => key.clone(),
                    None => {
                        let mut fresh = [0u8; 32];
                        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
                        self.store.link_key(&fresh).await?
                    }
                };
                Ok(LinkSigner::new(&key))
            })
            .await
    }
}

#[async_trait::async_trait]
impl confab_bus::purge::UserData for FilesService {
    async fn purge_user_data(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<confab_bus::purge::PurgeCounts, confab_bus::purge::PurgeError> {
        let purge = |e: FilesError| confab_bus::purge::PurgeError(e.to_string());
        let uploads = self.purge_uploads(user_id).await.map_err(purge)?;
        let files = self.purge_user(user_id).await.map_err(purge)?;
        Ok([("files".to_owned(), files), ("uploads".to_owned(), uploads)].into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_dotted_unique_and_listed() {
        confab_core::audit::check_action_names("files", FilesAction::ALL).unwrap();
    }
}
