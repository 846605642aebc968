//! WebSocket fan-out latency of a chat answer's live events (benchmarks only).
//!
//! Holds one or more real-time sockets (`/api/v1/ws`) of one user, each on the chat process
//! named for it, and sends that user's messages one at a time to one chat process
//! (`POST /api/v1/conversations/{id}/messages`), reading the answer's SSE stream to its end.
//! The generating process hands each piece of the answer to the sender's SSE stream and then
//! publishes it as `message.delta` on the bus: so the moment a piece arrives on the SSE stream
//! stands for its publication, and each socket's delay is its arrival minus that moment, per
//! piece (matched by message id and offset), all read on this process's one monotonic clock.
//! The envelope's own `at` is in whole milliseconds, too coarse for this. Also recorded: the
//! first piece's and `message.completed`'s arrival on each socket from the moment the HTTP
//! request was sent.
//!
//! After each answer the sockets must have seen its `message.completed` (within
//! `--timeout-ms`) before the next message goes: pieces never queue behind another answer's.
//! Prints one JSON line: per socket (and for the SSE stream) p50/p90/p99/max in milliseconds,
//! and the pieces expected, seen and missed.
//!
//! Usage: `ws-fanout --send http://127.0.0.1:8080 --socket same=ws://127.0.0.1:8080/api/v1/ws
//! --socket other=ws://127.0.0.1:8081/api/v1/ws --token <access token> --model fast
//! [--answers 300] [--warmup 20]`

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "WebSocket fan-out latency of chat answers (benchmark)")]
struct Args {
    /// Base URL of the chat process that generates the answers (http://127.0.0.1:PORT).
    #[arg(long)]
    send: String,
    /// A socket to hold, `label=ws://127.0.0.1:PORT/api/v1/ws`; repeatable.
    #[arg(long = "socket", required = true)]
    sockets: Vec<String>,
    /// The user's access token (a JWT): the sockets and the sends use it.
    #[arg(long)]
    token: String,
    /// The model the conversations use (a scripted one answers word by word).
    #[arg(long)]
    model: String,
    /// Answers recorded.
    #[arg(long, default_value_t = 300)]
    answers: usize,
    /// Answers sent first and not recorded (connections, caches, JIT-free but warm).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Messages per conversation before a new one is started (bounds the history).
    #[arg(long, default_value_t = 25)]
    per_conversation: usize,
    /// How long an answer and its events may take, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// A label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
}

/// One live event a socket received, with the moment it arrived.
#[derive(Debug)]
enum Seen {
    Delta {
        message: Uuid,
        offset: u64,
        at: Instant,
    },
    Completed {
        message: Uuid,
        at: Instant,
    },
    /// The server's first frame: the socket is subscribed.
    Hello,
    Closed(String),
}

/// Samples in microseconds (signed: a socket may beat the SSE stream).
#[derive(Default)]
struct Samples(Vec<i64>);

impl Samples {
    fn add(&mut self, d: i64) {
        self.0.push(d);
    }

    fn summary(&mut self) -> Value {
        if self.0.is_empty() {
            return Value::Null;
        }
        self.0.sort_unstable();
        let q = |p: f64| {
            let last = self.0.len() - 1;
            let i = ((last as f64) * p).round() as usize;
            self.0[i.min(last)] as f64 / 1000.0
        };
        json!({
            "n": self.0.len(),
            "p50": q(0.50),
            "p90": q(0.90),
            "p99": q(0.99),
            "max": q(1.0),
        })
    }
}

fn micros_between(later: Instant, earlier: Instant) -> i64 {
    if later >= earlier {
        i64::try_from((later - earlier).as_micros()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from((earlier - later).as_micros()).unwrap_or(i64::MAX)
    }
}

/// What was recorded for one socket.
#[derive(Default)]
struct SocketRecord {
    /// Each piece: socket arrival minus SSE arrival.
    after_sse: Samples,
    /// First piece on the socket, from the HTTP send.
    first_delta: Samples,
    /// `message.completed` on the socket, from the HTTP send.
    completed: Samples,
    expected: u64,
    seen: u64,
}

/// Reads one socket's frames into `seen` until it closes.
async fn read_socket(url: String, token: String, seen: mpsc::UnboundedSender<Seen>) {
    let separator = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{separator}access_token={token}");
    let mut socket = match tokio_tungstenite::connect_async(full.as_str()).await {
        Ok((socket, _)) => socket,
        Err(e) => {
            let _ = seen.send(Seen::Closed(format!("connect: {e}")));
            return;
        }
    };
    while let Some(frame) = socket.next().await {
        let at = Instant::now();
        let text = match frame {
            Ok(Frame::Text(text)) => text,
            Ok(Frame::Close(reason)) => {
                let _ = seen.send(Seen::Closed(format!("closed: {reason:?}")));
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = seen.send(Seen::Closed(format!("read: {e}")));
                return;
            }
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let id = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        let item = match event["type"].as_str() {
            Some("hello") => Seen::Hello,
            Some("message.delta") => match (
                id(&event["data"]["message_id"]),
                event["data"]["offset"].as_u64(),
            ) {
                (Some(message), Some(offset)) => Seen::Delta {
                    message,
                    offset,
                    at,
                },
                _ => continue,
            },
            Some("message.completed") => match id(&event["data"]["message"]["id"]) {
                Some(message) => Seen::Completed { message, at },
                None => continue,
            },
            _ => continue,
        };
        if seen.send(item).is_err() {
            return;
        }
    }
    let _ = seen.send(Seen::Closed("ended".into()));
}

/// One answer as the sender's SSE stream delivered it.
struct Answer {
    message: Uuid,
    /// Offset of each piece -> when it arrived.
    pieces: HashMap<u64, Instant>,
    first: Option<Instant>,
}

/// Sends one message and reads its SSE answer to `done`.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    content: &str,
) -> anyhow::Result<Answer> {
    let mut response = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "content": content }))
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("{status}: {}", body.chars().take(300).collect::<String>());
    }
    let mut buffer: Vec<u8> = Vec::new();
    let mut answer = Answer {
        message: Uuid::nil(),
        pieces: HashMap::new(),
        first: None,
    };
    let mut done = false;
    while let Some(chunk) = response.chunk().await? {
        let at = Instant::now();
        buffer.extend_from_slice(&chunk);
        // Complete events end with a blank line.
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut name = "";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            match name {
                "message" => {
                    let v: Value = serde_json::from_str(&data)?;
                    answer.message = v["assistant_message"]["id"]
                        .as_str()
                        .context("no assistant_message.id")?
                        .parse()?;
                }
                "delta" => {
                    let v: Value = serde_json::from_str(&data)?;
                    let offset = v["offset"].as_u64().context("no offset")?;
                    answer.pieces.entry(offset).or_insert(at);
                    answer.first.get_or_insert(at);
                }
                "done" => done = true,
                _ => {}
            }
        }
        if done {
            break;
        }
    }
    if !done || answer.message.is_nil() {
        bail!("the answer's stream ended without `message` and `done`");
    }
    Ok(answer)
}

