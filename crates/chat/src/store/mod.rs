//! The chat store's one adapter, [`SqlChatStore`], on SQLite and PostgreSQL (`sqlx::Any`,
//! portable SQL): one struct implementing every role of [`crate::ports::ChatStore`], one file
//! per role (`conversations`, `messages`, `search`, `shares`, `reactions`, `presets`,
//! `transfer`). Every read and write of a conversation's data names the owner, so one user's
//! ids never reach another's rows; this module holds what the roles share (row readers,
//! column lists, tags, deleting a conversation's rows).

use std::collections::HashMap;

use confab_store::rows::{corrupt, opt_uuid, uuid};
use confab_store::{Db, ServiceMigrations};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use crate::domain::{Author, Conversation, Message, MessageStatus, Params};
use crate::ports::StoreResult;

mod conversations;
mod messages;
mod presets;
mod reactions;
mod search;
mod shares;
mod transfer;

/// The chat service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "chat",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

#[derive(Debug, Clone)]
pub struct SqlChatStore {
    db: Db,
}

impl SqlChatStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn params(row: &AnyRow) -> StoreResult<Params> {
    let text: String = row.try_get("params")?;
    serde_json::from_str(&text).map_err(|_| corrupt("params"))
}

fn params_json(params: &Params) -> String {
    serde_json::to_string(params).unwrap_or_else(|_| "{}".into())
}

fn opt_u32(row: &AnyRow, column: &str) -> StoreResult<Option<u32>> {
    let n: Option<i64> = row.try_get(column)?;
    Ok(n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

const CONVERSATION_COLUMNS: &str = "id, title, model, system_prompt, params, folder, pinned, \
     archived, active_leaf_id, created_at, updated_at";

fn conversation(row: &AnyRow, tags: Vec<String>) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: uuid(row, "id")?,
        title: row.try_get("title")?,
        model: row.try_get("model")?,
        system_prompt: row.try_get("system_prompt")?,
        params: params(row)?,
        folder: row.try_get("folder")?,
        tags,
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        archived: row.try_get::<i64, _>("archived")? != 0,
        active_leaf_id: opt_uuid(row, "active_leaf_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.parent_id, m.role, m.content, m.status, \
     m.model, m.error, m.prompt_tokens, m.completion_tokens, m.created_at, m.updated_at, \
     m.attachment_count";

/// The ids of the messages among `rows` (read with [`MESSAGE_COLUMNS`]) that carry files.
fn with_files(rows: &[AnyRow]) -> StoreResult<Vec<Uuid>> {
    let mut ids = Vec::new();
    for row in rows {
        if row.try_get::<i64, _>("attachment_count")? > 0 {
            ids.push(uuid(row, "id")?);
        }
    }
    Ok(ids)
}

fn message(row: &AnyRow) -> StoreResult<Message> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(Message {
        id: uuid(row, "id")?,
        conversation_id: uuid(row, "conversation_id")?,
        parent_id: opt_uuid(row, "parent_id")?,
        role: Author::parse(&role).ok_or_else(|| corrupt("role"))?,
        content: row.try_get("content")?,
        status: MessageStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        model: row.try_get("model")?,
        error: row.try_get("error")?,
        prompt_tokens: opt_u32(row, "prompt_tokens")?,
        completion_tokens: opt_u32(row, "completion_tokens")?,
        attachments: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `IN (…)` over a JSON array of ids bound as one parameter `$n`, keeping the SQL static.
fn ids_in(backend: confab_store::Backend, n: u8) -> String {
    match backend {
        confab_store::Backend::Sqlite => format!("IN (SELECT value FROM json_each(${n}))"),
        confab_store::Backend::Postgres => {
            format!("IN (SELECT jsonb_array_elements_text(CAST(${n} AS jsonb)))")
        }
    }
}

fn ids_json(ids: &[Uuid]) -> String {
    serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

impl SqlChatStore {
    /// Deletes one conversation's rows inside `tx` (child tables first, the same on both
    /// databases whatever their foreign-key settings).
    async fn delete_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: Uuid) -> StoreResult<()> {
        for sql in [
            "DELETE FROM conversation_tags WHERE conversation_id = $1",
            "DELETE FROM share_links WHERE conversation_id = $1",
            "DELETE FROM message_reactions WHERE message_id IN \
             (SELECT id FROM messages WHERE conversation_id = $1)",
            "DELETE FROM message_attachments WHERE conversation_id = $1",
            "UPDATE messages SET parent_id = NULL WHERE conversation_id = $1",
            "DELETE FROM messages WHERE conversation_id = $1",
            "DELETE FROM conversations WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The tags of the conversations `ids`, read from `pool` (the replica's for a listing).
    async fn tags_of(
        &self,
        pool: &AnyPool,
        ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<String>>> {
        let mut tags: HashMap<Uuid, Vec<String>> = HashMap::new();
        if ids.is_empty() {
            return Ok(tags);
        }
        // One query for the page: the ids as a JSON array parameter keep the SQL static.
        let list = serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let sql = match self.db.backend() {
            confab_store::Backend::Sqlite => {
                "SELECT conversation_id, tag FROM conversation_tags \
                 WHERE conversation_id IN (SELECT value FROM json_each($1)) ORDER BY tag"
            }
            confab_store::Backend::Postgres => {
                "SELECT conversation_id, tag FROM conversation_tags \
                 WHERE conversation_id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb))) \
                 ORDER BY tag"
            }
        };
        let rows = sqlx::query(sql).bind(list).fetch_all(pool).await?;
        for row in rows {
            tags.entry(uuid(&row, "conversation_id")?)
                .or_default()
                .push(row.try_get("tag")?);
        }
        Ok(tags)
    }

    async fn write_tags(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: Uuid,
        tags: &[String],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO conversation_tags (conversation_id, tag) VALUES ($1, $2)")
                .bind(id.to_string())
                .bind(tag)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
