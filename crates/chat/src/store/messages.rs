//! [`MessageStore`] on SQLite and PostgreSQL: the message tree (inserted with its owner
//! checked in the statement, read along a branch with a recursive query), checkpoints and the
//! end of an answer. Ownership is the conversation's (`conversations.user_id`): every statement
//! but the start's `interrupt_streaming` joins to it.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_store::StoreError;
use uuid::Uuid;

use super::{MESSAGE_COLUMNS, SqlChatStore, message, opt_uuid, uuid};
use crate::domain::Message;
use crate::ports::{Branches, Ending, MessageStore, NewMessage, StoreResult};

#[async_trait]
impl MessageStore for SqlChatStore {
    async fn add_messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<Message>> {
        let Some(first) = messages.first() else {
            return Ok(Vec::new());
        };
        // Later messages may hang only under earlier ones of the same call: the parent
        // check below is for the first one's parent, which must already be stored.
        let chained = messages.iter().enumerate().skip(1).all(|(i, m)| {
            m.conversation_id == conversation_id
                && m.parent_id
                    .is_some_and(|p| messages[..i].iter().any(|earlier| earlier.id == p))
        });
        if first.conversation_id != conversation_id || !chained {
            return Err(StoreError::NotFound);
        }
        // One statement: every row or none (the owner and the first parent are checked in
        // it), and the trigger `messages_active_leaf` makes the last the active leaf.
        let condition = "EXISTS (SELECT 1 FROM conversations WHERE id = $1 AND user_id = $2) \
             AND ($3 IS NULL OR EXISTS \
             (SELECT 1 FROM messages WHERE id = $3 AND conversation_id = $1))";
        let rows: Vec<String> = (0..messages.len())
            .map(|i| {
                let p = 4 + i * 7;
                format!(
                    "SELECT ${}, $1, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $2 WHERE {condition}",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 6
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
             model, created_at, updated_at, user_id) {}",
            rows.join(" UNION ALL ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id.to_string())
            .bind(user_id.to_string())
            .bind(first.parent_id.map(|p| p.to_string()));
        for m in &messages {
            query = query
                .bind(m.id.to_string())
                .bind(m.parent_id.map(|p| p.to_string()))
                .bind(m.role.as_str())
                .bind(&m.content)
                .bind(m.status.as_str())
                .bind(&m.model)
                .bind(m.now);
        }
        let inserted = query.execute(self.db.writer()).await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(messages
            .into_iter()
            .map(|m| Message {
                id: m.id,
                conversation_id,
                parent_id: m.parent_id,
                role: m.role,
                content: m.content,
                status: m.status,
                model: m.model,
                error: None,
                prompt_tokens: None,
                completion_tokens: None,
                created_at: m.now,
                updated_at: m.now,
            })
            .collect())
    }

    async fn message(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Message> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c \
             ON c.id = m.conversation_id \
             WHERE m.id = $1 AND m.conversation_id = $2 AND c.user_id = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(conversation_id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        message(&row)
    }

    async fn lineage(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        leaf: Uuid,
    ) -> StoreResult<Vec<Message>> {
        // Walk up from the leaf with a recursive query (both databases have them). The leaf
        // must be in one of the owner's conversations; its ancestors are in the same one.
        let sql = format!(
            "WITH RECURSIVE path (id, depth) AS ( \
               SELECT m.id, 0 FROM messages m JOIN conversations c ON c.id = m.conversation_id \
               WHERE m.id = $1 AND m.conversation_id = $2 AND c.user_id = $3 \
               UNION ALL \
               SELECT m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.id = p.id \
               WHERE m.parent_id IS NOT NULL) \
             SELECT {MESSAGE_COLUMNS} FROM messages m JOIN path p ON m.id = p.id \
             ORDER BY p.depth DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(leaf.to_string())
            .bind(conversation_id.to_string())
            .bind(user_id.to_string())
            .fetch_all(self.db.pool())
            .await?;
        let messages: Vec<Message> = rows.iter().map(message).collect::<StoreResult<_>>()?;
        if messages.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(messages)
    }

    async fn path(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        leaf: Uuid,
    ) -> StoreResult<Vec<(Message, Branches)>> {
        let messages = self.lineage(user_id, conversation_id, leaf).await?;
        // Every group of two or more siblings in one go (most messages have none: a message
        // missing here is an only child).
        let siblings = sqlx::query(
            "SELECT id, parent_id FROM messages WHERE conversation_id = $1 \
             AND EXISTS (SELECT 1 FROM conversations WHERE id = $1 AND user_id = $2) AND ( \
               parent_id IN (SELECT parent_id FROM messages WHERE conversation_id = $1 \
                 AND parent_id IS NOT NULL GROUP BY parent_id HAVING COUNT(*) > 1) \
               OR (parent_id IS NULL AND EXISTS (SELECT 1 FROM messages WHERE \
                 conversation_id = $1 AND parent_id IS NULL GROUP BY conversation_id \
                 HAVING COUNT(*) > 1))) \
             ORDER BY created_at, id",
        )
        .bind(conversation_id.to_string())
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        let mut groups: HashMap<Option<Uuid>, Vec<Uuid>> = HashMap::new();
        for row in &siblings {
            groups
                .entry(opt_uuid(row, "parent_id")?)
                .or_default()
                .push(uuid(row, "id")?);
        }
        Ok(messages
            .into_iter()
            .map(|m| {
                let sibling_ids = groups
                    .get(&m.parent_id)
                    .cloned()
                    .unwrap_or_else(|| vec![m.id]);
                let index = sibling_ids.iter().position(|s| *s == m.id).unwrap_or(0);
                (m, Branches { sibling_ids, index })
            })
            .collect())
    }

    async fn newest_leaf(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Uuid> {
        // The start must be the owner's; its descendants are in the same conversation.
        let mut current = self.message(user_id, conversation_id, id).await?.id;
        // Bounded by the tree's depth; each step is one indexed lookup.
        loop {
            let child = sqlx::query(
                "SELECT id FROM messages WHERE parent_id = $1 AND conversation_id = $2 \
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(current.to_string())
            .bind(conversation_id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
            match child {
                Some(row) => current = uuid(&row, "id")?,
                None => return Ok(current),
            }
        }
    }

    async fn checkpoint(
        &self,
        user_id: Uuid,
        id: Uuid,
        content: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE messages SET content = $1, updated_at = $2 \
             WHERE id = $3 AND status = 'streaming' AND EXISTS (SELECT 1 FROM conversations c \
             WHERE c.id = messages.conversation_id AND c.user_id = $4)",
        )
        .bind(content)
        .bind(now)
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn finish(&self, user_id: Uuid, id: Uuid, e: Ending) -> StoreResult<Message> {
        let sql = format!(
            "UPDATE messages SET status = $1, content = $2, error = $3, prompt_tokens = $4, \
             completion_tokens = $5, updated_at = $6 WHERE id = $7 AND EXISTS (SELECT 1 FROM \
             conversations c WHERE c.id = messages.conversation_id AND c.user_id = $8) \
             RETURNING {}",
            MESSAGE_COLUMNS.replace("m.", "")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(e.status.as_str())
            .bind(&e.content)
            .bind(&e.error)
            .bind(e.prompt_tokens.map(i64::from))
            .bind(e.completion_tokens.map(i64::from))
            .bind(e.now)
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(self.db.writer())
            .await?;
        message(&row.ok_or(StoreError::NotFound)?)
    }

    async fn interrupt_streaming(&self, now: i64) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE messages SET status = 'interrupted', updated_at = $1 \
             WHERE status = 'streaming'",
        )
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(result.rows_affected())
    }

    async fn interrupt_stale(&self, before: i64, now: i64) -> StoreResult<Vec<(Uuid, Message)>> {
        let sql = format!(
            "UPDATE messages SET status = 'interrupted', updated_at = $1 \
             WHERE status = 'streaming' AND updated_at < $2 RETURNING user_id, {}",
            MESSAGE_COLUMNS.replace("m.", "")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(before)
            .fetch_all(self.db.writer())
            .await?;
        rows.iter()
            .map(|row| Ok((uuid(row, "user_id")?, message(row)?)))
            .collect()
    }

    async fn all_messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c \
             ON c.id = m.conversation_id WHERE m.conversation_id = $1 AND c.user_id = $2 \
             ORDER BY m.created_at, m.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id.to_string())
            .bind(user_id.to_string())
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(message).collect()
    }
}
