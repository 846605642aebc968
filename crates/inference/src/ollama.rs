//! The Ollama provider, on Ollama's native API rather than its OpenAI-compatible one: chat
//! (`POST /api/chat`, which takes a JSON schema as `format` and reports why it stopped) and
//! the model lifecycle (`/api/tags`, `/api/pull`, `/api/delete`). Streamed answers are
//! NDJSON, one JSON object per line, not SSE.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::InferenceError;
use crate::types::{ChatEvent, ChatRequest, ChatStream, FinishReason, ResponseFormat, Usage};

#[derive(Debug, Clone)]
pub struct OllamaClient {
    pub name: String,
    base_url: String,
    /// Requests that must finish within `timeout` say so themselves: a pull may take hours,
    /// so the client only bounds connecting and the wait for each read.
    timeout: Duration,
    http: reqwest::Client,
}

/// A model the server has (`GET /api/tags`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OllamaModel {
    /// `name:tag`, like `llama3.2:latest`.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    pub digest: String,
    /// Like `3.2B`.
    pub parameter_size: Option<String>,
    /// Like `Q4_K_M`.
    pub quantization_level: Option<String>,
    pub family: Option<String>,
}

/// One progress line of a pull: `pulling manifest`, `downloading …` with byte counts per
/// layer (`digest`), `verifying sha256 digest`, `writing manifest`, `success`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OllamaPullProgress {
    pub status: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
}

