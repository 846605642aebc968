//! The files service's one storage adapter, [`SqlFileStore`], on SQLite and PostgreSQL
//! (`sqlx::Any`, portable SQL): file rows with their owners' usage counters (`files`) and
//! share links with the link-signing key (`links`), and resumable uploads with
//! their parts (`uploads`). Ids are UUIDv7 text, so ordering by id is
//! ordering by creation, and cursors compare ids.
//!
//! Writes go through [`Db::writer`]: on SQLite they queue in the process for its one writer
//! connection, which also makes the quota check and the counter update of an insert one
//! serial step; on PostgreSQL the conditional update of the usage row takes its row lock.

pub(crate) use confab_store::rows::{corrupt, uuid};
use confab_store::{Db, ServiceMigrations};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{FileKind, FileRecord, FileState, LinkRecord, Usage};
use crate::ports::StoreResult;

/// The columns a [`FileRecord`] is read from, in `SELECT` and `RETURNING` lists.
macro_rules! file_columns {
    () => {
        "id, owner, name, content_type, kind, size, sha256, state, threat, width, height, \
         variants, created_ms, scanned_ms"
    };
}

/// The columns a [`LinkRecord`] is read from.
macro_rules! link_columns {
    () => {
        "id, file_id, owner, expires_ms, created_ms, revoked"
    };
}

mod files;
mod links;
mod uploads;

/// The files service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "files",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

/// [`FileStore`](crate::ports::FileStore) on the database.
#[derive(Debug, Clone)]
pub struct SqlFileStore {
    db: Db,
}

impl SqlFileStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A size or count: stored as `BIGINT`, never negative as written.
fn unsigned(row: &AnyRow, column: &str) -> StoreResult<u64> {
    let n: i64 = row.try_get(column)?;
    u64::try_from(n).map_err(|_| corrupt(column))
}

fn opt_u32(row: &AnyRow, column: &str) -> StoreResult<Option<u32>> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u32::try_from(n).map_err(|_| corrupt(column)))
        .transpose()
}

fn flag(row: &AnyRow, column: &str) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn state(row: &AnyRow, column: &str) -> StoreResult<FileState> {
    let text: String = row.try_get(column)?;
    FileState::parse(&text).ok_or_else(|| corrupt(column))
}

fn file(row: &AnyRow) -> StoreResult<FileRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(FileRecord {
        id: uuid(row, "id")?,
        owner: uuid(row, "owner")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        kind: FileKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        size: unsigned(row, "size")?,
        sha256: row.try_get("sha256")?,
        state: state(row, "state")?,
        threat: row.try_get("threat")?,
        width: opt_u32(row, "width")?,
        height: opt_u32(row, "height")?,
        variants: flag(row, "variants")?,
        created_ms: row.try_get("created_ms")?,
        scanned_ms: row.try_get("scanned_ms")?,
    })
}

fn usage(row: &AnyRow) -> StoreResult<Usage> {
    Ok(Usage {
        bytes: unsigned(row, "bytes")?,
        files: unsigned(row, "files")?,
    })
}

fn link(row: &AnyRow) -> StoreResult<LinkRecord> {
    Ok(LinkRecord {
        id: uuid(row, "id")?,
        file_id: uuid(row, "file_id")?,
        owner: uuid(row, "owner")?,
        expires_ms: row.try_get("expires_ms")?,
        created_ms: row.try_get("created_ms")?,
        revoked: flag(row, "revoked")?,
    })
}
