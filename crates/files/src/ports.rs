//! The ports the files service needs: its own storage ([`FileStore`]), a virus scanner
//! ([`Scanner`](crate::scan::Scanner)), and from other crates the blob store, the job queue
//! and the audit log. Every owner-facing store method names the owner, so one user's ids never
//! reach another's rows.

use async_trait::async_trait;
use confab_store::StoreError;
use uuid::Uuid;

use crate::domain::{FileRecord, FileState, LinkRecord, Quota, Usage};

pub use crate::scan::{ScanError, ScanVerdict, Scanner};

pub type StoreResult<T> = Result<T, StoreError>;

/// The insert would pass the owner's quota: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// What the owner stored when the insert was refused.
    pub usage: Usage,
}

/// Files, their owners' usage, and share links.
#[async_trait]
pub trait FileStore: Send + Sync + std::fmt::Debug {
    /// Stores the row and adds its size and one file to the owner's usage, in one
    /// transaction, unless that would pass `quota`: concurrent inserts never overshoot.
    async fn insert(&self, file: &FileRecord, quota: Quota) -> StoreResult<Result<(), OverQuota>>;

    /// The owner's file.
    async fn get(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<FileRecord>>;

    /// The owner's files among `ids`, in no particular order (missing ones and another
    /// owner's are left out), in one query.
    async fn get_many(&self, owner: Uuid, ids: &[Uuid]) -> StoreResult<Vec<FileRecord>>;

    /// Any file by id (for jobs and links, which carry no user).
    async fn get_any(&self, id: Uuid) -> StoreResult<Option<FileRecord>>;

    /// The owner's files, newest first; `before`: only those with a smaller id (ids are
    /// UUIDv7, so in creation order).
    async fn list(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>>;

    async fn usage(&self, owner: Uuid) -> StoreResult<Usage>;

    /// Moves a file from `from` to `to` (with the threat name for `infected`) and stamps the
    /// scan time; `false` when it was not in `from` (another worker got there first).
    async fn set_state(
        &self,
        id: Uuid,
        from: FileState,
        to: FileState,
        threat: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<bool>;

    /// Records an image's dimensions and that its variants are stored.
    async fn set_variants(&self, id: Uuid, width: u32, height: u32) -> StoreResult<()>;

    /// Deletes the owner's file with its links and gives its room back, in one transaction;
    /// the deleted row, or `None` when there was none.
    async fn delete(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<FileRecord>>;

    /// Every file of the owner (for the user purge), oldest first, at most `limit`.
    async fn owned(&self, owner: Uuid, limit: u32) -> StoreResult<Vec<FileRecord>>;

    /// Files in `state` across owners, newest first (the admin view).
    async fn by_state(
        &self,
        state: FileState,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>>;

    /// Usage per owner, largest first (the admin view).
    async fn storage(&self, limit: u32) -> StoreResult<Vec<(Uuid, Usage)>>;

    /// Counts of files per state across owners, and the total bytes.
    async fn totals(&self) -> StoreResult<(Vec<(FileState, u64)>, u64)>;

    async fn insert_link(&self, link: &LinkRecord) -> StoreResult<()>;

    async fn link(&self, id: Uuid) -> StoreResult<Option<LinkRecord>>;

    /// The owner's links to one file, newest first.
    async fn links(&self, owner: Uuid, file_id: Uuid) -> StoreResult<Vec<LinkRecord>>;

    /// Revokes the owner's link; `false` when there is none.
    async fn revoke_link(&self, owner: Uuid, id: Uuid) -> StoreResult<bool>;

    /// The service's link-signing key: `fresh` is kept when none is stored yet, and the stored
    /// one is returned (every replica ends up with the same key).
    async fn link_key(&self, fresh: &[u8]) -> StoreResult<Vec<u8>>;

    /// Forgets an owner who has no files left (the user purge): their usage row and any
    /// link rows. `false` when files remain (nothing is removed then).
    async fn forget_owner(&self, owner: Uuid) -> StoreResult<bool>;
}

/// A resumable upload being sent in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: Uuid,
    pub owner: Uuid,
    /// The sanitised name the file will have.
    pub name: String,
    /// The type the client declared, if any.
    pub declared_type: Option<String>,
    /// The whole file's size, declared at creation.
    pub size: u64,
    /// The size of every part but the last.
    pub part_bytes: u64,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl UploadRecord {
    /// How many parts the file is sent in.
    pub fn parts(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_bytes.max(1))).unwrap_or(u32::MAX)
    }

    /// The length part `n` must have, or `None` past the last part.
    pub fn part_len(&self, n: u32) -> Option<u64> {
        let start = u64::from(n).checked_mul(self.part_bytes)?;
        (start < self.size).then(|| self.part_bytes.min(self.size - start))
    }

    /// Where part `n` is kept until the upload completes.
    pub fn part_key(&self, n: u32) -> String {
        format!("uploads/{}/{}/{n}", self.owner.simple(), self.id.simple())
    }
}

/// Resumable uploads and the parts received.
#[async_trait]
pub trait UploadStore: Send + Sync + std::fmt::Debug {
    /// Stores a new upload unless the owner has `max_open` open already; `false` then.
    async fn create_upload(&self, upload: &UploadRecord, max_open: u32) -> StoreResult<bool>;

    /// The owner's upload.
    async fn upload(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<UploadRecord>>;

    /// Records that part `n` is stored (again: a resent part is recorded once).
    async fn add_part(&self, id: Uuid, n: u32) -> StoreResult<()>;

    /// The parts received, in order.
    async fn parts(&self, id: Uuid) -> StoreResult<Vec<u32>>;

    /// Deletes the upload and its part rows; `false` when there was none.
    async fn delete_upload(&self, id: Uuid) -> StoreResult<bool>;

    /// Uploads that expired before `now_ms`, at most `limit`.
    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>>;

    /// Every upload of the owner (for the user purge).
    async fn owned_uploads(&self, owner: Uuid) -> StoreResult<Vec<UploadRecord>>;
}
