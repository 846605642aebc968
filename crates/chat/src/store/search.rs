//! [`SearchStore`] on SQLite (FTS5, the owner inside the index) and PostgreSQL (tsvector and
//! GIN, candidates chosen from the data rather than by the planner).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::{SqlChatStore, ids_json, uuid};
use crate::domain::{Author, HitKind, SearchHit, highlight, snippet_parts};
use crate::ports::{SearchStore, StoreResult};

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

/// Messages a search ranks by relevance: the user's newest matches, at most this many.
const SEARCH_CANDIDATES: usize = 200;
/// PostgreSQL (see `SqlChatStore::postgres_candidates`): the user's newest messages tested
/// one by one to see how common the words are, the most tested when they are common enough,
/// and the share of matches below which the full-text index is cheaper than testing.
const SEARCH_PROBE: usize = 4_000;
const SEARCH_WALK: usize = 60_000;
const SEARCH_DENSE: f64 = 0.004;

impl SqlChatStore {
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
        pool: &AnyPool,
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
                        .fetch_all(pool)
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
        let mut tx = pool.begin().await?;
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
}

#[async_trait]
impl SearchStore for SqlChatStore {
    async fn search(
        &self,
        user_id: Uuid,
        words: &[String],
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // Search tolerates replication lag: a replica serves it when configured.
        self.db
            .read_lagging(|pool| async move { self.search_on(&pool, user_id, words, limit).await })
            .await
    }
}

impl SqlChatStore {
    /// [`SearchStore::search`] with its queries on `pool`.
    async fn search_on(
        &self,
        pool: &AnyPool,
        user_id: Uuid,
        words: &[String],
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
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
            .fetch_all(pool)
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
                    .fetch_all(pool)
                    .await?
            }
            confab_store::Backend::Postgres => {
                let mut chosen = self.postgres_candidates(pool, user_id, &query).await?;
                chosen.sort_by(|a, b| b.1.total_cmp(&a.1));
                chosen.truncate(limit as usize);
                let ids: Vec<Uuid> = chosen.iter().map(|(id, _)| *id).collect();
                let mut rows = sqlx::query(messages_sql)
                    .bind(&query)
                    .bind(user_id.to_string())
                    .bind(ids_json(&ids))
                    .fetch_all(pool)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageStatus, Params};
    use crate::ports::{ConversationStore, MessageStore, NewConversation, NewMessage};
    use crate::store::migrations;
    use confab_store::Db;

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
                            attachments: Vec::new(),
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
