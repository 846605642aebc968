//! [`FileStore`] on SQLite and PostgreSQL: file rows and their owners' usage counters, which
//! move together in one transaction. The quota is checked by the update that moves the
//! counters (`WHERE bytes <= max - size`), so two inserts racing for the last room cannot
//! both pass it: PostgreSQL re-checks the condition on the row the first one committed, and
//! SQLite runs one write transaction at a time.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_store::{Backend, StoreError, to_i64};
use sqlx::Row;
use uuid::Uuid;

use super::{SqlFileStore, file, state, unsigned, usage};
use crate::domain::{FileRecord, FileState, LinkRecord, Quota, Usage};
use crate::ports::{FileStore, OverQuota, StoreResult};

#[async_trait]
impl FileStore for SqlFileStore {
    async fn insert(&self, f: &FileRecord, quota: Quota) -> StoreResult<Result<(), OverQuota>> {
        let owner = f.owner.to_string();
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(
            "INSERT INTO files_usage (owner, bytes, files) VALUES ($1, 0, 0) \
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(&owner)
        .execute(&mut *tx)
        .await?;
        // Written as `bytes <= max - size` rather than `bytes + size <= max`: with an
        // unlimited quota (i64::MAX) the sum could overflow, the difference cannot.
        let moved = sqlx::query(
            "UPDATE files_usage SET bytes = bytes + $1, files = files + 1 \
             WHERE owner = $2 AND bytes <= $3 - $1 AND files <= $4 - 1",
        )
        .bind(to_i64(f.size))
        .bind(&owner)
        .bind(to_i64(quota.max_bytes))
        .bind(to_i64(quota.max_files))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            let row = sqlx::query("SELECT bytes, files FROM files_usage WHERE owner = $1")
                .bind(&owner)
                .fetch_one(&mut *tx)
                .await?;
            let usage = usage(&row)?;
            tx.rollback().await?;
            return Ok(Err(OverQuota { usage }));
        }
        sqlx::query(
            "INSERT INTO files (id, owner, name, content_type, kind, size, sha256, state, \
             threat, width, height, variants, created_ms, scanned_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(f.id.to_string())
        .bind(&owner)
        .bind(&f.name)
        .bind(&f.content_type)
        .bind(f.kind.as_str())
        .bind(to_i64(f.size))
        .bind(&f.sha256)
        .bind(f.state.as_str())
        .bind(f.threat.as_deref())
        .bind(f.width.map(i64::from))
        .bind(f.height.map(i64::from))
        .bind(i64::from(f.variants))
        .bind(f.created_ms)
        .bind(f.scanned_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<FileRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE id = $1 AND owner = $2"
        ))
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(file).transpose()
    }

