//! A fast fake OpenAI-compatible upstream for gateway benchmarks.
//!
//! `POST /v1/chat/completions` answers a fixed short text (16 words): a JSON completion, or
//! with `"stream": true` server-sent events (`data: {chunk}` per word, a usage chunk when
//! `stream_options.include_usage`, then `data: [DONE]`). `GET /v1/models` lists the one
//! model. Every answer is serialised once at start, so a request costs only parsing the two
//! fields of the body that select the answer. No delay unless `--delay-ms` asks for one.
//!
//! Usage: `fake-upstream --listen 127.0.0.1:9100 [--threads 1] [--delay-ms 0] [--model fake-model]`

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "A fast fake OpenAI-compatible upstream (benchmarks only)")]
struct Args {
    /// Address to bind; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Milliseconds to wait before answering (simulated upstream latency).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// The model name in answers and in /v1/models.
    #[arg(long, default_value = "fake-model")]
    model: String,
}

/// The fixed answer: 16 words, streamed one word per chunk.
const ANSWER: &str =
    "The quick brown fox jumps over the lazy dog while the cat watches from a sunny windowsill.";
const PROMPT_TOKENS: usize = 12;

#[derive(Debug, Clone)]
struct Answers {
    json: Bytes,
    sse: Bytes,
    sse_with_usage: Bytes,
    models: Bytes,
    delay: Option<Duration>,
}

fn words() -> Vec<String> {
    let words: Vec<&str> = ANSWER.split(' ').collect();
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                (*w).to_owned()
            } else {
                format!("{w} ")
            }
        })
        .collect()
}

fn answers(model: &str, delay_ms: u64) -> anyhow::Result<Answers> {
    let words = words();
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": words.len(), "total_tokens": PROMPT_TOKENS + words.len()});
    let completion = json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop", "logprobs": null}],
        "usage": usage,
    });
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    let usage_chunk = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage});
    let sse = |with_usage: bool| -> anyhow::Result<Bytes> {
        let mut out = String::new();
        for event in events.iter().chain(with_usage.then_some(&usage_chunk)) {
            out.push_str("data: ");
            out.push_str(&serde_json::to_string(event)?);
            out.push_str("\n\n");
        }
        out.push_str("data: [DONE]\n\n");
        Ok(Bytes::from(out))
    };
    let models = json!({"object": "list", "data": [{"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}]});
    Ok(Answers {
        json: Bytes::from(serde_json::to_vec(&completion)?),
        sse: sse(false)?,
        sse_with_usage: sse(true)?,
        models: Bytes::from(serde_json::to_vec(&models)?),
        delay: (delay_ms > 0).then_some(Duration::from_millis(delay_ms)),
    })
}

/// The only fields of a request that choose the answer.
#[derive(Debug, Default, Deserialize)]
struct Selector {
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

fn respond(content_type: &'static str, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn chat(State(answers): State<Answers>, body: Bytes) -> Response {
    let Ok(selector) = serde_json::from_slice::<Selector>(&body) else {
        let mut response = respond(
            "application/json",
            Bytes::from_static(br#"{"error":{"message":"invalid JSON body","type":"invalid_request_error","param":null,"code":null}}"#),
        );
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    if let Some(delay) = answers.delay {
        tokio::time::sleep(delay).await;
    }
    if selector.stream == Some(true) {
        let with_usage = selector.stream_options.is_some_and(|o| o.include_usage);
        let body = if with_usage {
            answers.sse_with_usage
        } else {
            answers.sse
        };
        let mut response = respond("text/event-stream", body);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        respond("application/json", answers.json)
    }
}

async fn models(State(answers): State<Answers>) -> Response {
    respond("application/json", answers.models)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let answers = answers(&args.model, args.delay_ms)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(answers);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot bind {}", args.listen))?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server failed")
    })
}
