//! The chat service through its HTTP API, side by side with the same work done directly on
//! its store (the floor: what the database alone costs).
//!
//! Long (about 1,020 lines) because it is one benchmark binary: the server it starts, four
//! measurements (three of them both through the API and directly on the store) and the report;
//! the measurements are the next cut, into modules of their own.
//!
//! Starts `confab serve` (release build) on 127.0.0.1 with two scripted models — `fast`
//! (answers at once) and `slow` (one word every `--slow-word-ms`) — and the local engine off,
//! registers a user with an API key (scope `chat`), and measures:
//!
//! 1. append: `--concurrency` clients each sending messages round-robin over their own
//!    `--conversations-per-client` conversations for `--duration` seconds, reading every SSE
//!    answer to its end; each request stores two messages (the user's and the answer). The
//!    direct side makes the same store calls per request in this process (read the
//!    conversation and its path, store both messages, finish the answer).
//! 2. list: `--listed` conversations imported for a second user; the first page (50), a page
//!    from the middle (by cursor) and a tag-filtered page, each `--requests` times.
//! 3. open: one imported conversation of `--long` messages; its active path, `--requests`
//!    times.
//! 4. streams: `--streams` answers from the slow model at once, each on its own connection
//!    and conversation; time to the first word, all finished, and the server's RSS (idle,
//!    peak while streaming, after) sampled from /proc every 50 ms.
//!
//! Prints a JSON line per part, then a table with the targets and the API / direct ratios.
//! Usage: `chat-api [--confab target/release/confab] [--database-url postgres://…]` (a
//! PostgreSQL database must be empty; default: SQLite in a temporary data directory).

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use confab_chat::domain::{Author, MessageStatus};
use confab_chat::ports::{
    ConversationFilter, ConversationPosition, ConversationStore, Ending, MessageStore, NewMessage,
};
use confab_core::config::DatabaseConfig;
use confab_store::Db;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "The chat service through its API vs its store directly (benchmark)")]
struct Args {
    /// The confab binary (a release build).
    #[arg(long, default_value = "target/release/confab")]
    confab: PathBuf,
    /// A PostgreSQL database for the server (and the direct side); must be empty.
    #[arg(long)]
    database_url: Option<String>,
    /// Clients sending messages at once (append).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 8)]
    conversations_per_client: usize,
    /// Seconds of timed appending per side, after a second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Conversations of the listing user.
    #[arg(long, default_value_t = 10_000)]
    listed: usize,
    /// Messages in the long conversation.
    #[arg(long, default_value_t = 1000)]
    long: usize,
    /// Requests per list / open measurement.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Concurrent streamed answers.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Words in a slow answer.
    #[arg(long, default_value_t = 40)]
    slow_words: usize,
    /// Milliseconds between a slow answer's words.
    #[arg(long, default_value_t = 250)]
    slow_word_ms: u64,
    /// Extra environment for the server, KEY=VALUE (repeatable), e.g. allocator settings.
    #[arg(long)]
    server_env: Vec<String>,
    /// Skip parts: any of append, list, open, streams.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

const PASSWORD: &str = "correct horse battery staple";
const FAST_REPLY: &str = "Noted: {last}";

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn summary(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "n": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
    })
}

fn p99_ms(h: &Histogram<u64>) -> f64 {
    h.value_at_quantile(0.99) as f64 / 1000.0
}

fn p50_ms(h: &Histogram<u64>) -> f64 {
    h.value_at_quantile(0.50) as f64 / 1000.0
}

