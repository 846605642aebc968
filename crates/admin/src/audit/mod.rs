//! The audit log: an append-only, hash-chained table behind the [`AuditLog`] port (writing)
//! and the [`AuditReader`] port (reading, verifying); its verification; and retention that
//! archives old entries into JSONL files before deleting them. The chain's rules are pure
//! ([`chain`]); [`store`] keeps entries in the database, [`verify`] walks the chain and
//! [`archive`] moves old entries into files.
//!
//! Every entry carries `seq` (1, 2, 3… without gaps), `prev_hash` (the previous entry's hash;
//! 64 zeros for the first) and `hash` = lowercase hex SHA-256 of the compact JSON array
//! `["confab-audit-v1", seq, id, at, actor, action, target, outcome, ip, user_agent,
//! request_id, details, prev_hash]`, where `at` is Unix milliseconds, absent values are `null`
//! and `details` is the stored JSON text as a string. Anyone holding the rows (or an export, or
//! an archive file) can recompute the chain with a few lines of any language.
//!
//! Appends serialise on the one row of `audit_head`, which each append updates first in its
//! transaction (a row lock on PostgreSQL, the write lock on SQLite), so the chain never forks,
//! also with several processes on one database. The table's triggers refuse every update
//! except giving a row written before the chain existed its chain fields (done once, by
//! [`SqlAuditLog::open`]) and every deletion of a row that no recorded archive covers.
//!
//! Archive files (`<data_dir>/audit-archive/audit-<from>-<to>.jsonl`) hold one entry per line
//! in its stored form (`at` in milliseconds; `details` as JSON, or as `details_text` when the
//! stored text would not survive a JSON round trip byte for byte), hashes intact.

mod archive;
pub mod chain;
mod ingest;
mod store;
mod verify;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use confab_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use ingest::{AUDIT_INGEST_CONSUMER, AuditIngest};
pub use store::SqlAuditLog;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries read per query when walking the chain.
const PAGE: i64 = 1000;

/// Most entries in one archive file.
const MAX_ARCHIVE_ENTRIES: i64 = 50_000;

/// The directory archive files go to under a data directory.
pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit-archive")
}

/// What can go wrong in the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Archiving stops at a broken chain rather than move tampered entries out of sight.
    #[error("the audit chain is broken at {0}; nothing was archived")]
    Broken(BrokenEntry),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// The entry's place in the chain: 1, 2, 3… without gaps.
    pub seq: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The user who acted (absent for anonymous callers).
    pub actor: Option<String>,
    /// A dotted name such as `auth.login`.
    pub action: String,
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Action-specific detail: an object, or `null` when the action records none.
    #[schema(value_type = Option<Object>)]
    pub details: serde_json::Value,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) over the entry and `prev_hash`; see the module documentation.
    pub hash: String,
}

/// Which actions a filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    Exact(String),
    /// Every action starting with this (`auth.` for `auth.*`).
    Prefix(String),
}

/// Filters of a listing or an export; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<ActionMatch>,
    pub target: Option<String>,
    pub outcome: Option<String>,
    /// Entries at or after this instant (Unix ms).
    pub from_ms: Option<i64>,
    /// Entries before this instant (Unix ms).
    pub to_ms: Option<i64>,
}

/// The place of a just-appended entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub id: String,
    pub seq: i64,
    pub hash: String,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    /// Entries checked in the database.
    pub entries: u64,
    /// Entries moved to archive files by retention (as recorded).
    pub archived_entries: u64,
    /// Archive files found in the archive directory and checked entry by entry.
    pub archive_files_checked: u64,
    /// The newest entry's seq: the length of the chain.
    pub head_seq: i64,
    /// The first place where the chain does not hold; absent when it is intact.
    pub first_broken: Option<BrokenEntry>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BrokenEntry {
    /// The entry's seq (absent for a row outside the chain).
    pub seq: Option<i64>,
    /// The entry's id (absent when the entry itself is missing).
    pub id: Option<String>,
    pub kind: BreakKind,
    /// What is wrong, in words.
    pub reason: String,
}

impl std::fmt::Display for BrokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq}")?,
            None => write!(f, "an entry outside the chain")?,
        }
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The kinds of breakage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The entry's content no longer gives its hash: it was changed.
    HashMismatch,
    /// The entry does not point at the hash of the entry before it.
    PrevHashMismatch,
    /// Entries before this one are missing.
    Gap,
    /// The newest entries are missing (the head records more).
    MissingTail,
    /// The newest entry is not the one the head records.
    HeadMismatch,
    /// A row carries no chain fields.
    Unchained,
    /// The archive records do not continue one another.
    ArchiveGap,
    /// An archive file differs from its record or its chain does not hold.
    ArchiveFile,
}

/// One archive file, as recorded in `audit_archives`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchiveRecord {
    pub from_seq: i64,
    pub to_seq: i64,
    pub entries: i64,
    /// The hash of the entry `to_seq`: where the chain in the database continues from.
    pub last_hash: String,
    /// The file's name in the archive directory.
    pub file_name: String,
    /// SHA-256 (hex) of the whole file.
    pub file_sha256: String,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// What one archiving run moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReport {
    /// Entries moved out of the database.
    pub entries: u64,
    /// The files written, oldest first.
    pub files: Vec<ArchiveRecord>,
}

/// Reading the audit log: what the admin API needs, whatever keeps the entries.
#[async_trait]
pub trait AuditReader: Send + Sync {
    /// Entries matching `filter`, newest first, before `before_seq` when given.
    async fn list(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError>;
    /// Entries matching `filter` in chain order, with `after_seq < seq < until_seq`.
    async fn list_ascending(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        until_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError>;
    /// Walks the whole chain; with a directory, also each archive file found there.
    async fn verify_with_archives(
        &self,
        archive_dir: Option<&Path>,
    ) -> Result<VerifyReport, AuditError>;
    /// The archive records, oldest first.
    async fn archives(&self) -> Result<Vec<ArchiveRecord>, AuditError>;
    /// Appends an entry and says where it landed (an export records itself first, and reads
    /// up to that entry).
    async fn append(&self, event: confab_core::audit::AuditEvent) -> Result<Appended, AuditError>;
}
