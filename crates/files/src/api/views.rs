//! The API's shapes: files, usage, links and the admin views, as JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{FileKind, FileRecord, FileState, LinkRecord, Usage};

/// A stored file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    pub id: Uuid,
    /// The name given at upload (metadata only: the file is stored by id).
    pub name: String,
    /// The MIME type detected from the content.
    pub content_type: String,
    pub kind: FileKind,
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// `pending` until scanned; only `clean` and `unscanned` files are served.
    pub state: FileState,
    /// The virus found, for an `infected` (quarantined) file.
    pub threat: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Whether `/thumbnail` and `/preview` have something to show.
    pub has_thumbnail: bool,
    /// RFC 3339.
    pub created_at: String,
    pub scanned_at: Option<String>,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl From<FileRecord> for FileView {
    fn from(f: FileRecord) -> Self {
        Self {
            id: f.id,
            name: f.name,
            content_type: f.content_type,
            kind: f.kind,
            size: f.size,
            sha256: f.sha256,
            state: f.state,
            threat: f.threat,
            width: f.width,
            height: f.height,
            has_thumbnail: f.variants,
            created_at: rfc3339(f.created_ms),
            scanned_at: f.scanned_ms.map(rfc3339),
        }
    }
}

/// One page of files, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileView>,
    /// Pass as `before` for the next page; `null` on the last.
    pub next: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = FileQuota)]
pub struct QuotaView {
    pub max_bytes: u64,
    pub max_files: u64,
}

/// What the user stores against their quota, and the limits of an upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    pub usage: Usage,
    pub quota: QuotaView,
    /// The largest single upload accepted.
    pub max_file_bytes: u64,
    /// Whether uploads are scanned for viruses (`false`: stored as `unscanned`).
    pub scanning: bool,
    /// The kinds of files accepted.
    pub allowed_kinds: Vec<FileKind>,
}

/// A share link. `url` is known only when it is made.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub id: Uuid,
    /// `/f/{token}`, relative to the server; shown once.
    pub url: Option<String>,
    pub expires_at: String,
    pub revoked: bool,
    pub created_at: String,
}

impl LinkView {
    pub(crate) fn new(link: &LinkRecord, url: Option<String>) -> Self {
        Self {
            id: link.id,
            url,
            expires_at: rfc3339(link.expires_ms),
            revoked: link.revoked,
            created_at: rfc3339(link.created_ms),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkView>,
}

/// How long a new link lives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// 1 to `files.link_max_hours` (a week by default).
    pub hours: u32,
}

/// A file in the admin list, with its owner.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminFileView {
    pub owner: Uuid,
    #[serde(flatten)]
    pub file: FileView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminFileList {
    pub files: Vec<AdminFileView>,
    pub next: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserStorage {
    pub owner: Uuid,
    pub bytes: u64,
    pub files: u64,
}

/// Files per state across users.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct StateCounts {
    pub pending: u64,
    pub clean: u64,
    pub infected: u64,
    pub unscanned: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorageTotals {
    pub bytes: u64,
    pub by_state: StateCounts,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScannerView {
    /// `false`: uploads are stored unscanned (set `files.clamd_address`).
    pub configured: bool,
    pub address: Option<String>,
    /// Whether clamd answered just now; `null` when none is configured.
    pub reachable: Option<bool>,
}

/// What the last comparison of stored blobs with the files' rows found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationView {
    pub at: String,
    pub blobs_checked: u64,
    /// Blobs without a file, removed after the grace period.
    pub orphans_removed: u64,
    /// Files whose content is missing from storage (at most 100 listed).
    pub missing: Vec<Uuid>,
    pub missing_count: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorageView {
    pub users: Vec<UserStorage>,
    pub totals: StorageTotals,
    pub scanner: ScannerView,
    /// `null` until the first reconciliation in the serving process.
    pub reconciliation: Option<ReconciliationView>,
}