async fn new_conversation(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    model: &str,
) -> anyhow::Result<Uuid> {
    let response = http
        .post(format!("{base}/api/v1/conversations"))
        .bearer_auth(token)
        .json(&json!({ "model": model }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("creating a conversation: {status} {body}");
    }
    Ok(body["id"].as_str().context("no conversation id")?.parse()?)
}

/// Socket events of `message` until its `message.completed`, or the deadline.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    message: Uuid,
    deadline: Instant,
) -> anyhow::Result<(HashMap<u64, Instant>, Option<Instant>)> {
    let mut pieces = HashMap::new();
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        match next {
            Err(_) => return Ok((pieces, None)),
            Ok(None) => bail!("a socket's reader ended"),
            Ok(Some(Seen::Closed(why))) => bail!("a socket ended: {why}"),
            Ok(Some(Seen::Delta {
                message: m,
                offset,
                at,
            })) if m == message => {
                pieces.entry(offset).or_insert(at);
            }
            Ok(Some(Seen::Completed { message: m, at })) if m == message => {
                return Ok((pieces, Some(at)));
            }
            Ok(Some(_)) => {}
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.answers == 0 || args.per_conversation == 0 {
        bail!("--answers and --per-conversation must be positive");
    }
    let base = args.send.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()?;
    let mut labels = Vec::new();
    let mut receivers = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for socket in &args.sockets {
        let (label, url) = socket
            .split_once('=')
            .with_context(|| format!("--socket {socket:?} is not label=ws://…"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        readers.spawn(read_socket(url.to_owned(), args.token.clone(), tx));
        labels.push(label.to_owned());
        receivers.push(rx);
    }
    let mut records: Vec<SocketRecord> = labels.iter().map(|_| SocketRecord::default()).collect();
    let mut sse_first = Samples::default();
    let mut missed_completions = 0u64;
    let mut conversation = Uuid::nil();
    let timeout = Duration::from_millis(args.timeout_ms);
    // Every socket is subscribed (its `hello` came) before the first message goes.
    for (rx, label) in receivers.iter_mut().zip(&labels) {
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(Seen::Hello)) => {}
            Ok(Some(Seen::Closed(why))) => bail!("socket {label}: {why}"),
            other => bail!("socket {label}: no hello ({other:?})"),
        }
    }
    // A NATS subscription reaches the server just after `hello`: the warm-up answers cover
    // that, and this pause keeps the first of them from waiting out the timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for i in 0..args.warmup + args.answers {
        if i % args.per_conversation == 0 {
            conversation = new_conversation(&http, &base, &args.token, &args.model).await?;
        }
        let url = format!("{base}/api/v1/conversations/{conversation}/messages");
        let sent = Instant::now();
        let answer = send(
            &http,
            &url,
            &args.token,
            &format!("message {i} of the fan-out benchmark"),
        )
        .await?;
        let recorded = i >= args.warmup;
        let deadline = Instant::now() + timeout;
        for (rx, record) in receivers.iter_mut().zip(records.iter_mut()) {
            let (pieces, completed) = collect(rx, answer.message, deadline).await?;
            if !recorded {
                continue;
            }
            record.expected += answer.pieces.len() as u64;
            record.seen += pieces.len() as u64;
            if let Some(first) = pieces.values().min() {
                record.first_delta.add(micros_between(*first, sent));
            }
            match completed {
                Some(at) => record.completed.add(micros_between(at, sent)),
                None => missed_completions += 1,
            }
            for (offset, at) in &pieces {
                if let Some(sse) = answer.pieces.get(offset) {
                    record.after_sse.add(micros_between(*at, *sse));
                }
            }
        }
        if recorded && let Some(first) = answer.first {
            sse_first.add(micros_between(first, sent));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    readers.abort_all();
    let sockets: Vec<Value> = labels
        .iter()
        .zip(records.iter_mut())
        .map(|(label, r)| {
            json!({
                "socket": label,
                "pieces_expected": r.expected,
                "pieces_seen": r.seen,
                "after_sse_ms": r.after_sse.summary(),
                "first_delta_from_send_ms": r.first_delta.summary(),
                "completed_from_send_ms": r.completed.summary(),
            })
        })
        .collect();
    let line = json!({
        "label": args.label,
        "answers": args.answers,
        "warmup": args.warmup,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "missed_completions": missed_completions,
        "sse_first_delta_from_send_ms": sse_first.summary(),
        "sockets": sockets,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    Ok(())
}
