//! Share links and the link-signing key. A link is only written for a file of its owner, and
//! goes with its file (see `delete` in `files`).

use confab_store::StoreError;
use sqlx::Row;
use uuid::Uuid;

use super::{SqlFileStore, link};
use crate::domain::LinkRecord;
use crate::ports::StoreResult;

/// The `files_secrets` row holding the key links are signed with.
const LINK_KEY: &str = "link_key";

impl SqlFileStore {
    /// Stores the link if its file exists and belongs to its owner; else `NotFound`.
    pub(super) async fn insert_link_row(&self, l: &LinkRecord) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO files_links (id, file_id, owner, expires_ms, created_ms, revoked) \
             SELECT $1, id, owner, $4, $5, $6 FROM files WHERE id = $2 AND owner = $3",
        )
        .bind(l.id.to_string())
        .bind(l.file_id.to_string())
        .bind(l.owner.to_string())
        .bind(l.expires_ms)
        .bind(l.created_ms)
        .bind(i64::from(l.revoked))
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(super) async fn link_row(&self, id: Uuid) -> StoreResult<Option<LinkRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            link_columns!(),
            " FROM files_links WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(link).transpose()
    }

    pub(super) async fn link_rows(
        &self,
        owner: Uuid,
        file_id: Uuid,
    ) -> StoreResult<Vec<LinkRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            link_columns!(),
            " FROM files_links WHERE file_id = $1 AND owner = $2 ORDER BY id DESC"
        ))
        .bind(file_id.to_string())
        .bind(owner.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(link).collect()
    }

    pub(super) async fn revoke_link_row(&self, owner: Uuid, id: Uuid) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE files_links SET revoked = 1 WHERE id = $1 AND owner = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(self.db.writer())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Keeps `fresh` unless a key is stored already, then reads the stored one: replicas
    /// starting together all end up with the key the first of them wrote.
    pub(super) async fn stored_link_key(&self, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO files_secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(LINK_KEY)
        .bind(fresh.to_vec())
        .execute(self.db.writer())
        .await?;
        let row = sqlx::query("SELECT value FROM files_secrets WHERE name = $1")
            .bind(LINK_KEY)
            .fetch_one(self.db.writer())
            .await?;
        Ok(row.try_get("value")?)
    }
}
