//! The audit log: an append-only, hash-chained table behind the [`AuditLog`] port; its
//! verification; and retention that archives old entries into JSONL files before deleting
//! them.
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

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use confab_core::audit::{AuditEvent, AuditLog};
use confab_store::{Db, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use utoipa::ToSchema;

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

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Store(e.into())
    }
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
    #[schema(value_type = Object)]
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

/// The hashed content of an entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    id: String,
    at: i64,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    /// The JSON text exactly as stored.
    details: String,
}

impl Content {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            outcome: row.try_get("outcome")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
            request_id: row.try_get("request_id")?,
            details: row.try_get("details")?,
        })
    }

    /// The entry's hash at `seq` after `prev_hash`.
    fn hash(&self, seq: i64, prev_hash: &str) -> String {
        let canonical = serde_json::json!([
            "confab-audit-v1",
            seq,
            self.id,
            self.at,
            self.actor,
            self.action,
            self.target,
            self.outcome,
            self.ip,
            self.user_agent,
            self.request_id,
            self.details,
            prev_hash,
        ]);
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A chained row.
#[derive(Debug, Clone)]
struct Stored {
    seq: i64,
    content: Content,
    prev_hash: String,
    hash: String,
}

impl Stored {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: row.try_get("seq")?,
            content: Content::from_row(row)?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    fn into_entry(self) -> AuditEntry {
        let c = self.content;
        AuditEntry {
            details: serde_json::from_str(&c.details)
                .unwrap_or(serde_json::Value::String(c.details)),
            id: c.id,
            seq: self.seq,
            at: c.at,
            actor: c.actor,
            action: c.action,
            target: c.target,
            outcome: c.outcome,
            ip: c.ip,
            user_agent: c.user_agent,
            request_id: c.request_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Checks entries one after another.
struct ChainCheck {
    expected_seq: i64,
    prev_hash: String,
}

impl ChainCheck {
    fn new(expected_seq: i64, prev_hash: impl Into<String>) -> Self {
        Self {
            expected_seq,
            prev_hash: prev_hash.into(),
        }
    }

    /// Checks the next entry; on success it becomes the previous one.
    fn next(&mut self, entry: &Stored) -> Result<(), BrokenEntry> {
        let broken = |kind, reason: String| BrokenEntry {
            seq: Some(entry.seq),
            id: Some(entry.content.id.clone()),
            kind,
            reason,
        };
        if entry.seq != self.expected_seq {
            return Err(broken(
                BreakKind::Gap,
                if entry.seq == self.expected_seq + 1 {
                    format!("entry {} is missing before it", self.expected_seq)
                } else {
                    format!(
                        "entries {} to {} are missing before it",
                        self.expected_seq,
                        entry.seq - 1
                    )
                },
            ));
        }
        if entry.prev_hash != self.prev_hash {
            return Err(broken(
                BreakKind::PrevHashMismatch,
                "its prev_hash is not the hash of the entry before it".into(),
            ));
        }
        if entry.content.hash(entry.seq, &entry.prev_hash) != entry.hash {
            return Err(broken(
                BreakKind::HashMismatch,
                "its content does not match its hash: it was changed after it was written".into(),
            ));
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }
}

/// Columns of a stored entry, in `SELECT` lists.
macro_rules! entry_columns {
    () => {
        "seq, id, at, actor, action, target, outcome, ip, user_agent, request_id, details, \
         prev_hash, hash"
    };
}

/// Shared by the two listing orders: nullable parameters $1..$7 are the filters.
macro_rules! filter_clause {
    () => {
        "seq IS NOT NULL \
         AND ($1 IS NULL OR actor = $1) \
         AND ($2 IS NULL OR action = $2) \
         AND ($3 IS NULL OR substr(action, 1, length($3)) = $3) \
         AND ($4 IS NULL OR target = $4) \
         AND ($5 IS NULL OR outcome = $5) \
         AND ($6 IS NULL OR at >= $6) \
         AND ($7 IS NULL OR at < $7)"
    };
}

/// The audit log in the database.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    db: Db,
}

impl SqlAuditLog {
    /// The log over `db`, as is; see [`SqlAuditLog::open`].
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The log over `db`, with any rows written before the chain existed chained first.
    pub async fn open(db: Db) -> Result<Self, AuditError> {
        let log = Self::new(db);
        let chained = log.chain_legacy().await?;
        if chained > 0 {
            tracing::info!(
                chained,
                "audit entries written before the hash chain are chained"
            );
        }
        Ok(log)
    }

    /// Gives rows without chain fields (written before the chain existed, or by an older
    /// version still running) their place at the end of the chain, oldest first. Returns how
    /// many. Safe to run from several processes at once.
    pub async fn chain_legacy(&self) -> Result<u64, AuditError> {
        let mut total = 0;
        loop {
            let mut tx = self.db.writer().begin().await?;
            let head =
                sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
                    .fetch_one(&mut *tx)
                    .await?;
            let mut seq: i64 = head.try_get("seq")?;
            let mut hash: String = head.try_get("hash")?;
            let rows = sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM audit_log WHERE seq IS NULL ORDER BY at, id LIMIT $1"
            ))
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                tx.rollback().await?;
                return Ok(total);
            }
            for row in &rows {
                let content = Content::from_row(row)?;
                seq += 1;
                let next = content.hash(seq, &hash);
                sqlx::query(
                    "UPDATE audit_log SET seq = $1, prev_hash = $2, hash = $3 \
                     WHERE id = $4 AND seq IS NULL",
                )
                .bind(seq)
                .bind(&hash)
                .bind(&next)
                .bind(&content.id)
                .execute(&mut *tx)
                .await?;
                hash = next;
            }
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            total += rows.len() as u64;
        }
    }

    /// Appends one entry at the end of the chain.
    pub async fn append(&self, event: AuditEvent) -> Result<Appended, AuditError> {
        let content = Content {
            id: confab_core::new_id().to_string(),
            at: confab_core::now_ms(),
            actor: event.actor.map(|a| a.to_string()),
            action: event.action.to_owned(),
            target: event.target,
            outcome: event.outcome.as_str().to_owned(),
            ip: event.client.ip.map(|ip| ip.to_string()),
            user_agent: event.client.user_agent,
            request_id: event.client.request_id,
            details: event.details.to_string(),
        };
        let mut tx = self.db.writer().begin().await?;
        // Writing first takes the lock that orders every append.
        let head =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut *tx)
                .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash: String = head.try_get("hash")?;
        let hash = content.hash(seq, &prev_hash);
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, outcome, ip, user_agent, \
             request_id, details, seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&content.id)
        .bind(content.at)
        .bind(&content.actor)
        .bind(&content.action)
        .bind(&content.target)
        .bind(&content.outcome)
        .bind(&content.ip)
        .bind(&content.user_agent)
        .bind(&content.request_id)
        .bind(&content.details)
        .bind(seq)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Appended {
            id: content.id,
            seq,
            hash,
        })
    }

    /// Entries matching `filter`, newest first, before `before_seq` when given.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let rows = bind_filter(
            sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM audit_log WHERE ",
                filter_clause!(),
                " AND seq < $8 ORDER BY seq DESC LIMIT $9"
            )),
            filter,
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        entries(&rows)
    }

    /// Entries matching `filter` in chain order, with `after_seq < seq < until_seq`.
    pub async fn list_ascending(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        until_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let rows = bind_filter(
            sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM audit_log WHERE ",
                filter_clause!(),
                " AND seq > $8 AND seq < $9 ORDER BY seq LIMIT $10"
            )),
            filter,
        )
        .bind(after_seq)
        .bind(until_seq)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        entries(&rows)
    }

    /// The newest entries, optionally for one action only.
    pub async fn recent(
        &self,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let filter = AuditFilter {
            action: action.map(|a| ActionMatch::Exact(a.to_owned())),
            ..AuditFilter::default()
        };
        self.list(&filter, None, limit).await
    }

    /// The archive records, oldest first.
    pub async fn archives(&self) -> Result<Vec<ArchiveRecord>, AuditError> {
        let rows = sqlx::query(
            "SELECT from_seq, to_seq, entries, last_hash, file_name, file_sha256, at \
             FROM audit_archives ORDER BY from_seq",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ArchiveRecord {
                    from_seq: row.try_get("from_seq")?,
                    to_seq: row.try_get("to_seq")?,
                    entries: row.try_get("entries")?,
                    last_hash: row.try_get("last_hash")?,
                    file_name: row.try_get("file_name")?,
                    file_sha256: row.try_get("file_sha256")?,
                    at: row.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(AuditError::from)
    }

    async fn head(&self) -> Result<(i64, String), AuditError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.db.pool())
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// The newest archive's end: the chain in the database continues after it.
    async fn anchor(&self) -> Result<(i64, String), AuditError> {
        let row = sqlx::query(
            "SELECT to_seq, last_hash FROM audit_archives ORDER BY to_seq DESC LIMIT 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            Some(row) => Ok((row.try_get("to_seq")?, row.try_get("last_hash")?)),
            None => Ok((0, GENESIS_HASH.to_owned())),
        }
    }

    /// Chained rows with `after < seq <= until`, in order, at most one page.
    async fn chain_page(&self, after: i64, until: i64) -> Result<Vec<Stored>, AuditError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
        ))
        .bind(after)
        .bind(until)
        .bind(PAGE)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(Stored::from_row)
            .collect::<Result<_, _>>()
            .map_err(AuditError::from)
    }

    /// Walks the chain in the database (from the newest archive on) and checks every entry.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        self.verify_with_archives(None).await
    }

    /// Like [`SqlAuditLog::verify`]; with a directory, also checks each archive file found
    /// there against its record and its own chain (missing files are skipped).
    pub async fn verify_with_archives(
        &self,
        archive_dir: Option<&Path>,
    ) -> Result<VerifyReport, AuditError> {
        // Archiving at the same time moves entries out from under the walk: when the walk
        // meets a hole and a newer archive now covers it, walk again.
        let mut attempts = 0;
        loop {
            let anchor = self.anchor().await?;
            let report = self.verify_once(archive_dir).await?;
            attempts += 1;
            let moved = matches!(
                report.first_broken,
                Some(BrokenEntry {
                    kind: BreakKind::Gap | BreakKind::MissingTail,
                    ..
                })
            ) && self.anchor().await? != anchor;
            if !moved || attempts >= 3 {
                return Ok(report);
            }
        }
    }

    async fn verify_once(&self, archive_dir: Option<&Path>) -> Result<VerifyReport, AuditError> {
        // The head first: every entry up to it is committed.
        let (head_seq, head_hash) = self.head().await?;
        let mut report = VerifyReport {
            entries: 0,
            archived_entries: 0,
            archive_files_checked: 0,
            head_seq,
            first_broken: None,
        };
        let mut check = ChainCheck::new(1, GENESIS_HASH);
        for archive in self.archives().await? {
            if archive.from_seq != check.expected_seq {
                report.first_broken = Some(BrokenEntry {
                    seq: Some(check.expected_seq),
                    id: None,
                    kind: BreakKind::ArchiveGap,
                    reason: format!(
                        "the archive records jump from seq {} to the archive {}",
                        check.expected_seq, archive.file_name
                    ),
                });
                return Ok(report);
            }
            if let Some(dir) = archive_dir {
                let path = dir.join(&archive.file_name);
                if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    report.archive_files_checked += 1;
                    if let Some(broken) = check_archive_file(
                        &path,
                        &archive,
                        ChainCheck::new(check.expected_seq, check.prev_hash.clone()),
                    )
                    .await?
                    {
                        report.first_broken = Some(broken);
                        return Ok(report);
                    }
                }
            }
            report.archived_entries += u64::try_from(archive.entries).unwrap_or(0);
            check = ChainCheck::new(archive.to_seq + 1, archive.last_hash);
        }

        let mut after = check.expected_seq - 1;
        loop {
            let page = self.chain_page(after, head_seq).await?;
            for entry in &page {
                if let Err(broken) = check.next(entry) {
                    report.first_broken = Some(broken);
                    return Ok(report);
                }
                report.entries += 1;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        if check.expected_seq <= head_seq {
            report.first_broken = Some(BrokenEntry {
                seq: Some(check.expected_seq),
                id: None,
                kind: BreakKind::MissingTail,
                reason: format!(
                    "entries {} to {head_seq} are missing (the newest entries)",
                    check.expected_seq
                ),
            });
            return Ok(report);
        }
        if check.prev_hash != head_hash {
            report.first_broken = Some(BrokenEntry {
                seq: Some(head_seq),
                id: None,
                kind: BreakKind::HeadMismatch,
                reason: "the newest entry's hash is not the one the head records".into(),
            });
            return Ok(report);
        }
        let unchained =
            sqlx::query("SELECT id FROM audit_log WHERE seq IS NULL ORDER BY at, id LIMIT 1")
                .fetch_optional(self.db.pool())
                .await?;
        if let Some(row) = unchained {
            report.first_broken = Some(BrokenEntry {
                seq: None,
                id: Some(row.try_get("id")?),
                kind: BreakKind::Unchained,
                reason: "the row has no place in the chain (written without a hash); \
                         restarting the server chains it"
                    .into(),
            });
        }
        Ok(report)
    }

    /// Moves the oldest entries, as long as they are older than `cutoff_ms`, into JSONL files
    /// in `dir` (each written under a temporary name, synced, renamed), records each file in
    /// `audit_archives`, and only then deletes its entries. Refuses to archive a broken chain.
    pub async fn archive_older_than(
        &self,
        cutoff_ms: i64,
        dir: &Path,
    ) -> Result<ArchiveReport, AuditError> {
        let mut report = ArchiveReport::default();
        while let Some(record) = self.archive_one(cutoff_ms, dir).await? {
            report.entries += u64::try_from(record.entries).unwrap_or(0);
            let full = record.entries == MAX_ARCHIVE_ENTRIES;
            report.files.push(record);
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// Archives per a retention in days (0 keeps everything); see
    /// [`SqlAuditLog::archive_older_than`].
    pub async fn apply_retention(
        &self,
        retention_days: u32,
        dir: &Path,
    ) -> Result<ArchiveReport, AuditError> {
        if retention_days == 0 {
            return Ok(ArchiveReport::default());
        }
        let cutoff = confab_core::now_ms() - i64::from(retention_days) * 86_400_000;
        self.archive_older_than(cutoff, dir).await
    }

    /// Writes and records one archive file; `None` when nothing is old enough.
    async fn archive_one(
        &self,
        cutoff_ms: i64,
        dir: &Path,
    ) -> Result<Option<ArchiveRecord>, AuditError> {
        let (anchor_seq, anchor_hash) = self.anchor().await?;
        let (head_seq, _) = self.head().await?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error(dir))?;
        let temp = dir.join(format!(".audit-{}.jsonl.tmp", confab_core::new_id()));
        let written = self
            .write_archive(&temp, anchor_seq, anchor_hash, head_seq, cutoff_ms)
            .await;
        let (entries, last_hash, file_sha256) = match written {
            Ok(Some(written)) => written,
            Ok(None) | Err(_) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return written.map(|_| None);
            }
        };
        let from_seq = anchor_seq + 1;
        let to_seq = anchor_seq + entries;
        let file_name = format!("audit-{from_seq:012}-{to_seq:012}.jsonl");
        let path = dir.join(&file_name);
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(io_error(&path))?;
        sync_dir(dir).await;

        let record = ArchiveRecord {
            from_seq,
            to_seq,
            entries,
            last_hash,
            file_name,
            file_sha256,
            at: confab_core::now_ms(),
        };
        let mut tx = self.db.writer().begin().await?;
        let recorded = sqlx::query(
            "INSERT INTO audit_archives (id, from_seq, to_seq, entries, last_hash, file_name, \
             file_sha256, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(confab_core::new_id().to_string())
        .bind(record.from_seq)
        .bind(record.to_seq)
        .bind(record.entries)
        .bind(&record.last_hash)
        .bind(&record.file_name)
        .bind(&record.file_sha256)
        .bind(record.at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = recorded {
            drop(tx);
            // The file goes unless a record names it (another run wrote the same range).
            let archives = self.archives().await?;
            if !archives.iter().any(|a| a.file_name == record.file_name) {
                let _ = tokio::fs::remove_file(&path).await;
            }
            if archives.iter().any(|a| a.from_seq == record.from_seq) {
                tracing::warn!(error = %e, "audit archive not recorded; another run got there first");
                return Ok(None);
            }
            return Err(e.into());
        }
        sqlx::query("DELETE FROM audit_log WHERE seq >= $1 AND seq <= $2")
            .bind(record.from_seq)
            .bind(record.to_seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            from_seq = record.from_seq,
            to_seq = record.to_seq,
            file = %record.file_name,
            "audit entries archived"
        );
        Ok(Some(record))
    }

    /// Writes the entries after the anchor that are older than the cutoff to `temp`, checking
    /// the chain on the way; returns (entries, last hash, file sha256), or `None` if none.
    async fn write_archive(
        &self,
        temp: &Path,
        anchor_seq: i64,
        anchor_hash: String,
        head_seq: i64,
        cutoff_ms: i64,
    ) -> Result<Option<(i64, String, String)>, AuditError> {
        let mut check = ChainCheck::new(anchor_seq + 1, anchor_hash);
        let mut file: Option<tokio::io::BufWriter<tokio::fs::File>> = None;
        let mut digest = Sha256::new();
        let mut count = 0;
        let mut after = anchor_seq;
        'pages: loop {
            let page = self.chain_page(after, head_seq).await?;
            for entry in &page {
                if entry.content.at >= cutoff_ms || count == MAX_ARCHIVE_ENTRIES {
                    break 'pages;
                }
                check.next(entry).map_err(AuditError::Broken)?;
                let mut line = serde_json::to_vec(&ArchiveLine::from(entry))
                    .map_err(|e| io_error(temp)(std::io::Error::other(e)))?;
                line.push(b'\n');
                digest.update(&line);
                let writer = match &mut file {
                    Some(writer) => writer,
                    None => {
                        let created = tokio::fs::File::create(temp)
                            .await
                            .map_err(io_error(temp))?;
                        file.insert(tokio::io::BufWriter::new(created))
                    }
                };
                writer.write_all(&line).await.map_err(io_error(temp))?;
                count += 1;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        let Some(mut writer) = file else {
            return Ok(None);
        };
        writer.flush().await.map_err(io_error(temp))?;
        writer.get_ref().sync_all().await.map_err(io_error(temp))?;
        Ok(Some((count, check.prev_hash, hex(&digest.finalize()))))
    }
}

/// Binds the filter as parameters $1..$7.
fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    filter: &'q AuditFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let (exact, prefix) = match &filter.action {
        Some(ActionMatch::Exact(a)) => (Some(a.as_str()), None),
        Some(ActionMatch::Prefix(p)) => (None, Some(p.as_str())),
        None => (None, None),
    };
    query
        .bind(filter.actor.as_deref())
        .bind(exact)
        .bind(prefix)
        .bind(filter.target.as_deref())
        .bind(filter.outcome.as_deref())
        .bind(filter.from_ms)
        .bind(filter.to_ms)
}

fn entries(rows: &[AnyRow]) -> Result<Vec<AuditEntry>, AuditError> {
    rows.iter()
        .map(|row| Stored::from_row(row).map(Stored::into_entry))
        .collect::<Result<_, _>>()
        .map_err(AuditError::from)
}

/// One line of an archive file: an entry in its stored form.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveLine {
    seq: i64,
    id: String,
    /// Unix milliseconds, as stored and hashed.
    at: i64,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
    /// The stored text, when it is not exactly what `details` would be written as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details_text: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<&Stored> for ArchiveLine {
    fn from(entry: &Stored) -> Self {
        let c = &entry.content;
        let parsed = serde_json::from_str::<serde_json::Value>(&c.details)
            .ok()
            .filter(|v| serde_json::to_string(v).is_ok_and(|text| text == c.details));
        let (details, details_text) = match parsed {
            Some(value) => (Some(value), None),
            None => (None, Some(c.details.clone())),
        };
        Self {
            seq: entry.seq,
            id: c.id.clone(),
            at: c.at,
            actor: c.actor.clone(),
            action: c.action.clone(),
            target: c.target.clone(),
            outcome: c.outcome.clone(),
            ip: c.ip.clone(),
            user_agent: c.user_agent.clone(),
            request_id: c.request_id.clone(),
            details,
            details_text,
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        }
    }
}

