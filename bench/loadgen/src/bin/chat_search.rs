//! Chat search at scale: fills a database with conversations and messages (one user owns
//! most of them, the worst case for per-user search), then times `ChatStore::search` (the
//! code behind `GET /api/v1/search`) on a fixed mix of queries, side by side with the same
//! searches done without the full-text index (a `LIKE` scan over the user's messages).
//!
//! Prints one JSON line: rows, fill time, and p50/p90/p99/max latency of each side.
//!
//! Usage: `chat-search [--messages 1000000] [--queries 200] [--database-url URL]`
//! (default: a fresh SQLite file in a temporary directory; a `postgres://` URL uses that
//! database, which must be empty).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use confab_chat::ports::SearchStore;
use confab_core::config::DatabaseConfig;
use confab_store::{Backend, Db};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Chat full-text search at scale (benchmark)")]
struct Args {
    /// Messages to store in all.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// Messages per conversation.
    #[arg(long, default_value_t = 50)]
    per_conversation: usize,
    /// Searches timed on each side.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Searches of the scan side (it is slow; a sample is enough).
    #[arg(long, default_value_t = 20)]
    scan_queries: usize,
    #[arg(long)]
    database_url: Option<String>,
}

/// A vocabulary of pronounceable made-up words, drawn with a Zipf-like skew so a few words
/// are very common (as in real text) and most are rare.
struct Vocabulary {
    words: Vec<String>,
}

impl Vocabulary {
    fn new(size: usize, rng: &mut StdRng) -> Self {
        const SYLLABLES: [&str; 24] = [
            "ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "da", "fo", "gu", "ri", "ze",
            "an", "el", "or", "us", "im", "ba", "co", "tu", "ly", "xe",
        ];
        let mut words = Vec::with_capacity(size);
        while words.len() < size {
            let n = rng.gen_range(2..=4);
            let word: String = (0..n)
                .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
                .collect();
            if !words.contains(&word) {
                words.push(word);
            }
        }
        Self { words }
    }

