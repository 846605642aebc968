//! The Ollama provider, on Ollama's native API rather than its OpenAI-compatible one: chat
//! (`POST /api/chat`, which takes a JSON schema as `format` and reports why it stopped) and
//! the model lifecycle (`/api/tags`, `/api/pull`, `/api/delete`). Streamed answers are
//! NDJSON, one JSON object per line, not SSE.
//!
//! Long (about 740 lines) only with its tests: about 405 lines of client, 335 of tests
//! against a fake server speaking Ollama's wire format.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::InferenceError;
use crate::types::{ChatEvent, ChatRequest, ChatStream, FinishReason, ResponseFormat, Usage};

#[derive(Debug, Clone)]
pub struct OllamaClient {
    pub name: String,
    base_url: String,
    api_key: Option<String>,
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

/// One progress line of a pull: `pulling manifest`, `pulling <layer>` with byte counts per
/// layer (`digest`), `verifying sha256 digest`, `writing manifest`, `success`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OllamaPullProgress {
    pub status: String,
    pub digest: Option<String>,
    pub total: Option<u64>,
    pub completed: Option<u64>,
}

impl OllamaClient {
    /// `base_url` is the server root, like `http://localhost:11434`; `api_key`, if any, is
    /// sent as a bearer token (for servers behind an authenticating proxy).
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout)
            .build()
            .map_err(|e| InferenceError::Engine(format!("HTTP client: {e}")))?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        let name = name.to_owned();
        Ok(Self {
            name,
            base_url,
            api_key,
            timeout,
            http,
        })
    }

    fn body(request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                let mut message = json!({"role": m.role.as_str(), "content": m.content});
                // Ollama takes a message's images as plain base64 strings.
                if !m.images.is_empty() {
                    message["images"] = m.images.iter().map(|i| &*i.base64).collect();
                }
                message
            })
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
        let url = format!("{}/api/chat", self.base_url);
        let call = self
            .http
            .post(url)
            .timeout(self.timeout)
            .json(&Self::body(request));
        let lines = ndjson(self.name.clone(), self.send(call).await?).boxed();
        // Ends after the `done` line or an error; a stream that stops before `done` ends
        // with an error (the answer may be cut short).
        let state = (lines, self.name.clone(), false);
        let answer = futures::stream::unfold(state, |(mut lines, provider, done)| async move {
            if done {
                return None;
            }
            let (items, done) = match lines.next().await {
                Some(Ok(line)) => chat_events(&provider, &line),
                Some(Err(e)) => (vec![Err(e)], true),
                None => {
                    let message = format!("{provider}: the answer ended before `done`");
                    (vec![Err(InferenceError::Unavailable(message))], true)
                }
            };
            Some((futures::stream::iter(items), (lines, provider, done)))
        })
        .flatten();
        Ok(futures::stream::once(async { Ok(ChatEvent::Started) })
            .chain(answer)
            .boxed())
    }

    /// The models the server has.
    pub async fn tags(&self) -> Result<Vec<OllamaModel>, InferenceError> {
        let call = self.http.get(format!("{}/api/tags", self.base_url));
        let response = self.send(call.timeout(self.timeout)).await?;
        let tags: Value = response.json().await.map_err(|e| match e.is_decode() {
            true => self.upstream(502, format!("unreadable model list: {e}")),
            false => transport_error(&self.name, &e),
        })?;
        // Ollama sends "" for details it does not know.
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let models = tags["models"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let model = |m: &Value| OllamaModel {
            name: text(&m["name"]).unwrap_or_default(),
            size: m["size"].as_u64().unwrap_or(0),
            digest: text(&m["digest"]).unwrap_or_default(),
            parameter_size: text(&m["details"]["parameter_size"]),
            quantization_level: text(&m["details"]["quantization_level"]),
            family: text(&m["details"]["family"]),
        };
        Ok(models.iter().map(model).collect())
    }

    /// Downloads `model`, calling `progress` with each progress line. Succeeds only when the
    /// server says `success`: an `{"error": …}` line or a stream that stops short fails.
    pub async fn pull(
        &self,
        model: &str,
        mut progress: impl FnMut(OllamaPullProgress) + Send,
    ) -> Result<(), InferenceError> {
        let call = self.http.post(format!("{}/api/pull", self.base_url));
        let call = call.json(&json!({"model": model, "stream": true}));
        let mut lines = ndjson(self.name.clone(), self.send(call).await?).boxed();
        let mut succeeded = false;
        while let Some(line) = lines.next().await {
            let line = line?;
            if let Some(error) = line.get("error") {
                return Err(self.upstream(500, error_text(error)));
            }
            let step: OllamaPullProgress = serde_json::from_value(line)
                .map_err(|e| self.upstream(502, format!("unreadable pull progress: {e}")))?;
            succeeded = step.status == "success";
            progress(step);
        }
        if !succeeded {
            let message = format!("{}: the pull of `{model}` stopped short", self.name);
            return Err(InferenceError::Unavailable(message));
        }
        Ok(())
    }

    /// Embeddings of `texts` from `/api/embed`, in order, with the prompt tokens counted.
    pub async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        #[derive(Deserialize)]
        struct Embedded {
            embeddings: Vec<Vec<f32>>,
            #[serde(default)]
            prompt_eval_count: u32,
        }
        let expected = texts.len();
        let call = self.http.post(format!("{}/api/embed", self.base_url));
        let call = call
            .timeout(self.timeout)
            .json(&json!({"model": model, "input": texts}));
        let response = match self.send(call).await {
            Err(InferenceError::Upstream { status: 404, .. }) => {
                return Err(InferenceError::ModelNotFound(model.to_owned()));
            }
            other => other?,
        };
        let body: Embedded = response.json().await.map_err(|e| match e.is_decode() {
            true => self.upstream(502, format!("unreadable embeddings: {e}")),
            false => transport_error(&self.name, &e),
        })?;
        if body.embeddings.len() != expected {
            return Err(self.upstream(
                502,
                format!(
                    "asked for {expected} embeddings, got {}",
                    body.embeddings.len()
                ),
            ));
        }
        Ok((body.embeddings, body.prompt_eval_count))
    }

    /// Deletes `model` from the server.
    pub async fn delete(&self, model: &str) -> Result<(), InferenceError> {
        let call = self.http.delete(format!("{}/api/delete", self.base_url));
        let call = call.timeout(self.timeout).json(&json!({"model": model}));
        match self.send(call).await {
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
        let call = call.headers(confab_core::telemetry::otel::trace_headers());
        let call = match &self.api_key {
            Some(key) => call.bearer_auth(key),
            None => call,
        };
        let response = call
            .send()
            .await
            .map_err(|e| transport_error(&self.name, &e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let retry_after = response.headers().get(http::header::RETRY_AFTER);
        let retry_after_secs = retry_after.and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").map(error_text))
            .unwrap_or_else(|| text.chars().take(500).collect());
        let provider = self.name.clone();
        Err(InferenceError::Upstream {
            provider,
            status,
            message,
            retry_after_secs,
        })
    }

    fn upstream(&self, status: u16, message: String) -> InferenceError {
        upstream(&self.name, status, message)
    }
}

/// The events of one chat line, and whether it ends the answer. After the 200, Ollama
/// reports a failure as a line of its own: `{"error": "…"}`. Thinking models also send
/// `message.thinking`, which is not part of the answer.
fn chat_events(provider: &str, line: &Value) -> (Vec<Result<ChatEvent, InferenceError>>, bool) {
    if let Some(error) = line.get("error") {
        return (vec![Err(upstream(provider, 500, error_text(error)))], true);
    }
    let mut items = Vec::new();
    if let Some(text) = line["message"]["content"]
        .as_str()
        .filter(|t| !t.is_empty())
    {
        items.push(Ok(ChatEvent::Delta(text.to_owned())));
    }
    let done = line["done"].as_bool().unwrap_or(false);
    if done {
        let reason = match line["done_reason"].as_str() {
            Some("length") => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        let count = |name: &str| {
            line[name]
                .as_u64()
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let (prompt_tokens, completion_tokens) = (count("prompt_eval_count"), count("eval_count"));
        let total_tokens = prompt_tokens.saturating_add(completion_tokens);
        let usage = Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
        };
        items.push(Ok(ChatEvent::Finished { reason, usage }));
    }
    (items, done)
}

/// The JSON lines of an NDJSON body. Bytes are kept until their `\n` arrives, so a line (or
/// a UTF-8 character in it) cut between two reads is parsed whole; a last line without its
/// `\n` counts too. Ends after the first error.
fn ndjson(
    provider: String,
    response: reqwest::Response,
) -> impl Stream<Item = Result<Value, InferenceError>> + Send {
    let state = (provider, response.bytes_stream().boxed(), Vec::new(), false);
    futures::stream::unfold(
        state,
        |(provider, mut bytes, mut pending, mut eof)| async move {
            loop {
                let line: Vec<u8> = match pending.iter().position(|&b| b == b'\n') {
                    Some(at) => pending.drain(..=at).collect(),
                    None if eof && pending.is_empty() => return None,
                    None if eof => std::mem::take(&mut pending),
                    None => {
                        match bytes.next().await {
                            Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                            Some(Err(e)) => {
                                let error = transport_error(&provider, &e);
                                return Some((Err(error), (provider, bytes, Vec::new(), true)));
                            }
                            None => eof = true,
                        }
                        continue;
                    }
                };
                if line.trim_ascii().is_empty() {
                    continue;
                }
                let item = serde_json::from_slice(&line)
                    .map_err(|e| upstream(&provider, 502, format!("unreadable line: {e}")));
                return Some((item, (provider, bytes, pending, eof)));
            }
        },
    )
}

fn transport_error(provider: &str, e: &reqwest::Error) -> InferenceError {
    if e.is_timeout() {
        InferenceError::Timeout
    } else {
        InferenceError::Unavailable(format!("{provider}: {e}"))
    }
}

fn upstream(provider: &str, status: u16, message: String) -> InferenceError {
    let (provider, retry_after_secs) = (provider.to_owned(), None);
    InferenceError::Upstream {
        provider,
        status,
        message,
        retry_after_secs,
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
    let shortest = x.to_string().parse::<f64>().ok();
    shortest
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "the fake servers run on spawned tasks"
)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use tokio::sync::Mutex;

    use super::*;
    use crate::types::{ChatMessage, Role, SamplingParams};

    /// The requests the fake received: method and path, headers, JSON body.
    type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

    /// A fake Ollama answering every request with `status` and `body`, written in pieces of
    /// `piece` bytes a little apart, so lines (and UTF-8 characters) straddle reads.
    async fn fake(status: u16, body: &str, piece: usize) -> (String, Seen) {
        let seen = Seen::default();
        let pieces: Vec<Vec<u8>> = body.as_bytes().chunks(piece).map(<[u8]>::to_vec).collect();
        let recorder = seen.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (seen, pieces) = (recorder.clone(), pieces.clone());
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock()
                    .await
                    .push((format!("{method} {}", uri.path()), headers, json));
                let chunks = futures::stream::iter(pieces).then(|p| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Infallible>(p)
                });
                let kind = match status {
                    200 => "application/x-ndjson",
                    _ => "application/json",
                };
                let response = axum::response::Response::builder().header("content-type", kind);
                let status = StatusCode::from_u16(status).unwrap();
                response
                    .status(status)
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

    fn ask(format: Option<ResponseFormat>) -> ChatRequest {
        ChatRequest {
            model: "llama3.2".into(),
            messages: vec![
                ChatMessage::new(Role::System, "Answer in JSON."),
                ChatMessage::new(Role::User, "Describe a cat."),
            ],
            params: SamplingParams::default(),
            response_format: format,
            stream: true,
        }
    }

    type Events = Vec<Result<ChatEvent, InferenceError>>;

    /// Everything the stream yields.
    async fn answer(base_url: &str, request: &ChatRequest) -> Result<Events, InferenceError> {
        Ok(client(base_url).stream(request).await?.collect().await)
    }

    /// The status and message of an upstream error.
    fn upstream(error: &InferenceError) -> (u16, &str) {
        match error {
            InferenceError::Upstream {
                status, message, ..
            } => (*status, message),
            other => panic!("not an upstream error: {other:?}"),
        }
    }

    /// How [`ANSWER`] ends.
    fn finished() -> ChatEvent {
        let usage = Usage::new(26, 3);
        ChatEvent::Finished {
            reason: FinishReason::Length,
            usage,
        }
    }

    /// An answer as Ollama streams it: a line per token, then the `done` line with counts.
    const ANSWER: &str = r#"{"model":"llama3.2","created_at":"2024-12-06T00:46:58.265747Z","message":{"role":"assistant","content":"{\"name\": "},"done":false}
{"model":"llama3.2","created_at":"2024-12-06T00:46:58.275747Z","message":{"role":"assistant","content":"\"Félix 🐈\""},"done":false}
{"model":"llama3.2","created_at":"2024-12-06T00:46:58.285747Z","message":{"role":"assistant","content":"}"},"done":false}
{"model":"llama3.2","created_at":"2024-12-06T00:46:58.365747Z","message":{"role":"assistant","content":""},"done_reason":"length","done":true,"total_duration":2254970291,"load_duration":574751416,"prompt_eval_count":26,"prompt_eval_duration":1502000000,"eval_count":3,"eval_duration":175000000}
"#;

    #[tokio::test]
    async fn chat_streams_ndjson_cut_mid_line() {
        // 5-byte pieces cut lines, JSON and the emoji apart.
        let (base, seen) = fake(200, ANSWER, 5).await;
        let mut request = ask(Some(ResponseFormat::JsonObject));
        request.params = SamplingParams {
            temperature: 0.2,
            top_p: 0.9,
            max_tokens: Some(64),
            stop: vec!["\n\n".into()],
            seed: Some(42),
        };
        let key = Some("secret".into());
        let ollama = OllamaClient::new("ollama", &base, key, Duration::from_secs(10)).unwrap();
        let events = ollama.stream(&request).await.unwrap();
        let events: Vec<ChatEvent> = events.map(Result::unwrap).collect().await;
        let expected = [
            ChatEvent::Started,
            ChatEvent::Delta("{\"name\": ".into()),
            ChatEvent::Delta("\"Félix 🐈\"".into()),
            ChatEvent::Delta("}".into()),
            finished(),
        ];
        assert_eq!(events, expected);

        let (call, headers, body) = &seen.lock().await[0];
        assert_eq!(call, "POST /api/chat");
        assert_eq!(headers["authorization"], "Bearer secret");
        let expected = json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {"role": "user", "content": "Describe a cat."},
            ],
            "stream": true,
            "options": {
                "temperature": 0.2, "top_p": 0.9, "num_predict": 64, "stop": ["\n\n"], "seed": 42,
            },
            "format": "json",
        });
        assert_eq!(*body, expected);
    }

    #[test]
    fn a_json_schema_is_sent_as_the_format() {
        let schema = json!({
            "type": "object",
            "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
            "required": ["age", "available"],
        });
        let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}});
        let body = OllamaClient::body(&ask(Some(serde_json::from_value(format).unwrap())));
        assert_eq!(body["format"], schema);
        // Unset limits are left to the model's defaults.
        assert_eq!(body["options"], json!({"temperature": 1.0, "top_p": 1.0}));
        let body = OllamaClient::body(&ask(Some(ResponseFormat::Text)));
        assert!(body.get("format").is_none());
    }

    #[tokio::test]
    async fn errors_before_and_during_the_answer() {
        let (base, _) = fake(400, r#"{"error":"invalid options: num_predict"}"#, 1024).await;
        let error = answer(&base, &ask(None)).await.unwrap_err();
        assert_eq!(upstream(&error), (400, "invalid options: num_predict"));
        let (base, _) = fake(404, r#"{"error":"model 'llama3.2' not found"}"#, 1024).await;
        let error = answer(&base, &ask(None)).await.unwrap_err();
        assert_eq!(upstream(&error), (404, "model 'llama3.2' not found"));

        // After the 200, Ollama reports a failure as a line of its own.
        let first = ANSWER.lines().next().unwrap();
        let failed = format!("{first}\n{{\"error\":\"model runner has unexpectedly stopped\"}}\n");
        let (base, _) = fake(200, &failed, 7).await;
        let mut events = answer(&base, &ask(None)).await.unwrap();
        let error = events.pop().unwrap().unwrap_err();
        let message = "model runner has unexpectedly stopped";
        assert_eq!(upstream(&error), (500, message));
        assert!(matches!(
            &events[..],
            [Ok(ChatEvent::Started), Ok(ChatEvent::Delta(_))]
        ));

        // A stream that stops before `done` ends with an error, never a Finished.
        let (base, _) = fake(200, &format!("{first}\n"), 7).await;
        let events = answer(&base, &ask(None)).await.unwrap();
        let Some(Err(InferenceError::Unavailable(message))) = events.last() else {
            panic!("{events:?}");
        };
        assert!(message.contains("before `done`"), "{message}");

        // A last line without its newline still counts.
        let (base, _) = fake(200, ANSWER.trim_end(), 7).await;
        let events = answer(&base, &ask(None)).await.unwrap();
        assert_eq!(events.last().unwrap().as_ref().unwrap(), &finished());
    }

    #[tokio::test]
    async fn tags_lists_the_models_with_their_details() {
        let body = r#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2024-12-07T09:32:18.757212583-08:00","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}},
{"name":"custom:dev","model":"custom:dev","size":10,"digest":"abc","details":{"format":"gguf","family":"","families":null,"parameter_size":"","quantization_level":""}}]}"#;
        let (base, seen) = fake(200, body, 50).await;
        let models = client(&base).tags().await.unwrap();
        let llama = OllamaModel {
            name: "llama3.2:latest".into(),
            size: 2_019_393_189,
            digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72".into(),
            parameter_size: Some("3.2B".into()),
            quantization_level: Some("Q4_K_M".into()),
            family: Some("llama".into()),
        };
        assert_eq!(models[0], llama);
        // Unknown details are None rather than "".
        let custom = OllamaModel {
            name: "custom:dev".into(),
            size: 10,
            digest: "abc".into(),
            parameter_size: None,
            quantization_level: None,
            family: None,
        };
        assert_eq!(models[1], custom);
        assert_eq!(seen.lock().await[0].0, "GET /api/tags");
    }

    /// A pull as Ollama streams it.
    const PULL: &str = r#"{"status":"pulling manifest"}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ff","total":2019377376}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ff","total":2019377376,"completed":241970}
{"status":"verifying sha256 digest"}
{"status":"writing manifest"}
{"status":"success"}
"#;

    #[tokio::test]
    async fn pull_reports_progress_until_success() {
        let (base, seen) = fake(200, PULL, 9).await;
        let (ollama, mut steps) = (client(&base), Vec::new());
        ollama.pull("llama3.2", |p| steps.push(p)).await.unwrap();
        let statuses: Vec<&str> = steps.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(statuses.len(), 6);
        assert_eq!((statuses[0], statuses[5]), ("pulling manifest", "success"));
        let layer = OllamaPullProgress {
            status: "pulling dde5aa3fc5ff".into(),
            digest: Some("sha256:dde5aa3fc5ff".into()),
            total: Some(2_019_377_376),
            completed: Some(241_970),
        };
        assert_eq!(steps[2], layer);
        let (call, _, body) = &seen.lock().await[0];
        assert_eq!(call, "POST /api/pull");
        assert_eq!(*body, json!({"model": "llama3.2", "stream": true}));

        // An error line fails the pull, after the progress before it.
        let failed = "{\"status\":\"pulling manifest\"}\n{\"error\":\"pull model manifest: file does not exist\"}\n";
        let (base, _) = fake(200, failed, 9).await;
        let (ollama, mut steps) = (client(&base), Vec::new());
        let error = ollama.pull("nope", |p| steps.push(p)).await.unwrap_err();
        let message = "pull model manifest: file does not exist";
        assert_eq!(upstream(&error), (500, message));
        assert_eq!(steps.len(), 1);

        // So does a stream that stops short of `success`.
        let short = PULL.split("{\"status\":\"verifying").next().unwrap();
        let (base, _) = fake(200, short, 9).await;
        let error = client(&base).pull("llama3.2", |_| {}).await.unwrap_err();
        assert!(matches!(error, InferenceError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn embed_returns_vectors_in_order_with_the_tokens() {
        let body = r#"{"model":"all-minilm","embeddings":[[0.1,-0.2,0.3],[0.4,0.5,-0.6]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
        let (base, seen) = fake(200, body, 7).await;
        let (vectors, tokens) = client(&base)
            .embed("all-minilm", vec!["first".into(), "second".into()])
            .await
            .unwrap();
        assert_eq!(vectors, vec![vec![0.1, -0.2, 0.3], vec![0.4, 0.5, -0.6]]);
        assert_eq!(tokens, 8);
        let (call, _, sent) = &seen.lock().await[0];
        assert_eq!(
            (call.as_str(), sent),
            (
                "POST /api/embed",
                &json!({"model": "all-minilm", "input": ["first", "second"]})
            )
        );

        let (base, _) = fake(200, r#"{"embeddings":[[1.0]]}"#, 16).await;
        let error = client(&base)
            .embed("m", vec!["a".into(), "b".into()])
            .await
            .unwrap_err();
        assert_eq!(upstream(&error).0, 502);
        let (base, _) = fake(
            404,
            r#"{"error":"model \"nope\" not found, try pulling it first"}"#,
            16,
        )
        .await;
        let error = client(&base)
            .embed("nope", vec!["a".into()])
            .await
            .unwrap_err();
        assert!(
            matches!(&error, InferenceError::ModelNotFound(m) if m == "nope"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn delete_maps_a_missing_model_to_model_not_found() {
        let (base, seen) = fake(200, "", 16).await;
        client(&base).delete("llama3.2:latest").await.unwrap();
        let (call, _, body) = &seen.lock().await[0];
        assert_eq!(
            (call.as_str(), body),
            ("DELETE /api/delete", &json!({"model": "llama3.2:latest"}))
        );

        let (base, _) = fake(404, r#"{"error":"model 'gone' not found"}"#, 16).await;
        let error = client(&base).delete("gone").await.unwrap_err();
        assert!(
            matches!(&error, InferenceError::ModelNotFound(m) if m == "gone"),
            "{error:?}"
        );
        let (base, _) = fake(500, r#"{"error":"disk on fire"}"#, 16).await;
        let error = client(&base).delete("x").await.unwrap_err();
        assert_eq!(upstream(&error), (500, "disk on fire"));
    }
}
