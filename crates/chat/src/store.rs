//! [`ChatStore`] on SQLite and PostgreSQL (`sqlx::Any`, portable SQL). Every read and write
//! of a conversation's data names the owner, so one user's ids never reach another's rows.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_store::{Db, ServiceMigrations, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::domain::{
    Author, Conversation, HitKind, Message, MessageStatus, Params, Preset, Reaction, SearchHit,
    ShareLink, SharedConversation, highlight, snippet_parts,
};
use crate::ports::{
    Branches, BulkAction, ChatStore, ConversationChanges, ConversationFilter, ConversationPosition,
    Ending, NewConversation, NewMessage, StoreResult,
};

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

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("unreadable {what} in the database"))
}

fn uuid(row: &AnyRow, column: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|_| corrupt(column))
}

fn opt_uuid(row: &AnyRow, column: &str) -> StoreResult<Option<Uuid>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| Uuid::parse_str(&t).map_err(|_| corrupt(column)))
        .transpose()
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

/// The shortest last word matched as a prefix: shorter ones match too much to be useful and
/// cost the most.
const PREFIX_MIN: usize = 3;

/// An FTS5 query for one user's rows matching every word, the last also as a prefix:
/// `user_id : "<user>" AND {content} : ("a" "b" "c"*)` (`{content}` is the text column,
/// `content` or `title`). The words are plain (see [`crate::domain::query_words`]), so quoting
/// them is enough.
///
/// The owner's phrase bounds the work: FTS5 answers an AND by leapfrogging the posting lists
/// of its terms (each seeks past the others' current rowid through the doclist index), so a
/// common word costs about as much as the user's own rows, not every user's matches. (A last
/// word of five letters or more, matched as a prefix, still merges the lists of the words it
/// starts, which the 3- and 4-letter prefix indexes do not cover.)
fn sqlite_match(user_id: Uuid, text_column: &str, words: &[String]) -> String {
    let last = words.len() - 1;
    let words = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let w = w.replace('"', "");
            if i == last && w.chars().count() >= PREFIX_MIN {
                format!("\"{w}\"*")
            } else {
                format!("\"{w}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("user_id : \"{user_id}\" AND {text_column} : ({words})")
}

/// A `to_tsquery` expression matching every word, the last also as a prefix (`a & b & c:*`).
/// Apostrophes and hyphens split words here, leaving only letters and digits.
fn postgres_tsquery(words: &[String]) -> String {
    let parts: Vec<String> = words
        .iter()
        .flat_map(|w| {
            w.split(|c: char| !c.is_alphanumeric())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i == last && p.chars().count() >= PREFIX_MIN {
                format!("{p}:*")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" & ")
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

/// Rows (conversations and messages) from which an import refreshes PostgreSQL's statistics.
const IMPORT_ANALYZE_ROWS: usize = 1_000;

/// Messages a search ranks by relevance: the user's newest matches, at most this many.
const SEARCH_CANDIDATES: usize = 200;
/// PostgreSQL (see `SqlChatStore::postgres_candidates`): the user's newest messages tested
/// one by one to see how common the words are, the most tested when they are common enough,
/// and the share of matches below which the full-text index is cheaper than testing.
const SEARCH_PROBE: usize = 4_000;
const SEARCH_WALK: usize = 60_000;
const SEARCH_DENSE: f64 = 0.004;

const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.parent_id, m.role, m.content, m.status, \
     m.model, m.error, m.prompt_tokens, m.completion_tokens, m.created_at, m.updated_at";

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
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn preset(row: &AnyRow) -> StoreResult<Preset> {
    Ok(Preset {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        system_prompt: row.try_get("system_prompt")?,
        params: params(row)?,
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

impl SqlChatStore {
    /// Deletes one conversation's rows inside `tx` (child tables first, the same on both
    /// databases whatever their foreign-key settings).
    async fn delete_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: Uuid) -> StoreResult<()> {
        for sql in [
            "DELETE FROM conversation_tags WHERE conversation_id = $1",
            "DELETE FROM share_links WHERE conversation_id = $1",
            "DELETE FROM message_reactions WHERE message_id IN \
             (SELECT id FROM messages WHERE conversation_id = $1)",
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

    /// PostgreSQL: the user's newest matches of `query` (at most [`SEARCH_CANDIDATES`]),
    /// each with its relevance.
    ///
    /// The planner cannot be trusted to choose here: it estimates prefixes and word pairs
    /// badly, and either wrong choice costs 100-250 ms at a million messages (testing all of
    /// a user's messages for words that are rare, or fetching every match of common words from
    /// the GIN index). The costs, measured: testing a message ~0.5 µs, fetching a match found
    /// by the index ~6 µs. So the choice is made from the data: the user's newest
    /// [`SEARCH_PROBE`] messages are tested first (~2 ms); if the words match at least
    /// [`SEARCH_DENSE`] of them, testing goes on (it stops at the last candidate needed, at
    /// most [`SEARCH_WALK`] messages, ~25 ms), since finding the candidates that way costs at
    /// most what fetching all matches would. Otherwise, or if that still found too few, the
    /// GIN index fetches every match, the planner told (for this transaction only) not to
    /// walk. Either way the worst case is about 25 ms, where the two costs meet.
    async fn postgres_candidates(
        &self,
        user_id: Uuid,
        query: &str,
    ) -> StoreResult<Vec<(Uuid, f64)>> {
        let select = "SELECT m.id, CAST(ts_rank(m.search, q) AS DOUBLE PRECISION) AS score";
        let read = |rows: Vec<AnyRow>| -> StoreResult<Vec<(Uuid, f64)>> {
            rows.iter()
                .map(|row| Ok((uuid(row, "id")?, row.try_get::<f64, _>("score")?)))
                .collect()
        };
        let owner = user_id.to_string();
        // Tests the user's newest `rows` messages, newest first, up to the candidates needed.
        let walk = |rows: usize| {
            let sql = format!(
                "{select} FROM (SELECT id, created_at, search FROM messages WHERE user_id = $2 \
                   ORDER BY created_at DESC LIMIT {rows}) m, to_tsquery('english', $1) q \
                 WHERE m.search @@ q ORDER BY m.created_at DESC LIMIT {SEARCH_CANDIDATES}"
            );
            let owner = &owner;
            async move {
                read(
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(query)
                        .bind(owner)
                        .fetch_all(self.db.pool())
                        .await?,
                )
            }
        };
        let probed = walk(SEARCH_PROBE).await?;
        if probed.len() >= SEARCH_CANDIDATES {
            return Ok(probed);
        }
        if probed.len() as f64 >= SEARCH_DENSE * SEARCH_PROBE as f64 {
            let walked = walk(SEARCH_WALK).await?;
            if walked.len() >= SEARCH_CANDIDATES {
                return Ok(walked);
            }
        }
        let indexed = format!(
            "{select} FROM messages m, to_tsquery('english', $1) q \
             WHERE m.user_id = $2 AND m.search @@ q \
             ORDER BY m.created_at DESC LIMIT {SEARCH_CANDIDATES}"
        );
        let mut tx = self.db.pool().begin().await?;
        sqlx::raw_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(indexed))
            .bind(query)
            .bind(&owner)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        read(rows)
    }

    async fn tags_of(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Vec<String>>> {
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
        let rows = sqlx::query(sql)
            .bind(list)
            .fetch_all(self.db.pool())
            .await?;
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

#[async_trait]
impl ChatStore for SqlChatStore {
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(i64::from(filter.archived.unwrap_or(false)))
            .bind(&filter.folder)
            .bind(filter.pinned.map(i64::from))
            .bind(filter.tag.as_deref().map(str::to_lowercase))
            .bind(after.map(|p| p.updated_at))
            .bind(after.map(|p| p.id.to_string()))
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        let ids: Vec<Uuid> = rows
            .iter()
            .map(|r| uuid(r, "id"))
            .collect::<StoreResult<_>>()?;
        let mut tags = self.tags_of(&ids).await?;
        rows.iter()
            .zip(&ids)
            .map(|(row, id)| conversation(row, tags.remove(id).unwrap_or_default()))
            .collect()
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

    async fn create_share(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        token: &str,
        snapshot: &SharedConversation,
        now: i64,
    ) -> StoreResult<ShareLink> {
        sqlx::query(
            "INSERT INTO share_links (token, conversation_id, user_id, snapshot, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token)
        .bind(conversation_id.to_string())
        .bind(user_id.to_string())
        .bind(serde_json::to_string(snapshot).map_err(|e| StoreError::Other(e.to_string()))?)
        .bind(now)
        .execute(self.db.writer())
        .await?;
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
        let sql = format!(
            "SELECT message_id, emoji, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS mine \
             FROM message_reactions WHERE message_id {} \
             GROUP BY message_id, emoji ORDER BY MIN(created_at)",
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

    async fn import(
        &self,
        user_id: Uuid,
        conversations: &[crate::transfer::Imported],
    ) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        for imported in conversations {
            let c = &imported.conversation;
            sqlx::query(
                "INSERT INTO conversations (id, user_id, title, model, system_prompt, params, \
                 folder, pinned, archived, active_leaf_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11)",
            )
            .bind(c.id.to_string())
            .bind(user_id.to_string())
            .bind(&c.title)
            .bind(&c.model)
            .bind(&c.system_prompt)
            .bind(params_json(&c.params))
            .bind(&c.folder)
            .bind(i64::from(c.pinned))
            .bind(i64::from(c.archived))
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await?;
            Self::write_tags(&mut tx, c.id, &c.tags).await?;
            // Parents come first (the import orders them so).
            for m in &imported.messages {
                sqlx::query(
                    "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
                     model, error, prompt_tokens, completion_tokens, created_at, updated_at, \
                     user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(m.id.to_string())
                .bind(c.id.to_string())
                .bind(m.parent_id.map(|p| p.to_string()))
                .bind(m.role.as_str())
                .bind(&m.content)
                .bind(m.status.as_str())
                .bind(&m.model)
                .bind(&m.error)
                .bind(m.prompt_tokens.map(i64::from))
                .bind(m.completion_tokens.map(i64::from))
                .bind(m.created_at)
                .bind(m.updated_at)
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            // After the messages, whose trigger moved the leaf and the activity.
            sqlx::query(
                "UPDATE conversations SET active_leaf_id = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(c.active_leaf_id.map(|l| l.to_string()))
            .bind(c.updated_at)
            .bind(c.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // A big import (a ChatGPT history) can multiply the rows; PostgreSQL's statistics
        // would lag until autovacuum's next round, and meanwhile its planner walks a user's
        // conversations to list 50 of them (measured: 5.7 ms instead of 0.6 ms at 10,000).
        let rows: usize = conversations.iter().map(|c| 1 + c.messages.len()).sum();
        if self.db.backend() == confab_store::Backend::Postgres && rows >= IMPORT_ANALYZE_ROWS {
            sqlx::raw_sql("ANALYZE conversations, conversation_tags, messages")
                .execute(self.db.pool())
                .await?;
        }
        Ok(())
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

    async fn search(
        &self,
        user_id: Uuid,
        words: &[String],
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // Messages are ranked by relevance among the user's 200 newest matches: exact for
        // all but very common words, whose matches can run to hundreds of thousands, and
        // bounded in cost whatever the words (the newest matches come first from the index).
        // SQLite: the FTS table drives each query (CROSS JOIN fixes the join order; left to
        // itself the planner may walk the user's rows and test MATCH on each), and its MATCH
        // is scoped to the user inside the index (see `sqlite_match`); the owner's column
        // weighs nothing in the ranking (bm25 weights: text 1, owner 0).
        let (query, titles_query, titles_sql, messages_sql) = match self.db.backend() {
            confab_store::Backend::Sqlite => (
                sqlite_match(user_id, "content", words),
                sqlite_match(user_id, "title", words),
                "SELECT c.id, c.title, c.updated_at AS created_at, \
                 highlight(conversations_fts, 0, char(57344), char(57345)) AS snippet \
                 FROM conversations_fts CROSS JOIN conversations c \
                 ON c.rowid = conversations_fts.rowid \
                 WHERE conversations_fts MATCH $1 AND c.user_id = $2 \
                 ORDER BY bm25(conversations_fts, 1.0, 0.0) LIMIT $3",
                "SELECT id, conversation_id, role, created_at, title, content AS snippet \
                 FROM (SELECT m.id, m.conversation_id, m.role, m.content, \
                   m.created_at, c.title, bm25(messages_fts, 1.0, 0.0) AS score \
                   FROM messages_fts CROSS JOIN messages m ON m.rowid = messages_fts.rowid \
                   CROSS JOIN conversations c ON c.id = m.conversation_id \
                   WHERE messages_fts MATCH $1 AND m.user_id = $2 \
                   ORDER BY messages_fts.rowid DESC LIMIT 200) \
                 ORDER BY score LIMIT $3",
            ),
            confab_store::Backend::Postgres => (
                postgres_tsquery(words),
                postgres_tsquery(words),
                "SELECT c.id, c.title, c.updated_at AS created_at, \
                 ts_headline('english', c.title, q, 'HighlightAll=true, StartSel=' || chr(57344) \
                   || ', StopSel=' || chr(57345)) AS snippet \
                 FROM conversations c, to_tsquery('english', $1) q \
                 WHERE c.search @@ q AND c.user_id = $2 \
                 ORDER BY ts_rank(c.search, q) DESC LIMIT $3",
                // Messages: see `postgres_candidates`; this query only dresses the chosen.
                "SELECT m.id, m.conversation_id, m.role, m.created_at, c.title, \
                 ts_headline('english', m.content, to_tsquery('english', $1), 'MaxWords=24, \
                   MinWords=8, StartSel=' || chr(57344) || ', StopSel=' || chr(57345)) AS snippet \
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.user_id = $2 AND m.id IN \
                 (SELECT jsonb_array_elements_text(CAST($3 AS jsonb)))",
            ),
        };
        let mut hits = Vec::new();
        let titles = sqlx::query(titles_sql)
            .bind(&titles_query)
            .bind(user_id.to_string())
            .bind(i64::from(limit.min(5)))
            .fetch_all(self.db.pool())
            .await?;
        for row in &titles {
            let snippet: String = row.try_get("snippet")?;
            hits.push(SearchHit {
                kind: HitKind::Title,
                conversation_id: uuid(row, "id")?,
                conversation_title: row.try_get("title")?,
                message_id: None,
                role: None,
                snippet: snippet_parts(&snippet),
                created_at: row.try_get("created_at")?,
            });
        }
        let messages = match self.db.backend() {
            confab_store::Backend::Sqlite => {
                sqlx::query(messages_sql)
                    .bind(&query)
                    .bind(user_id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(self.db.pool())
                    .await?
            }
            confab_store::Backend::Postgres => {
                let mut chosen = self.postgres_candidates(user_id, &query).await?;
                chosen.sort_by(|a, b| b.1.total_cmp(&a.1));
                chosen.truncate(limit as usize);
                let ids: Vec<Uuid> = chosen.iter().map(|(id, _)| *id).collect();
                let mut rows = sqlx::query(messages_sql)
                    .bind(&query)
                    .bind(user_id.to_string())
                    .bind(ids_json(&ids))
                    .fetch_all(self.db.pool())
                    .await?;
                // In the order of relevance.
                let place = |row: &AnyRow| {
                    uuid(row, "id")
                        .ok()
                        .and_then(|id| ids.iter().position(|c| *c == id))
                        .unwrap_or(usize::MAX)
                };
                rows.sort_by_key(|row| place(row));
                rows
            }
        };
        // SQLite returns the whole text (its snippet() reads a common word's entire posting
        // list, hundreds of milliseconds at a million messages); the snippet is cut here.
        let sqlite = self.db.backend() == confab_store::Backend::Sqlite;
        for row in &messages {
            let snippet: String = row.try_get("snippet")?;
            let snippet = if sqlite {
                highlight(&snippet, words, 24)
            } else {
                snippet_parts(&snippet)
            };
            let role: String = row.try_get("role")?;
            hits.push(SearchHit {
                kind: HitKind::Message,
                conversation_id: uuid(row, "conversation_id")?,
                conversation_title: row.try_get("title")?,
                message_id: Some(uuid(row, "id")?),
                role: Author::parse(&role),
                snippet,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(hits)
    }

    async fn create_preset(&self, user_id: Uuid, p: Preset) -> StoreResult<Preset> {
        sqlx::query(
            "INSERT INTO chat_presets (id, user_id, name, system_prompt, params, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.id.to_string())
        .bind(user_id.to_string())
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(params_json(&p.params))
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(self.db.writer())
        .await?;
        Ok(p)
    }

    async fn presets(&self, user_id: Uuid) -> StoreResult<Vec<Preset>> {
        let rows = sqlx::query(
            "SELECT id, name, system_prompt, params, created_at, updated_at FROM chat_presets \
             WHERE user_id = $1 ORDER BY name",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(preset).collect()
    }

    async fn preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<Preset> {
        let row = sqlx::query(
            "SELECT id, name, system_prompt, params, created_at, updated_at FROM chat_presets \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id.to_string())
        .bind(user_id.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        preset(&row)
    }

    async fn update_preset(&self, user_id: Uuid, p: Preset) -> StoreResult<Preset> {
        let result = sqlx::query(
            "UPDATE chat_presets SET name = $1, system_prompt = $2, params = $3, updated_at = $4 \
             WHERE id = $5 AND user_id = $6",
        )
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(params_json(&p.params))
        .bind(p.updated_at)
        .bind(p.id.to_string())
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(p)
    }

    async fn delete_preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM chat_presets WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(self.db.writer())
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Author, HitKind, MessageStatus};

    /// Before, `MATCH` ran over every user's rows and the owner was checked after the join:
    /// the index itself now answers only the owner's rows, whatever others have written.
    #[tokio::test]
    async fn sqlite_searches_are_scoped_to_the_owner_inside_the_index() {
        let dir = std::env::temp_dir().join(format!("confab-chat-fts-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("test.db").display());
        let db = Db::connect(&url, &confab_core::config::DatabaseConfig::default())
            .await
            .unwrap();
        migrations().run(&db).await.unwrap();
        let store = SqlChatStore::new(db.clone());
        let (mine, theirs) = (Uuid::now_v7(), Uuid::now_v7());
        let now = confab_core::now_ms();
        for (user, count) in [(theirs, 300), (mine, 3)] {
            let conversation = store
                .create_conversation(NewConversation {
                    id: Uuid::now_v7(),
                    user_id: user,
                    title: "giraffes".into(),
                    model: None,
                    system_prompt: None,
                    params: Params::default(),
                    folder: None,
                    tags: vec![],
                    now,
                })
                .await
                .unwrap();
            let mut parent = None;
            for i in 0..count {
                let id = Uuid::now_v7();
                store
                    .add_message(
                        user,
                        NewMessage {
                            id,
                            conversation_id: conversation.id,
                            parent_id: parent,
                            role: Author::User,
                            content: format!("entry {i} about giraffes"),
                            status: MessageStatus::Complete,
                            model: None,
                            now: now + i,
                        },
                    )
                    .await
                    .unwrap();
                parent = Some(id);
            }
        }
        let words = vec!["giraffes".to_owned()];
        let in_index = |sql: &'static str, query: String| {
            let db = db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(query)
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        // What the store's MATCH finds, before any join or filter.
        let count = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH $1";
        assert_eq!(
            in_index(count, sqlite_match(mine, "content", &words)).await,
            3
        );
        assert_eq!(
            in_index(count, sqlite_match(theirs, "content", &words)).await,
            300
        );
        let titles = "SELECT count(*) FROM conversations_fts WHERE conversations_fts MATCH $1";
        assert_eq!(
            in_index(titles, sqlite_match(mine, "title", &words)).await,
            1
        );
        // A word that is part of a user's id matches no text.
        let id_part = mine.to_string()[..8].to_owned();
        assert_eq!(
            in_index(count, sqlite_match(mine, "content", &[id_part])).await,
            0
        );
        let hits = store.search(mine, &words, 100).await.unwrap();
        assert_eq!(hits.iter().filter(|h| h.kind == HitKind::Title).count(), 1);
        assert_eq!(
            hits.iter().filter(|h| h.kind == HitKind::Message).count(),
            3
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