    /// Rank r is drawn with probability about 1/r.
    fn draw(&self, rng: &mut StdRng) -> &str {
        let n = self.words.len() as f64;
        let r = (n.powf(rng.r#gen::<f64>()) - 1.0) as usize;
        &self.words[r.min(self.words.len() - 1)]
    }

    fn sentence(&self, rng: &mut StdRng, words: usize) -> String {
        (0..words)
            .map(|_| self.draw(rng))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn quantiles(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    json!({"n": samples.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("search.db").display()));
    let db = Db::connect(&url, &DatabaseConfig::default()).await?;
    confab_chat::migrations().run(&db).await?;
    let mut rng = StdRng::seed_from_u64(7);
    let vocabulary = Vocabulary::new(20_000, &mut rng);
    let owner = Uuid::now_v7();
    let others: Vec<Uuid> = (0..9).map(|_| Uuid::now_v7()).collect();

    // Fill: 90 % of conversations belong to `owner`, the rest to nine other users.
    let filled = Instant::now();
    let conversations = args.messages.div_ceil(args.per_conversation);
    let insert_conversations = match db.backend() {
        Backend::Sqlite => {
            "INSERT INTO conversations (id, user_id, title, params, created_at, updated_at) \
             SELECT value ->> 'id', value ->> 'user', value ->> 'title', '{}', \
             CAST(value ->> 'at' AS BIGINT), CAST(value ->> 'at' AS BIGINT) FROM jsonb_each(jsonb($1))"
        }
        Backend::Postgres => {
            "INSERT INTO conversations (id, user_id, title, params, created_at, updated_at) \
             SELECT value ->> 'id', value ->> 'user', value ->> 'title', '{}', \
             CAST(value ->> 'at' AS BIGINT), CAST(value ->> 'at' AS BIGINT) \
             FROM jsonb_array_elements(CAST($1 AS jsonb)) AS rows(value)"
        }
    };
    let insert_messages = match db.backend() {
        Backend::Sqlite => {
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
             created_at, updated_at, user_id) SELECT value ->> 'id', value ->> 'conversation', \
             value ->> 'parent', value ->> 'role', value ->> 'content', 'complete', \
             CAST(value ->> 'at' AS BIGINT), CAST(value ->> 'at' AS BIGINT), value ->> 'user' \
             FROM jsonb_each(jsonb($1))"
        }
        Backend::Postgres => {
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
             created_at, updated_at, user_id) SELECT value ->> 'id', value ->> 'conversation', \
             value ->> 'parent', value ->> 'role', value ->> 'content', 'complete', \
             CAST(value ->> 'at' AS BIGINT), CAST(value ->> 'at' AS BIGINT), value ->> 'user' \
             FROM jsonb_array_elements(CAST($1 AS jsonb)) AS rows(value)"
        }
    };
    let mut at = confab_core::now_ms() - 10_000_000;
    let mut stored = 0usize;
    for chunk in 0..conversations.div_ceil(20) {
        let mut conv_rows = Vec::new();
        let mut message_rows = Vec::new();
        for c in 0..20 {
            if chunk * 20 + c >= conversations {
                break;
            }
            let id = Uuid::now_v7();
            let user = if rng.gen_range(0..10) == 0 {
                others[rng.gen_range(0..others.len())]
            } else {
                owner
            };
            at += 1;
            conv_rows.push(json!({"id": id, "user": user, "title": vocabulary.sentence(&mut rng, 4), "at": at}));
            let mut parent: Option<Uuid> = None;
            for m in 0..args.per_conversation.min(args.messages - stored) {
                let message = Uuid::now_v7();
                let length = rng.gen_range(10..60);
                at += 1;
                message_rows.push(json!({
                    "id": message, "conversation": id, "parent": parent, "user": user,
                    "role": if m % 2 == 0 { "user" } else { "assistant" },
                    "content": vocabulary.sentence(&mut rng, length), "at": at,
                }));
                parent = Some(message);
                stored += 1;
            }
        }
        let mut tx = db.pool().begin().await?;
        sqlx::query(insert_conversations)
            .bind(serde_json::to_string(&conv_rows)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query(insert_messages)
            .bind(serde_json::to_string(&message_rows)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    if db.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(db.pool()).await?;
    }

    // The queries, in turn: a rare word, one of the 50 most common words, two of the 500 most
    // common, and the first four letters of a rare word (matched as a prefix).
    let mut queries = Vec::with_capacity(args.queries);
    for i in 0..args.queries {
        let q = match i % 4 {
            0 => vec![vocabulary.words[rng.gen_range(2000..vocabulary.words.len())].clone()],
            1 => vec![vocabulary.words[rng.gen_range(0..50)].clone()],
            2 => vec![
                vocabulary.words[rng.gen_range(0..500)].clone(),
                vocabulary.words[rng.gen_range(0..500)].clone(),
            ],
            _ => {
                let word = &vocabulary.words[rng.gen_range(2000..vocabulary.words.len())];
                vec![word[..word.len().min(4)].to_owned()]
            }
        };
        queries.push(q);
    }
    let store = confab_chat::SqlChatStore::new(db.clone());
    // Warm the caches once, as a running server's would be.
    for q in queries.iter().take(10) {
        store.search(owner, q, 20).await?;
    }
    let mut indexed = Vec::new();
    let mut by_kind: [Vec<Duration>; 4] = Default::default();
    let mut hits = 0usize;
    for (i, q) in queries.iter().enumerate() {
        let started = Instant::now();
        hits += store.search(owner, q, 20).await?.len();
        indexed.push(started.elapsed());
        by_kind[i % 4].push(started.elapsed());
    }
    let [rare, common, two, prefix] = by_kind.map(quantiles);
    let mut scanned = Vec::new();
    for q in queries.iter().take(args.scan_queries) {
        let started = Instant::now();
        let like = format!("%{}%", q[0]);
        sqlx::query(
            "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE c.user_id = $1 AND m.content LIKE $2 ORDER BY m.created_at DESC LIMIT 20",
        )
        .bind(owner.to_string())
        .bind(like)
        .fetch_all(db.pool())
        .await?;
        scanned.push(started.elapsed());
    }
    let indexed = quantiles(indexed);
    let scanned = quantiles(scanned);
    let ratio =
        scanned["p50_ms"].as_f64().unwrap_or(0.0) / indexed["p50_ms"].as_f64().unwrap_or(1.0);
    let line = json!({
            "backend": format!("{:?}", db.backend()),
            "messages": stored,
            "conversations": conversations,
            "fill_s": fill_secs,
            "search": indexed,
            "search_by_query": {"rare_word": rare, "common_word": common, "two_words": two, "prefix": prefix},
            "hits_per_query": hits as f64 / queries.len() as f64,
            "like_scan": scanned,
            "scan_over_search_p50": ratio,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    db.close().await;
    Ok(())
}