impl OllamaClient {
    /// `base_url` is the server root, like `http://localhost:11434`; `api_key` is sent as a
    /// bearer token, for servers behind an authenticating proxy.
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout);
        if let Some(key) = api_key {
            let mut value = http::HeaderValue::try_from(format!("Bearer {key}"))
                .map_err(|_| InferenceError::Engine(format!("{name}: unusable API key")))?;
            value.set_sensitive(true);
            builder = builder.default_headers(http::HeaderMap::from_iter([(
                http::header::AUTHORIZATION,
                value,
            )]));
        }
        let http = builder
            .build()
            .map_err(|e| InferenceError::Engine(format!("HTTP client: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
            http,
        })
    }

    fn body(request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let params = &request.params;
        let mut options = json!({
            "temperature": decimal(params.temperature),
            "top_p": decimal(params.top_p),
        });
        if let Some(max) = params.max_tokens {
            options["num_predict"] = json!(max);
        }
        if !params.stop.is_empty() {
            options["stop"] = json!(params.stop);
        }
        if let Some(seed) = params.seed {
            options["seed"] = json!(seed);
        }
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "stream": true,
            "options": options,
        });
        match &request.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonObject) => body["format"] = json!("json"),
            Some(ResponseFormat::JsonSchema { json_schema }) => {
                body["format"] = json_schema.schema.clone();
            }
        }
        body
    }

    pub async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, InferenceError> {
        let response = self
            .send(
                self.http
                    .post(format!("{}/api/chat", self.base_url))
                    .timeout(self.timeout)
                    .json(&Self::body(request)),
            )
            .await?;
        let state = ChatState {
            provider: self.name.clone(),
            bytes: response.bytes_stream().boxed(),
            lines: LineBuffer::default(),
            done: false,
        };
        let answer = futures::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            let items = st.next_items().await;
            Some((futures::stream::iter(items), st))
        })
        .flatten();
        Ok(futures::stream::once(async { Ok(ChatEvent::Started) })
            .chain(answer)
            .boxed())
    }

    /// The models the server has.
    pub async fn tags(&self) -> Result<Vec<OllamaModel>, InferenceError> {
        let response = self
            .send(
                self.http
                    .get(format!("{}/api/tags", self.base_url))
                    .timeout(self.timeout),
            )
            .await?;
        let tags: WireTags = response.json().await.map_err(|e| {
            if e.is_decode() {
                self.upstream(502, format!("unreadable model list: {e}"))
            } else {
                self.transport_error(&e)
            }
        })?;
        // Ollama sends "" for details it does not know.
        let known = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(tags
            .models
            .into_iter()
            .map(|m| OllamaModel {
                name: m.name,
                size: m.size,
                digest: m.digest,
                parameter_size: known(m.details.parameter_size),
                quantization_level: known(m.details.quantization_level),
                family: known(m.details.family),
            })
            .collect())
    }

    /// Downloads `model`, calling `progress` with each progress line. Succeeds only when the
    /// server says `success`: an `{"error": …}` line or a stream that stops short fails.
    pub async fn pull(
        &self,
        model: &str,
        mut progress: impl FnMut(OllamaPullProgress) + Send,
    ) -> Result<(), InferenceError> {
        let response = self
            .send(
                self.http
                    .post(format!("{}/api/pull", self.base_url))
                    .json(&json!({"model": model, "stream": true})),
            )
            .await?;
        let mut bytes = response.bytes_stream();
        let mut lines = LineBuffer::default();
        let mut succeeded = false;
        loop {
            let chunk = bytes.next().await;
            let eof = chunk.is_none();
            match chunk {
                Some(Ok(chunk)) => lines.push(&chunk),
                Some(Err(e)) => return Err(self.transport_error(&e)),
                None => {}
            }
            while let Some(line) = lines.next_line(eof) {
                let value: Value = serde_json::from_slice(&line)
                    .map_err(|e| self.upstream(502, format!("unreadable pull progress: {e}")))?;
                if let Some(error) = value.get("error") {
                    return Err(self.upstream(500, error_text(error)));
                }
                let step: OllamaPullProgress = serde_json::from_value(value)
                    .map_err(|e| self.upstream(502, format!("unreadable pull progress: {e}")))?;
                succeeded = step.status == "success";
                progress(step);
            }
            if eof {
                break;
            }
        }
        if succeeded {
            Ok(())
        } else {
            Err(InferenceError::Unavailable(format!(
                "{}: the pull of `{model}` ended before it succeeded",
                self.name
            )))
        }
    }

    /// Deletes `model` from the server.
    pub async fn delete(&self, model: &str) -> Result<(), InferenceError> {
        let result = self
            .send(
                self.http
                    .delete(format!("{}/api/delete", self.base_url))
                    .timeout(self.timeout)
                    .json(&json!({"model": model})),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(InferenceError::Upstream { status: 404, .. }) => {
                Err(InferenceError::ModelNotFound(model.to_owned()))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `call`; a non-2xx answer becomes [`InferenceError::Upstream`] with the text of
    /// Ollama's `{"error": "…"}` body (a 404 for an unknown model keeps its status).
    async fn send(
        &self,
        call: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, InferenceError> {
        let response = call.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after_secs = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").map(error_text))
            .unwrap_or_else(|| text.chars().take(500).collect());
        Err(InferenceError::Upstream {
            provider: self.name.clone(),
            status: status.as_u16(),
            message,
            retry_after_secs,
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> InferenceError {
        transport_error(&self.name, e)
    }

    fn upstream(&self, status: u16, message: String) -> InferenceError {
        upstream(&self.name, status, message)
    }
}

fn transport_error(provider: &str, e: &reqwest::Error) -> InferenceError {
    if e.is_timeout() {
        InferenceError::Timeout
    } else {
        InferenceError::Unavailable(format!("{provider}: {e}"))
    }
}

fn upstream(provider: &str, status: u16, message: String) -> InferenceError {
    InferenceError::Upstream {
        provider: provider.to_owned(),
        status,
        message,
        retry_after_secs: None,
    }
}

/// `error` is a string in Ollama's bodies; anything else is shown as JSON.
fn error_text(error: &Value) -> String {
    error
        .as_str()
        .map_or_else(|| error.to_string(), str::to_owned)
}

/// An `f32` as the shortest decimal that reads back as it (`0.7`, not `0.699999988…`).
fn decimal(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Splits a byte stream into lines. Bytes are kept until their `\n` arrives, so a line (or
/// a UTF-8 character in it) cut between two reads is parsed whole.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next non-blank line; at `eof`, an unterminated last line too.
    fn next_line(&mut self, eof: bool) -> Option<Vec<u8>> {
        loop {
            let line = match self.pending.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                    line.pop();
                    line
                }
                None if eof && !self.pending.is_empty() => std::mem::take(&mut self.pending),
                None => return None,
            };
            if !line.trim_ascii().is_empty() {
                return Some(line);
            }
        }
    }
}

#[derive(Deserialize)]
struct ChatLine {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    /// Errors after the 200 arrive as a line of their own.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct LineMessage {
    /// Thinking models also send `thinking`, which is not part of the answer.
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct WireTags {
    #[serde(default)]
    models: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: WireDetails,
}

#[derive(Deserialize, Default)]
struct WireDetails {
    parameter_size: Option<String>,
    quantization_level: Option<String>,
    family: Option<String>,
}

type ByteStream = futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>;

/// A chat answer being read.
struct ChatState {
    provider: String,
    bytes: ByteStream,
    lines: LineBuffer,
    done: bool,
}

impl ChatState {
    /// The events of the next line (reading as much as it takes), or the error that ends
    /// the stream. The stream ends after the `done` line or an error.
    async fn next_items(&mut self) -> Vec<Result<ChatEvent, InferenceError>> {
        let mut eof = false;
        loop {
            if let Some(line) = self.lines.next_line(eof) {
                return self.handle(&line);
            }
            if eof {
                self.done = true;
                return vec![Err(InferenceError::Unavailable(format!(
                    "{}: the answer ended before `done`",
                    self.provider
                )))];
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => self.lines.push(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return vec![Err(transport_error(&self.provider, &e))];
                }
                None => eof = true,
            }
        }
    }

    fn handle(&mut self, line: &[u8]) -> Vec<Result<ChatEvent, InferenceError>> {
        let parsed = match serde_json::from_slice::<ChatLine>(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.done = true;
                let text: String = String::from_utf8_lossy(line).chars().take(200).collect();
                let message = format!("unreadable line ({e}): {text}");
                return vec![Err(upstream(&self.provider, 502, message))];
            }
        };
        if let Some(error) = parsed.error {
            self.done = true;
            return vec![Err(upstream(&self.provider, 500, error_text(&error)))];
        }
        let mut items = Vec::new();
        if let Some(text) = parsed.message.map(|m| m.content).filter(|t| !t.is_empty()) {
            items.push(Ok(ChatEvent::Delta(text)));
        }
        if parsed.done {
            self.done = true;
            items.push(Ok(ChatEvent::Finished {
                reason: match parsed.done_reason.as_deref() {
                    Some("length") => FinishReason::Length,
                    _ => FinishReason::Stop,
                },
                usage: Usage::new(
                    parsed.prompt_eval_count.unwrap_or(0),
                    parsed.eval_count.unwrap_or(0),
                ),
            }));
        }
        items
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the fake servers run on spawned tasks"
)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::Response;
    use tokio::sync::Mutex;

    use super::*;
    use crate::types::{ChatMessage, JsonSchemaFormat, Role, SamplingParams};

    /// A request the fake received.
    struct Seen {
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Value,
    }

    /// A fake Ollama answering every request with `status` and `body`, written in pieces of
    /// `piece` bytes a little apart, so lines (and UTF-8 characters) straddle reads.
    async fn fake(status: u16, body: &str, piece: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pieces: Vec<Vec<u8>> = body.as_bytes().chunks(piece).map(<[u8]>::to_vec).collect();
        let recorder = seen.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (seen, pieces) = (recorder.clone(), pieces.clone());
            async move {
                seen.lock().await.push(Seen {
                    method,
                    path: uri.path().to_owned(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let chunks = futures::stream::iter(pieces).then(|p| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Infallible>(p)
                });
                let content_type = if status == 200 {
                    "application/x-ndjson"
                } else {
                    "application/json"
                };
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", content_type)
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{address}/"), seen)
    }

    fn client(base_url: &str) -> OllamaClient {
        OllamaClient::new("ollama", base_url, None, Duration::from_secs(10)).unwrap()
    }

    fn request(params: SamplingParams, format: Option<ResponseFormat>) -> ChatRequest {
        ChatRequest {
            model: "llama3.2".into(),
            messages: vec![
                ChatMessage::new(Role::System, "Answer in JSON."),
                ChatMessage::new(Role::User, "Describe a cat."),
            ],
            params,
            response_format: format,
        }
    }

    /// Chat lines as Ollama writes them.
    fn ndjson(lines: &[Value]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn token(text: &str) -> Value {
        json!({
            "model": "llama3.2",
            "created_at": "2024-12-06T00:46:58.265747Z",
            "message": {"role": "assistant", "content": text},
            "done": false,
        })
    }

    fn last(reason: &str) -> Value {
        json!({
            "model": "llama3.2",
            "created_at": "2024-12-06T00:46:58.365747Z",
            "message": {"role": "assistant", "content": ""},
            "done_reason": reason,
            "done": true,
            "total_duration": 2_254_970_291_u64,
            "load_duration": 574_751_416,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 1_502_000_000,
            "eval_count": 3,
            "eval_duration": 175_000_000,
        })
    }

    #[tokio::test]
    async fn chat_streams_ndjson_cut_mid_line() {
        let body = ndjson(&[
            token("{\"name\": "),
            token("\"Félix 🐈\""),
            token("}"),
            last("length"),
        ]);
        let (base, seen) = fake(200, &body, 5).await;
        let params = SamplingParams {
            temperature: 0.2,
            top_p: 0.9,
            max_tokens: Some(64),
            stop: vec!["\n\n".into()],
            seed: Some(42),
        };
        let ollama = OllamaClient::new(
            "ollama",
            &base,
            Some("secret".into()),
            Duration::from_secs(10),
        )
        .unwrap();
        let events: Vec<ChatEvent> = ollama
            .stream(&request(params, Some(ResponseFormat::JsonObject)))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(
            events,
            vec![
                ChatEvent::Started,
                ChatEvent::Delta("{\"name\": ".into()),
                ChatEvent::Delta("\"Félix 🐈\"".into()),
                ChatEvent::Delta("}".into()),
                ChatEvent::Finished {
                    reason: FinishReason::Length,
                    usage: Usage::new(26, 3)
                },
            ]
        );
        let seen = seen.lock().await;
        assert_eq!(
            (&seen[0].method, seen[0].path.as_str()),
            (&Method::POST, "/api/chat")
        );
        assert_eq!(seen[0].headers["authorization"], "Bearer secret");
        assert_eq!(
            seen[0].body,
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "Answer in JSON."},
                    {"role": "user", "content": "Describe a cat."},
                ],
                "stream": true,
                "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 64, "stop": ["\n\n"], "seed": 42},
                "format": "json",
            })
        );
    }

    #[test]
    fn a_json_schema_is_sent_as_the_format() {
        let schema = json!({
            "type": "object",
            "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
            "required": ["age", "available"],
        });
        let format = ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "x".into(),
                schema: schema.clone(),
                strict: Some(true),
                description: None,
            },
        };
        let body = OllamaClient::body(&request(SamplingParams::default(), Some(format)));
        assert_eq!(body["format"], schema);
        // Unset limits are left to the model's defaults.
        assert_eq!(body["options"], json!({"temperature": 1.0, "top_p": 1.0}));
        let body = OllamaClient::body(&request(
            SamplingParams::default(),
            Some(ResponseFormat::Text),
        ));
        assert!(body.get("format").is_none());
    }

    #[tokio::test]
    async fn errors_before_and_during_the_answer() {
        let ask = request(SamplingParams::default(), None);
        let (base, _) = fake(
            400,
            r#"{"error":"invalid options: num_predict must be an integer"}"#,
            1024,
        )
        .await;
        let error = client(&base).stream(&ask).await.err().unwrap();
        assert!(
            matches!(&error, InferenceError::Upstream { status: 400, message, .. } if message.starts_with("invalid options")),
            "{error:?}"
        );
        let (base, _) = fake(404, r#"{"error":"model 'llama3.2' not found"}"#, 1024).await;
        let error = client(&base).stream(&ask).await.err().unwrap();
        assert!(
            matches!(&error, InferenceError::Upstream { status: 404, message, .. } if message.contains("not found")),
            "{error:?}"
        );

        // After the 200, Ollama reports a failure as a line of its own.
        let body = ndjson(&[
            token("Hel"),
            json!({"error": "an error was encountered while running the model: unexpected EOF"}),
        ]);
        let (base, _) = fake(200, &body, 7).await;
        let events: Vec<_> = client(&base).stream(&ask).await.unwrap().collect().await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(&events[1], Ok(ChatEvent::Delta(t)) if t == "Hel"));
        assert!(
            matches!(&events[2], Err(InferenceError::Upstream { status: 500, message, .. }) if message.contains("unexpected EOF"))
        );

        // A stream that stops before `done` ends with an error, never a Finished.
        let (base, _) = fake(200, &ndjson(&[token("Hel")]), 7).await;
        let events: Vec<_> = client(&base).stream(&ask).await.unwrap().collect().await;
        assert!(
            matches!(events.last(), Some(Err(InferenceError::Unavailable(m))) if m.contains("done")),
            "{events:?}"
        );

        // A last line without its newline still counts.
        let body = ndjson(&[token("Hi"), last("stop")]);
        let (base, _) = fake(200, body.trim_end(), 7).await;
        let events: Vec<_> = client(&base)
            .stream(&ask)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(
            events.last(),
            Some(&ChatEvent::Finished {
                reason: FinishReason::Stop,
                usage: Usage::new(26, 3)
            })
        );
    }

    #[tokio::test]
    async fn tags_lists_the_models_with_their_details() {
        let body = json!({"models": [
            {
                "name": "llama3.2:latest",
                "model": "llama3.2:latest",
                "modified_at": "2024-12-07T09:32:18.757212583-08:00",
                "size": 2_019_393_189_u64,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
            },
            {"name": "custom:dev", "size": 10, "digest": "abc", "details": {"format": "gguf", "family": "", "families": null, "parameter_size": "", "quantization_level": ""}}
        ]});
        let (base, seen) = fake(200, &body.to_string(), 50).await;
        let models = client(&base).tags().await.unwrap();
        assert_eq!(
            models,
            vec![
                OllamaModel {
                    name: "llama3.2:latest".into(),
                    size: 2_019_393_189,
                    digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
                        .into(),
                    parameter_size: Some("3.2B".into()),
                    quantization_level: Some("Q4_K_M".into()),
                    family: Some("llama".into()),
                },
                OllamaModel {
                    name: "custom:dev".into(),
                    size: 10,
                    digest: "abc".into(),
                    parameter_size: None,
                    quantization_level: None,
                    family: None,
                },
            ]
        );
        let seen = seen.lock().await;
        assert_eq!(
            (&seen[0].method, seen[0].path.as_str()),
            (&Method::GET, "/api/tags")
        );
    }

    #[tokio::test]
    async fn pull_reports_progress_until_success() {
        let lines = [
            json!({"status": "pulling manifest"}),
            json!({"status": "pulling dde5aa3fc5ff", "digest": "sha256:dde5aa3fc5ff", "total": 2_019_377_376_u64}),
            json!({"status": "pulling dde5aa3fc5ff", "digest": "sha256:dde5aa3fc5ff", "total": 2_019_377_376_u64, "completed": 241_970}),
            json!({"status": "verifying sha256 digest"}),
            json!({"status": "writing manifest"}),
            json!({"status": "success"}),
        ];
        let (base, seen) = fake(200, &ndjson(&lines), 9).await;
        let mut steps = Vec::new();
        client(&base)
            .pull("llama3.2", |p| steps.push(p))
            .await
            .unwrap();
        assert_eq!(steps.len(), 6);
        assert_eq!(
            steps[2],
            OllamaPullProgress {
                status: "pulling dde5aa3fc5ff".into(),
                digest: Some("sha256:dde5aa3fc5ff".into()),
                total: Some(2_019_377_376),
                completed: Some(241_970),
            }
        );
        assert_eq!(steps[5].status, "success");
        {
            let seen = seen.lock().await;
            assert_eq!(
                (&seen[0].method, seen[0].path.as_str()),
                (&Method::POST, "/api/pull")
            );
            assert_eq!(seen[0].body, json!({"model": "llama3.2", "stream": true}));
        }

        // An error line fails the pull, after the progress before it.
        let body = ndjson(&[
            lines[0].clone(),
            json!({"error": "pull model manifest: file does not exist"}),
        ]);
        let (base, _) = fake(200, &body, 9).await;
        let mut steps = Vec::new();
        let error = client(&base)
            .pull("nope", |p| steps.push(p))
            .await
            .err()
            .unwrap();
        assert_eq!(steps.len(), 1);
        assert!(
            matches!(&error, InferenceError::Upstream { message, .. } if message.contains("file does not exist")),
            "{error:?}"
        );

        // So does a stream that stops short of `success`.
        let (base, _) = fake(200, &ndjson(&lines[..3]), 9).await;
        let error = client(&base).pull("llama3.2", |_| {}).await.err().unwrap();
        assert!(matches!(error, InferenceError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn delete_maps_a_missing_model_to_model_not_found() {
        let (base, seen) = fake(200, "", 16).await;
        client(&base).delete("llama3.2:latest").await.unwrap();
        {
            let seen = seen.lock().await;
            assert_eq!(
                (&seen[0].method, seen[0].path.as_str()),
                (&Method::DELETE, "/api/delete")
            );
            assert_eq!(seen[0].body, json!({"model": "llama3.2:latest"}));
        }
        let (base, _) = fake(404, r#"{"error":"model 'gone' not found"}"#, 16).await;
        let error = client(&base).delete("gone").await.err().unwrap();
        assert!(
            matches!(&error, InferenceError::ModelNotFound(m) if m == "gone"),
            "{error:?}"
        );
        let (base, _) = fake(500, r#"{"error":"disk on fire"}"#, 16).await;
        let error = client(&base).delete("x").await.err().unwrap();
        assert!(
            matches!(&error, InferenceError::Upstream { status: 500, message, .. } if message == "disk on fire"),
            "{error:?}"
        );
    }
}