    async fn get_many(&self, owner: Uuid, ids: &[Uuid]) -> StoreResult<Vec<FileRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids travel as one JSON array parameter, so the statement is the same whatever
        // their number.
        let sql = match self.db.backend() {
            Backend::Sqlite => concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE owner = $1 AND id IN (SELECT value FROM json_each($2))"
            ),
            Backend::Postgres => concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE owner = $1 AND id IN \
                 (SELECT jsonb_array_elements_text(CAST($2 AS jsonb)))"
            ),
        };
        let ids = serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let rows = sqlx::query(sql)
            .bind(owner.to_string())
            .bind(ids)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file).collect()
    }

    async fn get_any(&self, id: Uuid) -> StoreResult<Option<FileRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(file).transpose()
    }

    async fn list(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>> {
        // Two statements rather than `($2 IS NULL OR id < $2)`, so that SQLite seeks to the
        // cursor in `files_owner_id` instead of filtering every newer row.
        let query = match before {
            Some(before) => sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(owner.to_string())
            .bind(before.to_string()),
            None => sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE owner = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(owner.to_string()),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file).collect()
    }

    async fn usage(&self, owner: Uuid) -> StoreResult<Usage> {
        let row = sqlx::query("SELECT bytes, files FROM files_usage WHERE owner = $1")
            .bind(owner.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(usage).transpose()?.unwrap_or_default())
    }

    async fn set_state(
        &self,
        id: Uuid,
        from: FileState,
        to: FileState,
        threat: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE files SET state = $1, threat = $2, scanned_ms = $3 \
             WHERE id = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(threat)
        .bind(at_ms)
        .bind(id.to_string())
        .bind(from.as_str())
        .execute(self.db.writer())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn set_variants(&self, id: Uuid, width: u32, height: u32) -> StoreResult<()> {
        let result =
            sqlx::query("UPDATE files SET width = $1, height = $2, variants = 1 WHERE id = $3")
                .bind(i64::from(width))
                .bind(i64::from(height))
                .bind(id.to_string())
                .execute(self.db.writer())
                .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<FileRecord>> {
        let (id, owner) = (id.to_string(), owner.to_string());
        let mut tx = self.db.writer().begin().await?;
        // Deleting first and reading what went (rather than reading, then deleting) means a
        // second delete racing this one finds no row and gives no room back twice.
        let Some(row) = sqlx::query(concat!(
            "DELETE FROM files WHERE id = $1 AND owner = $2 RETURNING ",
            file_columns!()
        ))
        .bind(&id)
        .bind(&owner)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let deleted = file(&row)?;
        // The foreign key cascades too; explicit, so that the links go whatever the
        // connection's `foreign_keys` setting.
        sqlx::query("DELETE FROM files_links WHERE file_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE files_usage SET \
             bytes = CASE WHEN bytes >= $1 THEN bytes - $1 ELSE 0 END, \
             files = CASE WHEN files >= 1 THEN files - 1 ELSE 0 END \
             WHERE owner = $2",
        )
        .bind(to_i64(deleted.size))
        .bind(&owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(deleted))
    }

    async fn owned(&self, owner: Uuid, limit: u32) -> StoreResult<Vec<FileRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE owner = $1 ORDER BY id LIMIT $2"
        ))
        .bind(owner.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(file).collect()
    }

    async fn by_state(
        &self,
        state: FileState,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>> {
        let query = match before {
            Some(before) => sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE state = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(state.as_str())
            .bind(before.to_string()),
            None => sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE state = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(state.as_str()),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(file).collect()
    }

    async fn storage(&self, limit: u32) -> StoreResult<Vec<(Uuid, Usage)>> {
        let rows = sqlx::query(
            "SELECT owner, bytes, files FROM files_usage WHERE bytes > 0 OR files > 0 \
             ORDER BY bytes DESC, owner LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((super::uuid(row, "owner")?, usage(row)?)))
            .collect()
    }

    /// Every state is named, with 0 where there are no files in it, in [`FileState::ALL`]'s
    /// order.
    async fn totals(&self) -> StoreResult<(Vec<(FileState, u64)>, u64)> {
        // PostgreSQL's SUM of a BIGINT is a NUMERIC, which `sqlx::Any` cannot read.
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS files, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
             FROM files GROUP BY state",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut counts = HashMap::new();
        let mut bytes = 0u64;
        for row in &rows {
            counts.insert(state(row, "state")?, unsigned(row, "files")?);
            bytes = bytes.saturating_add(unsigned(row, "bytes")?);
        }
        let counts = FileState::ALL
            .into_iter()
            .map(|s| (s, counts.get(&s).copied().unwrap_or(0)))
            .collect();
        Ok((counts, bytes))
    }

    async fn insert_link(&self, link: &LinkRecord) -> StoreResult<()> {
        self.insert_link_row(link).await
    }

    async fn link(&self, id: Uuid) -> StoreResult<Option<LinkRecord>> {
        self.link_row(id).await
    }

    async fn links(&self, owner: Uuid, file_id: Uuid) -> StoreResult<Vec<LinkRecord>> {
        self.link_rows(owner, file_id).await
    }

    async fn revoke_link(&self, owner: Uuid, id: Uuid) -> StoreResult<bool> {
        self.revoke_link_row(owner, id).await
    }

    async fn link_key(&self, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        self.stored_link_key(fresh).await
    }

    async fn forget_owner(&self, owner: Uuid) -> StoreResult<bool> {
        let mut tx = self.db.writer().begin().await?;
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM files WHERE owner = $1")
            .bind(owner.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if left > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM files_links WHERE owner = $1")
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM files_usage WHERE owner = $1")
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
