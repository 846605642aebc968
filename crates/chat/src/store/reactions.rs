//! [`ReactionStore`] on SQLite and PostgreSQL: one row per (message, user, emoji).

use std::collections::HashMap;

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use uuid::Uuid;

use super::{SqlChatStore, ids_in, ids_json, uuid};
use crate::domain::Reaction;
use crate::ports::{MessageStore, ReactionStore, StoreResult};

#[async_trait]
impl ReactionStore for SqlChatStore {
    async fn react(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.message(user_id, conversation_id, message_id).await?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM message_reactions \
             WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .bind(message_id.to_string())
        .bind(user_id.to_string())
        .bind(emoji)
        .fetch_optional(self.db.pool())
        .await?;
        if exists.is_none() {
            let inserted = sqlx::query(
                "INSERT INTO message_reactions (message_id, user_id, emoji, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(message_id.to_string())
            .bind(user_id.to_string())
            .bind(emoji)
            .bind(now)
            .execute(self.db.writer())
            .await;
            match inserted {
                // A concurrent request added the same reaction: the outcome is the same.
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn unreact(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
        emoji: &str,
    ) -> StoreResult<()> {
        self.message(user_id, conversation_id, message_id).await?;
        let result = sqlx::query(
            "DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .bind(message_id.to_string())
        .bind(user_id.to_string())
        .bind(emoji)
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn reactions(
        &self,
        user_id: Uuid,
        message_ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<Reaction>>> {
        let mut out: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
        if message_ids.is_empty() {
            return Ok(out);
        }
        // Only messages of the user's own conversations: another user's ids show nothing.
        let sql = format!(
            "SELECT r.message_id, r.emoji, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN r.user_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS mine \
             FROM message_reactions r WHERE r.message_id {} AND EXISTS (SELECT 1 FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.id = r.message_id AND c.user_id = $1) \
             GROUP BY r.message_id, r.emoji ORDER BY MIN(r.created_at)",
            ids_in(self.db.backend(), 2)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(ids_json(message_ids))
            .fetch_all(self.db.pool())
            .await?;
        for row in rows {
            let count: i64 = row.try_get("n")?;
            let mine: i64 = row.try_get("mine")?;
            out.entry(uuid(&row, "message_id")?)
                .or_default()
                .push(Reaction {
                    emoji: row.try_get("emoji")?,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    mine: mine > 0,
                });
        }
        Ok(out)
    }
}
