//! Resumable uploads and their received parts ([`UploadStore`]).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlFileStore, corrupt, unsigned, uuid};
use crate::ports::{StoreResult, UploadRecord, UploadStore};

macro_rules! upload_columns {
    () => {
        "id, owner, name, declared_type, size, part_bytes, created_ms, expires_ms"
    };
}

fn upload(row: &AnyRow) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        id: uuid(row, "id")?,
        owner: uuid(row, "owner")?,
        name: row.try_get("name")?,
        declared_type: row.try_get("declared_type")?,
        size: unsigned(row, "size")?,
        part_bytes: unsigned(row, "part_bytes")?,
        created_ms: row.try_get("created_ms")?,
        expires_ms: row.try_get("expires_ms")?,
    })
}

#[async_trait]
impl UploadStore for SqlFileStore {
    async fn create_upload(&self, u: &UploadRecord, max_open: u32) -> StoreResult<bool> {
        let mut tx = self.db.writer().begin().await?;
        // The owner's usage row serialises their uploads' creation: the no-op update takes
        // its row lock on PostgreSQL (SQLite has one writer), so the count below is exact.
        sqlx::query(
            "INSERT INTO files_usage (owner, bytes, files) VALUES ($1, 0, 0) \
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(u.owner.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE files_usage SET bytes = bytes WHERE owner = $1")
            .bind(u.owner.to_string())
            .execute(&mut *tx)
            .await?;
        let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM files_uploads WHERE owner = $1")
            .bind(u.owner.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if open >= i64::from(max_open) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(concat!(
            "INSERT INTO files_uploads (",
            upload_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(u.id.to_string())
        .bind(u.owner.to_string())
        .bind(&u.name)
        .bind(u.declared_type.as_deref())
        .bind(confab_store::to_i64(u.size))
        .bind(confab_store::to_i64(u.part_bytes))
        .bind(u.created_ms)
        .bind(u.expires_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upload(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<UploadRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM files_uploads WHERE id = $1 AND owner = $2"
        ))
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(upload).transpose()
    }

    async fn add_part(&self, id: Uuid, n: u32) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO files_upload_parts (upload_id, n) VALUES ($1, $2) \
             ON CONFLICT (upload_id, n) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(i64::from(n))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn parts(&self, id: Uuid) -> StoreResult<Vec<u32>> {
        let rows = sqlx::query("SELECT n FROM files_upload_parts WHERE upload_id = $1 ORDER BY n")
            .bind(id.to_string())
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                u32::try_from(n).map_err(|_| corrupt("n"))
            })
            .collect()
    }

    async fn delete_upload(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query("DELETE FROM files_upload_parts WHERE upload_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM files_uploads WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM files_uploads WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(upload).collect()
    }

    async fn owned_uploads(&self, owner: Uuid) -> StoreResult<Vec<UploadRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM files_uploads WHERE owner = $1 ORDER BY id"
        ))
        .bind(owner.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(upload).collect()
    }
}