fn emit(line: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The running server.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::Client,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(args: &Args) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let slow_reply = (1..=args.slow_words)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let config = dir.path().join("confab.toml");
        std::fs::write(
            &config,
            format!(
                "[log]\nlevel = \"warn\"\n\n[chat]\nauto_titles = false\n\n[inference]\n\
                 default_model = \"fast\"\nproviders = [\n\
                 {{ name = \"fast\", kind = \"scripted\", models = [\"fast\"], reply = \"{FAST_REPLY}\" }},\n\
                 {{ name = \"slow\", kind = \"scripted\", models = [\"slow\"], reply = \"{slow_reply}\", delay_ms = {} }},\n]\n\n\
                 [inference.engine]\nenabled = false\n\n\
                 # One user stands in for many: no cap on the answers it has running.\n\
                 [inference.concurrency]\nuser_requests = 0\n",
                args.slow_word_ms
            ),
        )?;
        let mut command = Command::new(&args.confab);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(args.server_env.iter().filter_map(|kv| kv.split_once('=')))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let database_url = match &args.database_url {
            Some(url) => {
                command.env("DATABASE_URL", url);
                url.clone()
            }
            None => format!("sqlite://{}", data_dir.join("confab.db").display()),
        };
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", args.confab.display()))?;
        let pid = child.id().context("the server has no pid")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .build()?;
        let server = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            http,
            database_url,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = server.http.get(server.url("/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("confab serve was not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers a user and returns (user id, API key with the chat scope).
    async fn user(&self, email: &str) -> anyhow::Result<(Uuid, String)> {
        let creds = json!({"email": email, "password": PASSWORD, "name": "Bench"});
        self.json(
            reqwest::Method::POST,
            "/api/v1/auth/register",
            None,
            Some(&creds),
        )
        .await?;
        let login = self
            .json(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await?;
        let token = login["access_token"]
            .as_str()
            .context("no access token")?
            .to_owned();
        let me = self
            .json(reqwest::Method::GET, "/api/v1/auth/me", Some(&token), None)
            .await?;
        let id: Uuid = me["id"].as_str().context("no user id")?.parse()?;
        let key = self
            .json(
                reqwest::Method::POST,
                "/api/v1/auth/api-keys",
                Some(&token),
                Some(&json!({"name": "bench", "scopes": ["chat"]})),
            )
            .await?;
        Ok((id, key["key"].as_str().context("no key")?.to_owned()))
    }

    async fn conversation(&self, key: &str, model: &str) -> anyhow::Result<Uuid> {
        let c = self
            .json(
                reqwest::Method::POST,
                "/api/v1/conversations",
                Some(key),
                Some(&json!({"model": model})),
            )
            .await?;
        Ok(c["id"].as_str().context("no conversation id")?.parse()?)
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends one message and reads the SSE answer to its end; an error unless it ended `done`.
async fn send(http: &reqwest::Client, url: &str, key: &str, content: &str) -> anyhow::Result<()> {
    let response = http
        .post(url)
        .bearer_auth(key)
        .json(&json!({"content": content}))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    if !has_event(&body, "done") {
        bail!("the stream ended without `done`");
    }
    Ok(())
}

/// Whether an SSE body holds an event named `name`.
fn has_event(body: &[u8], name: &str) -> bool {
    let line = format!("event: {name}");
    body.windows(line.len()).any(|w| w == line.as_bytes())
}

struct AppendResult {
    requests: u64,
    errors: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

impl AppendResult {
    fn messages_per_second(&self) -> f64 {
        2.0 * self.requests as f64 / self.seconds
    }

    fn json(&self, side: &str) -> Value {
        json!({
            "part": "append", "side": side, "requests": self.requests, "errors": self.errors,
            "seconds": self.seconds, "messages_per_s": self.messages_per_second(),
            "latency_ms": summary(&self.latency),
        })
    }
}

/// Runs `op` from `clients` tasks, each over its own items round-robin, for a second of
/// warm-up and then `duration`; counts what finished in the timed window.
async fn closed_loop<F, Fut>(
    clients: Vec<Vec<Uuid>>,
    duration: Duration,
    op: F,
) -> anyhow::Result<AppendResult>
where
    F: Fn(Uuid, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let timing = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for items in clients {
        let (op, timing, stop, errors) = (op.clone(), timing.clone(), stop.clone(), errors.clone());
        tasks.spawn(async move {
            let mut latency = histogram()?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for &item in &items {
                    let started = Instant::now();
                    let counted = timing.load(Ordering::Relaxed);
                    let outcome = op(item, n).await;
                    n += 1;
                    if stop.load(Ordering::Relaxed) || !counted {
                        continue;
                    }
                    match outcome {
                        Ok(()) => latency.saturating_record(micros(started.elapsed())),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                report_error(&e);
                            }
                        }
                    }
                }
            }
            anyhow::Ok(latency)
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    timing.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let mut latency = histogram()?;
    while let Some(done) = tasks.join_next().await {
        latency.add(done??)?;
    }
    Ok(AppendResult {
        requests: latency.len(),
        errors: errors.load(Ordering::Relaxed),
        seconds,
        latency,
    })
}

fn report_error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e:#}");
}

async fn append_api(server: &Server, args: &Args, key: &str) -> anyhow::Result<AppendResult> {
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let mut mine = Vec::new();
        for _ in 0..args.conversations_per_client {
            mine.push(server.conversation(key, "fast").await?);
        }
        clients.push(mine);
    }
    let http = server.http.clone();
    let base = server.base.clone();
    let key = Arc::new(key.to_owned());
    closed_loop(clients, Duration::from_secs(args.duration), move |c, n| {
        let (http, key) = (http.clone(), key.clone());
        let url = format!("{base}/api/v1/conversations/{c}/messages");
        async move {
            send(
                &http,
                &url,
                &key,
                &format!("message number {n} of the benchmark"),
            )
            .await
        }
    })
    .await
}

/// The store calls one sent message makes, without HTTP, auth, SSE or the model.
async fn append_direct(
    store: Arc<confab_chat::SqlChatStore>,
    args: &Args,
    user: Uuid,
) -> anyhow::Result<AppendResult> {
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let mut mine = Vec::new();
        for _ in 0..args.conversations_per_client {
            let id = confab_core::id::new_id();
            store
                .create_conversation(confab_chat::ports::NewConversation {
                    id,
                    user_id: user,
                    title: String::new(),
                    model: Some("fast".into()),
                    system_prompt: None,
                    params: confab_chat::domain::Params::default(),
                    folder: None,
                    tags: Vec::new(),
                    now: confab_core::now_ms(),
                })
                .await?;
            mine.push(id);
        }
        clients.push(mine);
    }
    closed_loop(clients, Duration::from_secs(args.duration), move |c, n| {
        let store = store.clone();
        async move {
            let conversation = store.conversation(user, c).await?;
            if let Some(leaf) = conversation.active_leaf_id {
                store.lineage(user, c, leaf).await?;
            }
            let content = format!("message number {n} of the benchmark");
            let now = confab_core::now_ms();
            let question = NewMessage {
                id: confab_core::id::new_id(),
                conversation_id: c,
                parent_id: conversation.active_leaf_id,
                role: Author::User,
                content: content.clone(),
                status: MessageStatus::Complete,
                model: None,
                attachments: Vec::new(),
                now,
            };
            let answer = NewMessage {
                id: confab_core::id::new_id(),
                conversation_id: c,
                parent_id: Some(question.id),
                role: Author::Assistant,
                content: String::new(),
                status: MessageStatus::Streaming,
                model: Some("fast".into()),
                attachments: Vec::new(),
                now,
            };
            let answer_id = answer.id;
            store.add_messages(user, c, vec![question, answer]).await?;
            store
                .finish(
                    user,
                    answer_id,
                    Ending {
                        status: MessageStatus::Complete,
                        content: FAST_REPLY.replace("{last}", &content),
                        error: None,
                        prompt_tokens: Some(6),
                        completion_tokens: Some(7),
                        now: confab_core::now_ms(),
                    },
                )
                .await?;
            Ok(())
        }
    })
    .await
}

/// Times `op` `n` times one after another.
async fn sequential<F, Fut>(n: usize, mut op: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..n.div_ceil(10) {
        op().await?;
    }
    let mut h = histogram()?;
    for _ in 0..n {
        let started = Instant::now();
        op().await?;
        h.saturating_record(micros(started.elapsed()));
    }
    Ok(h)
}

async fn get_ok(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<()> {
    let response = http.get(url).bearer_auth(key).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    let at = confab_core::id::ms_to_datetime(ms);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn message_json(id: Uuid, parent: Option<Uuid>, role: &str, content: String, at: i64) -> Value {
    json!({
        "id": id, "parent_id": parent, "role": role, "content": content, "status": "complete",
        "model": if role == "assistant" { Some("fast") } else { None },
        "error": null, "prompt_tokens": null, "completion_tokens": null,
        "created_at": rfc3339(at), "updated_at": rfc3339(at),
    })
}

fn conversation_json(i: usize, messages: Vec<Value>, at: i64) -> Value {
    let leaf = messages.last().map(|m| m["id"].clone());
    json!({
        "id": Uuid::now_v7(), "title": format!("Conversation {i}"), "model": "fast",
        "system_prompt": null, "params": {}, "folder": if i.is_multiple_of(5) { Some("projects") } else { None },
        "tags": if i.is_multiple_of(10) { vec!["work"] } else { Vec::new() },
        "pinned": i.is_multiple_of(500), "archived": false, "active_leaf_id": leaf,
        "created_at": rfc3339(at), "updated_at": rfc3339(at), "messages": messages,
    })
}

fn export(conversations: Vec<Value>) -> Value {
    json!({
        "format": "confab.conversations", "version": 1,
        "exported_at": rfc3339(confab_core::now_ms()), "conversations": conversations,
    })
}

/// A paragraph of ordinary text, a little different each time.
fn paragraph(i: usize) -> String {
    format!(
        "Message {i}: the migration plan moves the reporting jobs to the new cluster first, \
         then the ingestion workers, and keeps the old queue readable for a week so nothing \
         is lost while both run. Step {i} checks the row counts on both sides before the \
         switch and after it, and the on-call engineer signs off in the channel."
    )
}

struct Measured {
    name: &'static str,
    api: Histogram<u64>,
    direct: Histogram<u64>,
}

async fn list_and_open(
    server: &Server,
    args: &Args,
    store: &confab_chat::SqlChatStore,
) -> anyhow::Result<Vec<Measured>> {
    let (user, key) = server.user("lister@example.com").await?;
    let mut out = Vec::new();
    let skip_list = args.skip.iter().any(|s| s == "list");
    let skip_open = args.skip.iter().any(|s| s == "open");
    if !skip_list {
        // Imported in batches of 2,000 conversations (two messages each), oldest first.
        let started = Instant::now();
        let base = confab_core::now_ms() - 86_400_000 * 365;
        let mut i = 0;
        while i < args.listed {
            let batch: Vec<Value> = (i..(i + 2000).min(args.listed))
                .map(|i| {
                    let at = base + i as i64 * 60_000;
                    let q = Uuid::now_v7();
                    conversation_json(
                        i,
                        vec![
                            message_json(q, None, "user", format!("Question {i}?"), at),
                            message_json(
                                Uuid::now_v7(),
                                Some(q),
                                "assistant",
                                paragraph(i),
                                at + 1000,
                            ),
                        ],
                        at,
                    )
                })
                .collect();
            i += batch.len();
            server
                .json(
                    reqwest::Method::POST,
                    "/api/v1/conversations/import",
                    Some(&key),
                    Some(&export(batch)),
                )
                .await?;
        }
        emit(
            &json!({"part": "list", "imported_conversations": args.listed,
                     "import_seconds": started.elapsed().as_secs_f64()}),
        )?;
        let url = server.url("/api/v1/conversations?limit=50");
        let first = server
            .json(
                reqwest::Method::GET,
                "/api/v1/conversations?limit=50",
                Some(&key),
                None,
            )
            .await?;
        if first["items"].as_array().map_or(0, Vec::len) != 50 {
            bail!("the first page does not hold 50 conversations: {first}");
        }
        // A cursor half-way down: walk pages of 200.
        let mut cursor = String::new();
        for _ in 0..(args.listed / 2 / 200) {
            let page = server
                .json(
                    reqwest::Method::GET,
                    &if cursor.is_empty() {
                        "/api/v1/conversations?limit=200".to_owned()
                    } else {
                        format!("/api/v1/conversations?limit=200&cursor={cursor}")
                    },
                    Some(&key),
                    None,
                )
                .await?;
            cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        }
        let middle_position = store
            .list_conversations(
                user,
                &ConversationFilter::default(),
                None,
                u32::try_from(args.listed / 2).unwrap_or(u32::MAX),
            )
            .await?
            .last()
            .map(|c| ConversationPosition {
                updated_at: c.updated_at,
                id: c.id,
            });
        let http = &server.http;
        let api = sequential(args.requests, || get_ok(http, &url, &key)).await?;
        let direct = sequential(args.requests, || async {
            store
                .list_conversations(user, &ConversationFilter::default(), None, 51)
                .await?;
            Ok(())
        })
        .await?;
        out.push(Measured {
            name: "list: first page (50)",
            api,
            direct,
        });
        let url = server.url(&format!("/api/v1/conversations?limit=50&cursor={cursor}"));
        let api = sequential(args.requests, || get_ok(http, &url, &key)).await?;
        let direct = sequential(args.requests, || async {
            store
                .list_conversations(user, &ConversationFilter::default(), middle_position, 51)
                .await?;
            Ok(())
        })
        .await?;
        out.push(Measured {
            name: "list: a page half-way down (cursor)",
            api,
            direct,
        });
        let url = server.url("/api/v1/conversations?limit=50&tag=work");
        let filter = ConversationFilter {
            tag: Some("work".into()),
            ..ConversationFilter::default()
        };
        let api = sequential(args.requests, || get_ok(http, &url, &key)).await?;
        let direct = sequential(args.requests, || async {
            store.list_conversations(user, &filter, None, 51).await?;
            Ok(())
        })
        .await?;
        out.push(Measured {
            name: "list: tag filter, first page",
            api,
            direct,
        });
    }
    if !skip_open {
        let base = confab_core::now_ms() - 86_400_000;
        let mut messages = Vec::with_capacity(args.long);
        let mut parent = None;
        for i in 0..args.long {
            let id = Uuid::now_v7();
            let role = if i.is_multiple_of(2) {
                "user"
            } else {
                "assistant"
            };
            messages.push(message_json(
                id,
                parent,
                role,
                paragraph(i),
                base + i as i64 * 1000,
            ));
            parent = Some(id);
        }
        let imported = server
            .json(
                reqwest::Method::POST,
                "/api/v1/conversations/import",
                Some(&key),
                Some(&export(vec![conversation_json(1, messages, base)])),
            )
            .await?;
        let id: Uuid = imported["conversation_ids"][0]
            .as_str()
            .context("no imported id")?
            .parse()?;
        let path = format!("/api/v1/conversations/{id}/messages");
        let opened = server
            .json(reqwest::Method::GET, &path, Some(&key), None)
            .await?;
        let length = opened["items"].as_array().map_or(0, Vec::len);
        if length != args.long {
            bail!(
                "the long conversation opened with {length} messages, not {}",
                args.long
            );
        }
        let url = server.url(&path);
        let http = &server.http;
        let api = sequential(args.requests, || get_ok(http, &url, &key)).await?;
        let direct = sequential(args.requests, || async {
            let c = store.conversation(user, id).await?;
            let leaf = c.active_leaf_id.context("no active leaf")?;
            store.path(user, id, leaf).await?;
            Ok(())
        })
        .await?;
        out.push(Measured {
            name: "open: 1,000-message conversation",
            api,
            direct,
        });
    }
    for m in &out {
        emit(&json!({"part": m.name, "api_ms": summary(&m.api), "direct_ms": summary(&m.direct)}))?;
    }
    Ok(out)
}

struct Streams {
    finished: usize,
    failed: usize,
    first_word: Histogram<u64>,
    whole: Histogram<u64>,
    idle_kib: u64,
    peak_kib: u64,
    after_kib: u64,
    cpu_seconds: f64,
    seconds: f64,
}

async fn streams(server: &Server, args: &Args) -> anyhow::Result<Streams> {
    let (_, key) = server.user("streamer@example.com").await?;
    let mut conversations = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        conversations.push(server.conversation(&key, "slow").await?);
    }
    // Idle: after the set-up requests, with the allocator settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib();
    let cpu_before = cpu_seconds(server.pid);
    let peak = Arc::new(AtomicU64::new(idle_kib));
    let sampling = Arc::new(AtomicBool::new(true));
    let mut sampler = tokio::task::JoinSet::new();
    {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), server.pid);
        sampler.spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let started = Instant::now();
    let key = Arc::new(key);
    let mut tasks = tokio::task::JoinSet::new();
    for c in conversations {
        let http = server.http.clone();
        let key = key.clone();
        let url = server.url(&format!("/api/v1/conversations/{c}/messages"));
        tasks.spawn(async move {
            let began = Instant::now();
            let mut response = http
                .post(&url)
                .bearer_auth(key.as_str())
                .json(&json!({"content": "Tell me a long story."}))
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("{}", response.status());
            }
            let mut first = None;
            let mut seen = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                seen.extend_from_slice(&chunk);
                if first.is_none() && has_event(&seen, "delta") {
                    first = Some(began.elapsed());
                }
            }
            if !has_event(&seen, "done") {
                bail!("the stream ended without `done`");
            }
            Ok((first.context("no delta")?, began.elapsed()))
        });
    }
    let mut first_word = histogram()?;
    let mut whole = histogram()?;
    let (mut finished, mut failed) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok((first, all)) => {
                finished += 1;
                first_word.saturating_record(micros(first));
                whole.saturating_record(micros(all));
            }
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    report_error(&e);
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.pid) - cpu_before;
    sampling.store(false, Ordering::Relaxed);
    sampler.join_all().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(Streams {
        finished,
        failed,
        first_word,
        whole,
        idle_kib,
        peak_kib: peak.load(Ordering::Relaxed),
        after_kib: server.rss_kib(),
        cpu_seconds: cpu,
        seconds,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut server = Server::start(&args).await?;
    let db = Db::connect(&server.database_url, &DatabaseConfig::default()).await?;
    let store = Arc::new(confab_chat::SqlChatStore::new(db.clone()));
    let skip = |part: &str| args.skip.iter().any(|s| s == part);
    let mut table = Vec::<String>::new();
    if !skip("append") {
        let (user, key) = server.user("appender@example.com").await?;
        let api = append_api(&server, &args, &key).await?;
        emit(&api.json("api"))?;
        let direct = append_direct(store.clone(), &args, user).await?;
        emit(&direct.json("direct"))?;
        table.push(format!(
            "append   API {:>8.0} messages/s (p50 {:.2} ms, p99 {:.2} ms, {} errors) | store alone {:>8.0}/s | API/store {:.2}x | target >= 2,000/s: {}",
            api.messages_per_second(),
            p50_ms(&api.latency),
            p99_ms(&api.latency),
            api.errors,
            direct.messages_per_second(),
            api.messages_per_second() / direct.messages_per_second(),
            if api.messages_per_second() >= 2000.0 { "met" } else { "NOT met" },
        ));
    }
    if !skip("list") || !skip("open") {
        for m in list_and_open(&server, &args, &store).await? {
            let target = if m.name.starts_with("open") {
                20.0
            } else {
                10.0
            };
            table.push(format!(
                "{:<38} API p50 {:>6.2} ms p99 {:>6.2} ms | store alone p50 {:>6.2} ms p99 {:>6.2} ms | API/store p99 {:.2}x | target p99 <= {target} ms: {}",
                m.name,
                p50_ms(&m.api),
                p99_ms(&m.api),
                p50_ms(&m.direct),
                p99_ms(&m.direct),
                p99_ms(&m.api) / p99_ms(&m.direct),
                if p99_ms(&m.api) <= target { "met" } else { "NOT met" },
            ));
        }
    }
    if !skip("streams") {
        let s = streams(&server, &args).await?;
        emit(&json!({
            "part": "streams", "streams": args.streams, "finished": s.finished, "failed": s.failed,
            "first_word_ms": summary(&s.first_word), "whole_ms": summary(&s.whole),
            "rss_idle_mib": s.idle_kib as f64 / 1024.0, "rss_peak_mib": s.peak_kib as f64 / 1024.0,
            "rss_after_mib": s.after_kib as f64 / 1024.0, "server_cpu_seconds": s.cpu_seconds,
            "seconds": s.seconds,
        }))?;
        let per_stream =
            (s.peak_kib.saturating_sub(s.idle_kib)) as f64 / args.streams.max(1) as f64;
        table.push(format!(
            "streams  {} at once: {} finished, {} failed; first word p50 {:.1} ms p99 {:.1} ms; whole answer p99 {:.2} s (model alone {:.2} s); RSS idle {:.1} MiB, peak {:.1} MiB ({:.1} KiB per stream), after {:.1} MiB; server CPU {:.1} s for {:.1} s",
            args.streams,
            s.finished,
            s.failed,
            p50_ms(&s.first_word),
            p99_ms(&s.first_word),
            p99_ms(&s.whole) / 1000.0,
            (args.slow_words as u64 * args.slow_word_ms) as f64 / 1000.0,
            s.idle_kib as f64 / 1024.0,
            s.peak_kib as f64 / 1024.0,
            per_stream,
            s.after_kib as f64 / 1024.0,
            s.cpu_seconds,
            s.seconds,
        ));
    }
    db.close().await;
    server.child.start_kill()?;
    server.child.wait().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    for line in table {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(url) = &args.database_url
        && !url.starts_with("postgres")
    {
        bail!("--database-url must be a postgres:// URL");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args))
}
