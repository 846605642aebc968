//! [`MessageStore`] on SQLite and PostgreSQL: the message tree (inserted with its owner
//! checked in the statement, read along a branch with a recursive query), checkpoints and the
//! end of an answer. Ownership is the conversation's (`conversations.user_id`): every statement
//! but the start's `interrupt_streaming` joins to it.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_store::StoreError;
use uuid::Uuid;

use super::{MESSAGE_COLUMNS, SqlChatStore, ids_in, ids_json, message, opt_uuid, uuid, with_files};
use crate::domain::{Attachment, Message};
use crate::ports::{Branches, Ending, MessageStore, NewMessage, StoreResult};
use sqlx::Row;

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
                let p = 4 + i * 8;
                format!(
                    "SELECT ${}, $1, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $2, ${} WHERE {condition}",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 6,
                    p + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
             model, created_at, updated_at, user_id, attachment_count) {}",
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
                .bind(m.now)
                .bind(i64::try_from(m.attachments.len()).unwrap_or(i64::MAX));
        }
        // Attachments go in the same transaction as their messages.
        if messages.iter().all(|m| m.attachments.is_empty()) {
            let inserted = query.execute(self.db.writer()).await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        } else {
            let mut tx = self.db.writer().begin().await?;
            let inserted = query.execute(&mut *tx).await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            for m in messages.iter().filter(|m| !m.attachments.is_empty()) {
                insert_attachments(&mut tx, user_id, conversation_id, m).await?;
            }
            tx.commit().await?;
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
                attachments: m.attachments,
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
        let flagged = with_files(std::slice::from_ref(&row))?;
        let mut messages = vec![message(&row)?];
        self.with_attachments(&mut messages, &flagged).await?;
        Ok(messages.into_iter().next().ok_or(StoreError::NotFound)?)
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
        let mut messages: Vec<Message> = rows.iter().map(message).collect::<StoreResult<_>>()?;
        if messages.is_empty() {
            return Err(StoreError::NotFound);
        }
        self.with_attachments(&mut messages, &with_files(&rows)?)
            .await?;
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
        let mut messages: Vec<Message> = rows.iter().map(message).collect::<StoreResult<_>>()?;
        self.with_attachments(&mut messages, &with_files(&rows)?)
            .await?;
        Ok(messages)
    }

    async fn files_only_in(
        &self,
        user_id: Uuid,
        conversation_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        if conversation_ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.backend();
        let sql = format!(
            "SELECT DISTINCT a.file_id FROM message_attachments a \
             WHERE a.user_id = $1 AND a.conversation_id {ids} AND NOT EXISTS ( \
               SELECT 1 FROM message_attachments b WHERE b.user_id = $1 \
               AND b.file_id = a.file_id AND b.conversation_id NOT {ids})",
            ids = ids_in(backend, 2)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(ids_json(conversation_ids))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(|row| uuid(row, "file_id")).collect()
    }
}

/// Stores a new message's attachments, in order (inside the transaction storing it).
async fn insert_attachments(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: Uuid,
    conversation_id: Uuid,
    m: &NewMessage,
) -> StoreResult<()> {
    for (position, a) in m.attachments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO message_attachments (message_id, position, conversation_id, user_id, \
             file_id, name, content_type, kind, size_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(m.id.to_string())
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(conversation_id.to_string())
        .bind(user_id.to_string())
        .bind(a.file_id.to_string())
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(&a.kind)
        .bind(i64::try_from(a.size).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl SqlChatStore {
    /// Fills the attachments of those of `messages` that carry files (`flagged`, from their
    /// `attachment_count`): one query, none when no message has any.
    async fn with_attachments(
        &self,
        messages: &mut [Message],
        flagged: &[Uuid],
    ) -> StoreResult<()> {
        if flagged.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = flagged.iter().map(Uuid::to_string).collect();
        let sql = format!(
            "SELECT message_id, file_id, name, content_type, kind, size_bytes \
             FROM message_attachments WHERE message_id {} ORDER BY message_id, position",
            ids_in(self.db.backend(), 1)
        );
        let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(self.db.pool())
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut found: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
        for row in &rows {
            let size: i64 = row.try_get("size_bytes")?;
            found
                .entry(uuid(row, "message_id")?)
                .or_default()
                .push(Attachment {
                    file_id: uuid(row, "file_id")?,
                    name: row.try_get("name")?,
                    content_type: row.try_get("content_type")?,
                    kind: row.try_get("kind")?,
                    size: u64::try_from(size).unwrap_or(0),
                });
        }
        for m in messages.iter_mut() {
            if let Some(attachments) = found.remove(&m.id) {
                m.attachments = attachments;
            }
        }
        Ok(())
    }
}