impl From<ArchiveLine> for Stored {
    fn from(line: ArchiveLine) -> Self {
        let details = line
            .details_text
            .unwrap_or_else(|| line.details.unwrap_or(serde_json::Value::Null).to_string());
        Stored {
            seq: line.seq,
            content: Content {
                id: line.id,
                at: line.at,
                actor: line.actor,
                action: line.action,
                target: line.target,
                outcome: line.outcome,
                ip: line.ip,
                user_agent: line.user_agent,
                request_id: line.request_id,
                details,
            },
            prev_hash: line.prev_hash,
            hash: line.hash,
        }
    }
}

/// Checks an archive file line by line against its record; `Some` names what is wrong.
async fn check_archive_file(
    path: &Path,
    record: &ArchiveRecord,
    mut check: ChainCheck,
) -> Result<Option<BrokenEntry>, AuditError> {
    let file_broken = |seq: i64, id: Option<String>, reason: String| {
        Some(BrokenEntry {
            seq: Some(seq),
            id,
            kind: BreakKind::ArchiveFile,
            reason: format!("archive {}: {reason}", record.file_name),
        })
    };
    let file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let mut reader = tokio::io::BufReader::new(file);
    let mut digest = Sha256::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        digest.update(&line);
        let entry: Stored = match serde_json::from_slice::<ArchiveLine>(&line) {
            Ok(parsed) => parsed.into(),
            Err(e) => {
                return Ok(file_broken(
                    check.expected_seq,
                    None,
                    format!("unreadable line: {e}"),
                ));
            }
        };
        if let Err(broken) = check.next(&entry) {
            return Ok(file_broken(
                broken.seq.unwrap_or(entry.seq),
                broken.id,
                broken.reason,
            ));
        }
    }
    if check.expected_seq != record.to_seq + 1 || check.prev_hash != record.last_hash {
        return Ok(file_broken(
            check.expected_seq,
            None,
            "the file ends elsewhere than its record says".into(),
        ));
    }
    if hex(&digest.finalize()) != record.file_sha256 {
        return Ok(file_broken(
            record.from_seq,
            None,
            "the file's sha256 differs from the recorded one".into(),
        ));
    }
    Ok(None)
}

