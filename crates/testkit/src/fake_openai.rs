//! A fake OpenAI-compatible upstream that speaks the real wire format (JSON answers, SSE
//! streams ending in `[DONE]`, OpenAI error bodies), scripted per request: answer, fail with
//! a status (and `Retry-After`), or stall before answering. For router and gateway tests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What the fake does with one request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer with this text (word by word when streamed).
    Answer(String),
    /// Fail with this status, an OpenAI error body and an optional `Retry-After`.
    Fail {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Wait, then answer with the default.
    Stall(Duration),
}

#[derive(Debug)]
struct Shared {
    default: Behavior,
    queue: Mutex<VecDeque<Behavior>>,
    hits: AtomicUsize,
    /// The `traceparent` of the last request, if it had one.
    traceparent: Mutex<Option<String>>,
}

/// A running fake upstream on 127.0.0.1.
#[derive(Debug)]
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    pub async fn start(default: Behavior) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            default,
            queue: Mutex::new(VecDeque::new()),
            hits: AtomicUsize::new(0),
            traceparent: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        #[expect(
            clippy::disallowed_methods,
            reason = "a test server that lives as long as the test"
        )]
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The base URL to configure (`…/v1`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Behaviours for the next requests, in order; afterwards the default applies.
    pub fn push(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.shared.queue.lock().extend(behaviors);
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The W3C `traceparent` header of the last request, if it carried one.
    pub fn last_traceparent(&self) -> Option<String> {
        self.shared.traceparent.lock().clone()
    }
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    *shared.traceparent.lock() = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let next = shared.queue.lock().pop_front();
    let mut behavior = next.unwrap_or_else(|| shared.default.clone());
    if let Behavior::Stall(wait) = behavior {
        tokio::time::sleep(wait).await;
        behavior = shared.default.clone();
    }
    let model = body["model"].as_str().unwrap_or("fake").to_owned();
    let text = match behavior {
        Behavior::Fail {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut headers = HeaderMap::new();
            if let Some(secs) = retry_after {
                headers.insert("retry-after", HeaderValue::from(secs));
            }
            let error = json!({"error": {"message": format!("fake failure {}", status.as_u16()), "type": "server_error", "param": null, "code": null}});
            return (status, headers, axum::Json(error)).into_response();
        }
        Behavior::Answer(text) => text,
        Behavior::Stall(_) => "ok".to_owned(),
    };
    let words = text_of(&text);
    if body["stream"].as_bool() == Some(true) {
        return sse(&model, &words, &body);
    }
    axum::Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 3, "completion_tokens": words.len(), "total_tokens": 3 + words.len()}
    }))
    .into_response()
}

/// Words with their trailing space, as streamed pieces.
fn text_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn sse(model: &str, words: &[String], body: &Value) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
    };
    let mut out = String::new();
    let mut push = |value: Value| out.push_str(&format!("data: {value}\n\n"));
    push(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    for word in words {
        push(chunk(json!({"content": word}), Value::Null));
    }
    push(chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"].as_bool() == Some(true) {
        push(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": words.len(), "total_tokens": 3 + words.len()}}),
        );
    }
    out.push_str("data: [DONE]\n\n");
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        out,
    )
        .into_response()
}
