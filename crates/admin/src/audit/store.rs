//! [`SqlAuditLog`]: the audit log in the database (SQLite or PostgreSQL), the adapter of the
//! [`AuditLog`] and [`AuditReader`] ports. Appends serialise on the one row of `audit_head`.

use std::path::Path;

use async_trait::async_trait;
use confab_core::audit::{AuditEvent, AuditLog, AuditLogError, AuditRecord};
use confab_store::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::chain::{Content, Details, Stored};
use super::{
    ActionMatch, Appended, ArchiveRecord, AuditEntry, AuditError, AuditFilter, AuditReader,
    GENESIS_HASH, PAGE, VerifyReport,
};

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

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Store(e.into())
    }
}

/// The audit log in the database.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    pub(super) db: Db,
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
                let content = content_from_row(row)?;
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
        self.append_record(event.into_record()).await
    }

    /// Appends a record made elsewhere (another service's, delivered as a durable event) with
    /// its own id and time. A record whose id is in the log already is not appended again:
    /// its place is returned, so a redelivered event is harmless.
    pub async fn append_record(&self, record: AuditRecord) -> Result<Appended, AuditError> {
        let content = Content {
            id: record.id.to_string(),
            at: record.at,
            actor: record.actor.map(|a| a.to_string()),
            action: record.action,
            target: record.target,
            outcome: record.outcome.as_str().to_owned(),
            ip: record.ip.map(|ip| ip.to_string()),
            user_agent: record.user_agent,
            request_id: record.request_id,
            details: Details(record.details.to_string()),
        };
        let mut tx = self.db.writer().begin().await?;
        // Writing first takes the lock that orders every append.
        let head =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut *tx)
                .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash: String = head.try_get("hash")?;
        // Under the head's lock, so two deliveries of one record cannot both pass.
        if let Some(existing) = sqlx::query("SELECT seq, hash FROM audit_log WHERE id = $1")
            .bind(&content.id)
            .fetch_optional(&mut *tx)
            .await?
        {
            tx.rollback().await?;
            return Ok(Appended {
                id: content.id,
                seq: existing.try_get("seq")?,
                hash: existing.try_get("hash")?,
            });
        }
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
        .bind(&content.details.0)
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

    /// Entries matching `filter`, newest first, before `before_seq` when given. The listing
    /// tolerates replication lag: a replica serves it when configured (the export, which
    /// must reach the head it was asked at, reads the primary).
    pub async fn list(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let rows = self
            .db
            .read_lagging(|pool| async move {
                bind_filter(
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
                .fetch_all(&pool)
                .await
            })
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

    /// Records an archive file and deletes the entries it holds, in one transaction: entries
    /// leave the database only once a record names the file that keeps them.
    pub(super) async fn record_archive(&self, record: &ArchiveRecord) -> Result<(), AuditError> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(
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
        .await?;
        sqlx::query("DELETE FROM audit_log WHERE seq >= $1 AND seq <= $2")
            .bind(record.from_seq)
            .bind(record.to_seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The oldest row without chain fields, if any.
    pub(super) async fn first_unchained(&self) -> Result<Option<String>, AuditError> {
        let row = sqlx::query("SELECT id FROM audit_log WHERE seq IS NULL ORDER BY at, id LIMIT 1")
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    /// How many entries the chain has ever had (its head's `seq`; archived ones included):
    /// one indexed row (`confab_audit_chain_length`).
    pub async fn chain_length(&self) -> Result<i64, AuditError> {
        Ok(self.head().await?.0)
    }

    pub(super) async fn head(&self) -> Result<(i64, String), AuditError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.db.pool())
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// The newest archive's end: the chain in the database continues after it.
    pub(super) async fn anchor(&self) -> Result<(i64, String), AuditError> {
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
    pub(super) async fn chain_page(
        &self,
        after: i64,
        until: i64,
    ) -> Result<Vec<Stored>, AuditError> {
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
            .map(stored_from_row)
            .collect::<Result<_, _>>()
            .map_err(AuditError::from)
    }
}

fn content_from_row(row: &AnyRow) -> Result<Content, sqlx::Error> {
    Ok(Content {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
        details: Details(row.try_get("details")?),
    })
}

pub(super) fn stored_from_row(row: &AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        seq: row.try_get("seq")?,
        content: content_from_row(row)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
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
        .map(|row| stored_from_row(row).map(Stored::into_entry))
        .collect::<Result<_, _>>()
        .map_err(AuditError::from)
}

#[async_trait]
impl AuditLog for SqlAuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), AuditLogError> {
        let action = event.action;
        self.append(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(action, error = %e, "audit record failed");
            AuditLogError::Unavailable(e.to_string())
        })
    }
}

#[async_trait]
impl AuditReader for SqlAuditLog {
    async fn list(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        SqlAuditLog::list(self, filter, before_seq, limit).await
    }

    async fn list_ascending(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        until_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        SqlAuditLog::list_ascending(self, filter, after_seq, until_seq, limit).await
    }

    async fn verify_with_archives(
        &self,
        archive_dir: Option<&Path>,
    ) -> Result<VerifyReport, AuditError> {
        SqlAuditLog::verify_with_archives(self, archive_dir).await
    }

    async fn archives(&self) -> Result<Vec<ArchiveRecord>, AuditError> {
        SqlAuditLog::archives(self).await
    }

    async fn append(&self, event: AuditEvent) -> Result<Appended, AuditError> {
        SqlAuditLog::append(self, event).await
    }
}