/// Makes a rename in `dir` durable (where the platform allows syncing a directory).
async fn sync_dir(dir: &Path) {
    if let Ok(handle) = tokio::fs::File::open(dir).await {
        let _ = handle.sync_all().await;
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[async_trait]
impl AuditLog for SqlAuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), String> {
        let action = event.action;
        self.append(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(action, error = %e, "audit record failed");
            e.to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content {
        Content {
            id: "0190a0a0-0000-7000-8000-000000000001".into(),
            at: 1_700_000_000_000,
            actor: None,
            action: "auth.login".into(),
            target: Some("ada@example.com".into()),
            outcome: "failure".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: None,
            details: r#"{"reason":"wrong_password"}"#.into(),
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_documented_canonical_form() {
        let c = content();
        let canonical = r#"["confab-audit-v1",1,"0190a0a0-0000-7000-8000-000000000001",1700000000000,null,"auth.login","ada@example.com","failure","127.0.0.1",null,null,"{\"reason\":\"wrong_password\"}","0000000000000000000000000000000000000000000000000000000000000000"]"#;
        assert_eq!(
            c.hash(1, GENESIS_HASH),
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        assert_ne!(c.hash(2, GENESIS_HASH), c.hash(1, GENESIS_HASH));
    }

    #[test]
    fn archive_lines_keep_the_stored_details_text() {
        let mut c = content();
        for text in [
            r#"{"reason":"wrong_password"}"#,
            "null",
            r#"{ "spaced": 1.10 }"#,
        ] {
            c.details = text.into();
            let stored = Stored {
                seq: 7,
                hash: c.hash(7, GENESIS_HASH),
                content: c.clone(),
                prev_hash: GENESIS_HASH.into(),
            };
            let line = serde_json::to_string(&ArchiveLine::from(&stored)).unwrap();
            let back: Stored = serde_json::from_str::<ArchiveLine>(&line).unwrap().into();
            assert_eq!(back.content, c, "{line}");
            assert_eq!(back.hash, stored.hash);
        }
    }

    #[test]
    fn chain_checks_name_the_problem() {
        let c = content();
        let first = Stored {
            seq: 1,
            hash: c.hash(1, GENESIS_HASH),
            content: c.clone(),
            prev_hash: GENESIS_HASH.into(),
        };
        let mut check = ChainCheck::new(1, GENESIS_HASH);
        check.next(&first).unwrap();
        let mut third = first.clone();
        third.seq = 3;
        assert_eq!(check.next(&third).unwrap_err().kind, BreakKind::Gap);
        let mut tampered = first.clone();
        tampered.seq = 2;
        tampered.prev_hash = first.hash.clone();
        assert_eq!(
            check.next(&tampered).unwrap_err().kind,
            BreakKind::HashMismatch
        );
    }
}
