//! [`ConversationStore`] on SQLite and PostgreSQL: every statement names the owner.

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use uuid::Uuid;

use super::{
    CONVERSATION_COLUMNS, SqlChatStore, conversation, ids_in, ids_json, params_json, uuid,
};
use crate::domain::{BulkAction, Conversation, ConversationChanges};
use crate::ports::{
    ConversationFilter, ConversationPosition, ConversationStore, NewConversation, StoreResult,
};

#[async_trait]
impl ConversationStore for SqlChatStore {
    async fn create_conversation(&self, new: NewConversation) -> StoreResult<Conversation> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(
            "INSERT INTO conversations (id, user_id, title, model, system_prompt, params, folder, \
             pinned, archived, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8)",
        )
        .bind(new.id.to_string())
        .bind(new.user_id.to_string())
        .bind(&new.title)
        .bind(&new.model)
        .bind(&new.system_prompt)
        .bind(params_json(&new.params))
        .bind(&new.folder)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        Self::write_tags(&mut tx, new.id, &new.tags).await?;
        tx.commit().await?;
        Ok(Conversation {
            id: new.id,
            title: new.title,
            model: new.model,
            system_prompt: new.system_prompt,
            params: new.params,
            folder: new.folder,
            tags: new.tags,
            pinned: false,
            archived: false,
            active_leaf_id: None,
            created_at: new.now,
            updated_at: new.now,
        })
    }

    async fn conversation(&self, user_id: Uuid, id: Uuid) -> StoreResult<Conversation> {
        // The tags come along as one JSON array, so this is one query.
        let tags = match self.db.backend() {
            confab_store::Backend::Sqlite => {
                "(SELECT json_group_array(tag) FROM (SELECT tag FROM conversation_tags \
                 WHERE conversation_id = c.id ORDER BY tag))"
            }
            confab_store::Backend::Postgres => {
                "(SELECT CAST(COALESCE(json_agg(tag ORDER BY tag), '[]') AS TEXT) \
                 FROM conversation_tags WHERE conversation_id = c.id)"
            }
        };
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}, {tags} AS tags FROM conversations c \
             WHERE id = $1 AND user_id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        let tags: String = row.try_get("tags")?;
        let tags = serde_json::from_str(&tags)
            .map_err(|e| StoreError::Other(format!("conversation tags: {e}")))?;
        conversation(&row, tags)
    }

    async fn list_conversations(
        &self,
        user_id: Uuid,
        filter: &ConversationFilter,
        after: Option<ConversationPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE user_id = $1 \
             AND archived = $2 \
             AND ($3 IS NULL OR folder = $3) \
             AND ($4 IS NULL OR pinned = $4) \
             AND ($5 IS NULL OR EXISTS (SELECT 1 FROM conversation_tags t \
                  WHERE t.conversation_id = c.id AND t.tag = $5)) \
             AND ($6 IS NULL OR updated_at < $6 OR (updated_at = $6 AND id < $7)) \
             ORDER BY updated_at DESC, id DESC LIMIT $8"
        );
        // A listing tolerates replication lag: a replica serves it when configured.
        let sql = &sql;
        self.db
            .read_lagging(|pool| async move {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(user_id.to_string())
                    .bind(i64::from(filter.archived.unwrap_or(false)))
                    .bind(&filter.folder)
                    .bind(filter.pinned.map(i64::from))
                    .bind(filter.tag.as_deref().map(str::to_lowercase))
                    .bind(after.map(|p| p.updated_at))
                    .bind(after.map(|p| p.id.to_string()))
                    .bind(i64::from(limit))
                    .fetch_all(&pool)
                    .await?;
                let ids: Vec<Uuid> = rows
                    .iter()
                    .map(|r| uuid(r, "id"))
                    .collect::<StoreResult<_>>()?;
                let mut tags = self.tags_of(&pool, &ids).await?;
                rows.iter()
                    .zip(&ids)
                    .map(|(row, id)| conversation(row, tags.remove(id).unwrap_or_default()))
                    .collect()
            })
            .await
    }

    async fn update_conversation(
        &self,
        user_id: Uuid,
        id: Uuid,
        changes: ConversationChanges,
        now: i64,
    ) -> StoreResult<Conversation> {
        let mut tx = self.db.writer().begin().await?;
        // Each field is written only when given: `$n = 1` switches a column's update on.
        let result = sqlx::query(
            "UPDATE conversations SET \
             title = CASE WHEN $1 = 1 THEN $2 ELSE title END, \
             model = CASE WHEN $3 = 1 THEN $4 ELSE model END, \
             system_prompt = CASE WHEN $5 = 1 THEN $6 ELSE system_prompt END, \
             params = CASE WHEN $7 = 1 THEN $8 ELSE params END, \
             folder = CASE WHEN $9 = 1 THEN $10 ELSE folder END, \
             pinned = CASE WHEN $11 = 1 THEN $12 ELSE pinned END, \
             archived = CASE WHEN $13 = 1 THEN $14 ELSE archived END, \
             active_leaf_id = CASE WHEN $15 = 1 THEN $16 ELSE active_leaf_id END, \
             updated_at = $17 \
             WHERE id = $18 AND user_id = $19",
        )
        .bind(i64::from(changes.title.is_some()))
        .bind(changes.title.clone())
        .bind(i64::from(changes.model.is_some()))
        .bind(changes.model.clone().flatten())
        .bind(i64::from(changes.system_prompt.is_some()))
        .bind(changes.system_prompt.clone().flatten())
        .bind(i64::from(changes.params.is_some()))
        .bind(changes.params.as_ref().map(params_json))
        .bind(i64::from(changes.folder.is_some()))
        .bind(changes.folder.clone().flatten())
        .bind(i64::from(changes.pinned.is_some()))
        .bind(i64::from(changes.pinned.unwrap_or(false)))
        .bind(i64::from(changes.archived.is_some()))
        .bind(i64::from(changes.archived.unwrap_or(false)))
        .bind(i64::from(changes.active_leaf_id.is_some()))
        .bind(changes.active_leaf_id.map(|l| l.to_string()))
        .bind(now)
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(tags) = &changes.tags {
            Self::write_tags(&mut tx, id, tags).await?;
        }
        tx.commit().await?;
        self.conversation(user_id, id).await
    }

    async fn delete_conversation(&self, user_id: Uuid, id: Uuid) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        let owned = sqlx::query("SELECT id FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound);
        }
        Self::delete_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retitle(
        &self,
        user_id: Uuid,
        id: Uuid,
        expected: &str,
        title: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE conversations SET title = $1, updated_at = $2 \
             WHERE id = $3 AND title = $4 AND user_id = $5",
        )
        .bind(title)
        .bind(now)
        .bind(id.to_string())
        .bind(expected)
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn bulk(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        action: BulkAction,
        now: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.db.writer().begin().await?;
        let sql = format!(
            "SELECT id FROM conversations WHERE user_id = $1 AND id {}",
            ids_in(self.db.backend(), 2)
        );
        let owned: Vec<Uuid> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(ids_json(ids))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| uuid(r, "id"))
            .collect::<StoreResult<_>>()?;
        for id in &owned {
            match action {
                BulkAction::Delete => Self::delete_in(&mut tx, *id).await?,
                BulkAction::Archive | BulkAction::Unarchive => {
                    sqlx::query(
                        "UPDATE conversations SET archived = $1, updated_at = $2 WHERE id = $3",
                    )
                    .bind(i64::from(action == BulkAction::Archive))
                    .bind(now)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(owned.len() as u64)
    }

    async fn purge_user(&self, user_id: Uuid) -> StoreResult<u64> {
        let mut tx = self.db.writer().begin().await?;
        // The conversations' rows are claimed first so SQLite takes its write lock up front.
        let conversations =
            sqlx::query("UPDATE conversations SET active_leaf_id = NULL WHERE user_id = $1")
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        for sql in [
            "DELETE FROM conversation_tags WHERE conversation_id IN \
             (SELECT id FROM conversations WHERE user_id = $1)",
            "DELETE FROM share_links WHERE user_id = $1",
            "DELETE FROM message_reactions WHERE user_id = $1 OR message_id IN \
             (SELECT id FROM messages WHERE user_id = $1)",
            "DELETE FROM message_attachments WHERE user_id = $1",
            "UPDATE messages SET parent_id = NULL WHERE user_id = $1",
            "DELETE FROM messages WHERE user_id = $1",
            "DELETE FROM conversations WHERE user_id = $1",
            "DELETE FROM chat_presets WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(conversations)
    }
}
