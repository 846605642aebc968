//! [`ShareStore`] on SQLite and PostgreSQL: links hold a snapshot, so reading one touches no
//! conversation.

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlChatStore, corrupt, uuid};
use crate::domain::{ShareLink, SharedConversation};
use crate::ports::{ShareStore, StoreResult};

fn share_link(row: &AnyRow) -> StoreResult<ShareLink> {
    let token: String = row.try_get("token")?;
    Ok(ShareLink {
        url: format!("/s/{token}"),
        token,
        conversation_id: uuid(row, "conversation_id")?,
        created_at: row.try_get("created_at")?,
        revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

#[async_trait]
impl ShareStore for SqlChatStore {
    async fn create_share(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        token: &str,
        snapshot: &SharedConversation,
        now: i64,
    ) -> StoreResult<ShareLink> {
        // Only a conversation of the owner's can be shared: checked in the statement.
        let inserted = sqlx::query(
            "INSERT INTO share_links (token, conversation_id, user_id, snapshot, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
             (SELECT 1 FROM conversations WHERE id = $2 AND user_id = $3)",
        )
        .bind(token)
        .bind(conversation_id.to_string())
        .bind(user_id.to_string())
        .bind(serde_json::to_string(snapshot).map_err(|e| StoreError::Other(e.to_string()))?)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(ShareLink {
            token: token.to_owned(),
            conversation_id,
            url: format!("/s/{token}"),
            created_at: now,
            revoked: false,
        })
    }

    async fn shares(&self, user_id: Uuid, conversation_id: Uuid) -> StoreResult<Vec<ShareLink>> {
        let rows = sqlx::query(
            "SELECT token, conversation_id, created_at, revoked_at FROM share_links \
             WHERE user_id = $1 AND conversation_id = $2 ORDER BY created_at DESC",
        )
        .bind(user_id.to_string())
        .bind(conversation_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(share_link).collect()
    }

    async fn revoke_share(&self, user_id: Uuid, token: &str, now: i64) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE share_links SET revoked_at = $1 \
             WHERE token = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token)
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn shared(&self, token: &str) -> StoreResult<(Uuid, SharedConversation)> {
        let row = sqlx::query(
            "SELECT user_id, snapshot FROM share_links WHERE token = $1 AND revoked_at IS NULL",
        )
        .bind(token)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        let snapshot: String = row.try_get("snapshot")?;
        let snapshot = serde_json::from_str(&snapshot).map_err(|_| corrupt("snapshot"))?;
        Ok((uuid(&row, "user_id")?, snapshot))
    }
}
