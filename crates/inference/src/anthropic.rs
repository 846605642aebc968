//! The Anthropic Messages API provider (`POST {base}/v1/messages`). Requests are translated
//! from the OpenAI shape Confab speaks (system messages lifted to the top-level `system`,
//! roles merged so they alternate, `max_tokens` always set) and always streamed; the SSE
//! events (`message_start` … `message_stop`) are translated back into [`ChatEvent`]s.
//!
//! Long (about 720 lines) only with its tests: about 380 lines of client, 340 of tests
//! against a fake server speaking Anthropic's wire format.

use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::error::InferenceError;
use crate::types::{
    ChatEvent, ChatRequest, ChatStream, FinishReason, ImageInput, ResponseFormat, Role, Usage,
};

/// The API version every request names; the event shapes below are this version's.
const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the caller set none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug, Clone)]
pub struct AnthropicClient {
    pub name: String,
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl AnthropicClient {
    /// `base_url` is the API root, like `https://api.anthropic.com` (a trailing `/v1` is
    /// accepted too, as OpenAI-style configurations tend to carry one).
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| InferenceError::Engine(format!("HTTP client: {e}")))?;
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        Ok(Self {
            name: name.to_owned(),
            base_url: base.to_owned(),
            api_key,
            http,
        })
    }

    pub async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, InferenceError> {
        if let Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) =
            request.response_format
        {
            return Err(InferenceError::Unsupported(format!(
                "`{}` (Anthropic) has no JSON output mode; remove response_format and ask for \
                 JSON in the prompt, or use another model",
                self.name
            )));
        }
        if !request
            .messages
            .iter()
            .any(|m| m.role != Role::System && !m.content.trim().is_empty())
        {
            return Err(InferenceError::invalid(
                "messages",
                "Anthropic models need at least one non-empty user or assistant message",
            ));
        }
        let mut call = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .headers(confab_core::telemetry::otel::trace_headers())
            .header("anthropic-version", API_VERSION)
            .json(&to_anthropic_body(request));
        if let Some(key) = &self.api_key {
            call = call.header("x-api-key", key.as_str());
        }
        let response = call
            .send()
            .await
            .map_err(|e| transport_error(&self.name, &e))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = response.headers().get(http::header::RETRY_AFTER);
            let retry_after_secs = retry_after.and_then(|v| v.to_str().ok()?.trim().parse().ok());
            let text = response.text().await.unwrap_or_default();
            // `{"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}`
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(500).collect());
            let provider = self.name.clone();
            return Err(InferenceError::Upstream {
                provider,
                status,
                message,
                retry_after_secs,
            });
        }
        let events = response.bytes_stream().eventsource();
        Ok(futures::stream::once(async { Ok(ChatEvent::Started) })
            .chain(translate(self.name.clone(), events))
            .boxed())
    }
}

/// The Messages API body for `request`. Anthropic has no `system` role, wants roles to
/// alternate and rejects empty text, so: system messages are joined into the top-level
/// `system`; tool results become user text; consecutive messages of one role are merged.
/// `seed` has no Anthropic counterpart and is left out.
pub fn to_anthropic_body(request: &ChatRequest) -> Value {
    let mut system: Vec<&str> = Vec::new();
    // Each turn: its role, its text and the images it shows.
    let mut turns: Vec<(&'static str, String, Vec<&ImageInput>)> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                if !message.content.trim().is_empty() {
                    system.push(&message.content);
                }
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        if message.content.trim().is_empty() && message.images.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, text, images)) if *last == role => {
                if !message.content.trim().is_empty() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&message.content);
                }
                images.extend(message.images.iter());
            }
            _ => turns.push((
                role,
                if message.content.trim().is_empty() {
                    String::new()
                } else {
                    message.content.clone()
                },
                message.images.iter().collect(),
            )),
        }
    }
    // A final assistant turn is a prefill the model continues; Anthropic refuses one that
    // ends in whitespace.
    if let Some((role, text, _)) = turns.last_mut()
        && *role == "assistant"
    {
        text.truncate(text.trim_end().len());
    }
    // Images go as base64 blocks before the text, as Anthropic advises.
    let messages: Vec<Value> = turns
        .iter()
        .map(|(role, text, images)| {
            if images.is_empty() {
                return json!({"role": role, "content": text});
            }
            let mut blocks: Vec<Value> = images
                .iter()
                .map(|image| {
                    json!({"type": "image", "source": {
                        "type": "base64",
                        "media_type": image.media_type,
                        "data": &*image.base64,
                    }})
                })
                .collect();
            if !text.is_empty() {
                blocks.push(json!({"type": "text", "text": text}));
            }
            json!({"role": role, "content": blocks})
        })
        .collect();
    let params = &request.params;
    let mut body = json!({
        "model": request.model,
        "max_tokens": params.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    // Anthropic's temperature range is 0..=1 (OpenAI's is 0..=2). Recent Claude models
    // refuse `temperature` and `top_p` together; 1.0 is neutral for both, so `top_p` is sent
    // only when it narrows sampling, and then a neutral temperature is left out.
    let temperature = params.temperature.clamp(0.0, 1.0);
    let narrow_top_p = params.top_p > 0.0 && params.top_p < 1.0;
    if !(narrow_top_p && temperature >= 1.0) {
        body["temperature"] = decimal(temperature);
    }
    if narrow_top_p {
        body["top_p"] = decimal(params.top_p);
    }
    let stops: Vec<&String> = params.stop.iter().filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        body["stop_sequences"] = json!(stops);
    }
    body
}

/// An `f32` as the shortest decimal that reads back as it (`0.7`, not `0.699999988…`).
fn decimal(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn transport_error(provider: &str, e: &reqwest::Error) -> InferenceError {
    if e.is_timeout() {
        InferenceError::Timeout
    } else {
        InferenceError::Unavailable(format!("{provider}: {e}"))
    }
}

/// The HTTP status Anthropic uses for each error type, for errors that arrive as an
/// `error` event after the 200 (so they map like the same error before it).
fn status_for(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// The usage fields that together make the prompt.
const PROMPT_FIELDS: [&str; 3] = [
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

/// What has been learnt from the stream so far.
struct Translator {
    provider: String,
    usage: Usage,
    reason: FinishReason,
}

impl Translator {
    /// The events one SSE event becomes, and whether the stream is over. The data's `type`
    /// names the event (the `event:` line repeats it); `ping`, `content_block_start`,
    /// `content_block_stop` and types Anthropic may add later are ignored, as are deltas
    /// that are not answer text (tool input, thinking, signatures, citations).
    fn handle(&mut self, event: &Event) -> (Option<Result<ChatEvent, InferenceError>>, bool) {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            let data: String = event.data.chars().take(200).collect();
            return (
                Some(Err(self.upstream(502, format!("unreadable event: {data}")))),
                true,
            );
        };
        match data["type"].as_str().unwrap_or(&event.event) {
            "message_start" => self.count(&data["message"]["usage"]),
            "content_block_delta" if data["delta"]["type"] == "text_delta" => {
                if let Some(text) = data["delta"]["text"].as_str().filter(|t| !t.is_empty()) {
                    return (Some(Ok(ChatEvent::Delta(text.to_owned()))), false);
                }
            }
            "message_delta" => {
                self.count(&data["usage"]);
                match data["delta"]["stop_reason"].as_str() {
                    Some("max_tokens" | "model_context_window_exceeded") => {
                        self.reason = FinishReason::Length;
                    }
                    // end_turn, stop_sequence, refusal, pause_turn, tool_use
                    Some(_) => self.reason = FinishReason::Stop,
                    None => {}
                }
            }
            "message_stop" => {
                let (reason, usage) = (self.reason, self.usage);
                return (Some(Ok(ChatEvent::Finished { reason, usage })), true);
            }
            "error" => {
                let kind = data["error"]["type"].as_str().unwrap_or("api_error");
                let message = data["error"]["message"].as_str().unwrap_or(kind).to_owned();
                return (Some(Err(self.upstream(status_for(kind), message))), true);
            }
            _ => {}
        }
        (None, false)
    }

    /// Counts are cumulative, so later ones replace earlier ones. `input_tokens` leaves out
    /// the prompt tokens read from or written to the prompt cache, which count here.
    fn count(&mut self, usage: &Value) {
        let field = |name: &str| usage[name].as_u64().and_then(|n| u32::try_from(n).ok());
        let prompt = PROMPT_FIELDS.map(field);
        if prompt.iter().any(Option::is_some) {
            let sum = prompt
                .iter()
                .flatten()
                .fold(0, |sum, n| u32::saturating_add(sum, *n));
            self.usage.prompt_tokens = sum;
        }
        if let Some(output) = field("output_tokens") {
            self.usage.completion_tokens = output;
        }
        self.usage.total_tokens = self
            .usage
            .prompt_tokens
            .saturating_add(self.usage.completion_tokens);
    }

    fn upstream(&self, status: u16, message: String) -> InferenceError {
        let (provider, retry_after_secs) = (self.provider.clone(), None);
        InferenceError::Upstream {
            provider,
            status,
            message,
            retry_after_secs,
        }
    }
}

/// Translates the SSE stream; it ends after `message_stop` or the first error, and a stream
/// that ends before `message_stop` ends with an error (the answer may be cut short).
fn translate<S>(
    provider: String,
    events: S,
) -> impl Stream<Item = Result<ChatEvent, InferenceError>>
where
    S: Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send + 'static,
{
    let translator = Translator {
        provider,
        usage: Usage::default(),
        reason: FinishReason::Stop,
    };
    let state = (events.boxed(), translator, false);
    futures::stream::unfold(state, |(mut events, mut translator, done)| async move {
        if done {
            return None;
        }
        let (item, done) = match events.next().await {
            Some(Ok(event)) => translator.handle(&event),
            Some(Err(EventStreamError::Transport(e))) if e.is_timeout() => {
                (Some(Err(InferenceError::Timeout)), true)
            }
            Some(Err(e)) => {
                let message = format!("{}: the stream broke: {e}", translator.provider);
                (Some(Err(InferenceError::Unavailable(message))), true)
            }
            None => {
                let message = format!(
                    "{}: the stream ended before message_stop",
                    translator.provider
                );
                (Some(Err(InferenceError::Unavailable(message))), true)
            }
        };
        Some((futures::stream::iter(item), (events, translator, done)))
    })
    .flatten()
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
    use axum::http::{HeaderMap, StatusCode};
    use tokio::sync::Mutex;

    use super::*;
    use crate::types::{ChatMessage, SamplingParams};

    /// The headers and body the fake received.
    type Seen = Arc<Mutex<(HeaderMap, Value)>>;

    /// A fake `POST /v1/messages` answering `status` (with `retry-after: 7` on a 429), then
    /// `body` in pieces of `piece` bytes written apart (so SSE events, JSON and UTF-8
    /// characters straddle reads). An empty body stands for a server that never answers.
    async fn fake(status: u16, body: &str, piece: usize) -> (String, Seen) {
        let seen = Seen::default();
        let pieces: Vec<Vec<u8>> = body.as_bytes().chunks(piece).map(<[u8]>::to_vec).collect();
        let recorder = seen.clone();
        let handler = move |request_headers: HeaderMap, request_body: Bytes| {
            let (seen, pieces) = (recorder.clone(), pieces.clone());
            async move {
                let body = serde_json::from_slice(&request_body).unwrap_or(Value::Null);
                *seen.lock().await = (request_headers, body);
                if pieces.is_empty() {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                let chunks = futures::stream::iter(pieces).then(|p| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Infallible>(p)
                });
                let kind = if status == 200 {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                let response = axum::response::Response::builder().header("content-type", kind);
                let response = if status == 429 {
                    response.header("retry-after", "7")
                } else {
                    response
                };
                let status = StatusCode::from_u16(status).unwrap();
                response
                    .status(status)
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }
        };
        let app = axum::Router::new().route("/v1/messages", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{address}"), seen)
    }

    fn client(base_url: &str, timeout: Duration) -> AnthropicClient {
        AnthropicClient::new("claude", base_url, Some("sk-ant-test".into()), timeout).unwrap()
    }

    fn ask(text: &str) -> ChatRequest {
        ChatRequest {
            model: "claude-sonnet-4-5".into(),
            messages: vec![ChatMessage::new(Role::User, text)],
            params: SamplingParams::default(),
            response_format: None,
            stream: true,
        }
    }

    type Events = Vec<Result<ChatEvent, InferenceError>>;

    /// Everything the stream yields.
    async fn answer(base_url: &str, request: &ChatRequest) -> Result<Events, InferenceError> {
        let client = client(base_url, Duration::from_secs(10));
        Ok(client.stream(request).await?.collect().await)
    }

    /// The parts of an upstream error.
    fn upstream(error: &InferenceError) -> (u16, &str, Option<u64>) {
        match error {
            InferenceError::Upstream {
                status,
                message,
                retry_after_secs,
                ..
            } => (*status, message, *retry_after_secs),
            other => panic!("not an upstream error: {other:?}"),
        }
    }

    /// A whole answer as the API streams it (with the cache and ping events it sends).
    const ANSWER: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" 👋 there"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}

"#;

    #[tokio::test]
    async fn a_streamed_answer_is_translated_both_ways() {
        // 7-byte pieces cut events, JSON and the emoji apart.
        let (base, seen) = fake(200, ANSWER, 7).await;
        let mut request = ask("Hi");
        request.messages = vec![
            ChatMessage::new(Role::System, "You are terse."),
            ChatMessage::new(Role::User, "Hi"),
            ChatMessage::new(Role::System, "Answer in English."),
            ChatMessage::new(Role::User, "anyone there?"),
            ChatMessage::new(Role::Assistant, "Yes."),
            ChatMessage::new(Role::Tool, "{\"weather\":\"sunny\"}"),
            ChatMessage::new(Role::User, "And now?"),
        ];
        request.params.temperature = 1.5;
        request.params.stop = vec!["END".into(), String::new()];
        request.params.seed = Some(7);
        // A configured `/v1/` suffix is not doubled.
        let events = answer(&format!("{base}/v1/"), &request).await.unwrap();

        let (headers, body) = &*seen.lock().await;
        assert_eq!(headers["x-api-key"], "sk-ant-test");
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        assert_eq!(headers["content-type"], "application/json");
        let expected = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": "You are terse.\n\nAnswer in English.",
            "messages": [
                {"role": "user", "content": "Hi\n\nanyone there?"},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "{\"weather\":\"sunny\"}\n\nAnd now?"},
            ],
            "temperature": 1.0,
            "stop_sequences": ["END"],
            "stream": true,
        });
        assert_eq!(*body, expected);
        // Cached prompt tokens count as prompt tokens.
        let usage = Usage::new(35, 15);
        let expected = [
            ChatEvent::Started,
            ChatEvent::Delta("Hello".into()),
            ChatEvent::Delta(" 👋 there".into()),
            ChatEvent::Finished {
                reason: FinishReason::Stop,
                usage,
            },
        ];
        let events: Vec<ChatEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(events, expected);
    }

    #[test]
    fn images_go_as_base64_blocks_before_the_text() {
        let mut request = ask("What is in these?");
        request.messages[0] = ChatMessage::new(Role::User, "What is in these?").with_images(vec![
            crate::types::ImageInput::from_bytes("image/png", b"png"),
            crate::types::ImageInput::from_bytes("image/jpeg", b"jpg"),
        ]);
        // An image alone (no text) still makes a turn.
        request
            .messages
            .push(ChatMessage::new(Role::Assistant, "Two images."));
        request
            .messages
            .push(ChatMessage::new(Role::User, " ").with_images(vec![
                crate::types::ImageInput::from_bytes("image/gif", b"gif"),
            ]));
        let body = to_anthropic_body(&request);
        let image = |media: &str, data: &str| json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    image("image/png", "cG5n"),
                    image("image/jpeg", "anBn"),
                    {"type": "text", "text": "What is in these?"},
                ]},
                {"role": "assistant", "content": "Two images."},
                {"role": "user", "content": [image("image/gif", "Z2lm")]},
            ])
        );
    }

    #[test]
    fn sampling_parameters_fit_anthropic() {
        let mut request = ask("Write JSON");
        request.messages.push(ChatMessage::new(Role::User, "  "));
        request
            .messages
            .push(ChatMessage::new(Role::Assistant, "{\n  "));
        request.params.temperature = 0.7;
        request.params.top_p = 0.9;
        request.params.max_tokens = Some(100);
        let body = to_anthropic_body(&request);
        assert_eq!(body["max_tokens"], 100);
        assert_eq!([&body["temperature"], &body["top_p"]], [0.7, 0.9]);
        assert!(body.get("system").is_none() && body.get("stop_sequences").is_none());
        // Blank messages are dropped; a prefill loses its trailing whitespace.
        let expected = json!([
            {"role": "user", "content": "Write JSON"},
            {"role": "assistant", "content": "{"},
        ]);
        assert_eq!(body["messages"], expected);
        // Narrowed top_p with a neutral temperature: only top_p (newer models refuse both).
        request.params.temperature = 1.0;
        let body = to_anthropic_body(&request);
        assert!(body.get("temperature").is_none() && body["top_p"] == 0.9);
        request.params.top_p = 1.0;
        request.params.temperature = 0.0;
        let body = to_anthropic_body(&request);
        assert!(body.get("top_p").is_none() && body["temperature"] == 0.0);
    }

    #[tokio::test]
    async fn max_tokens_finishes_with_length_and_thinking_is_skipped() {
        let thinking = r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}

event: ping"#;
        let body = ANSWER
            .replacen("event: ping", thinking, 1)
            .replace("end_turn", "max_tokens")
            .replace(
                r#""usage":{"output_tokens":15}"#,
                r#""usage":{"input_tokens":40,"cache_read_input_tokens":null,"output_tokens":5}"#,
            );
        let (base, _) = fake(200, &body, 64).await;
        let events = answer(&base, &ask("Why?")).await.unwrap();
        let deltas = events
            .iter()
            .filter(|e| matches!(e, Ok(ChatEvent::Delta(_))));
        assert_eq!(deltas.count(), 2);
        let usage = Usage::new(40, 5);
        let finished = ChatEvent::Finished {
            reason: FinishReason::Length,
            usage,
        };
        assert_eq!(events.last().unwrap().as_ref().unwrap(), &finished);
    }

    #[tokio::test]
    async fn refusals_map_to_upstream_errors_with_retry_after() {
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        let (base, _) = fake(429, body, 1024).await;
        let error = answer(&base, &ask("Hi")).await.unwrap_err();
        let message = "Number of request tokens has exceeded your per-minute rate limit";
        assert_eq!(upstream(&error), (429, message, Some(7)));
        assert!(matches!(error, InferenceError::Upstream { provider, .. } if provider == "claude"));
    }

    #[tokio::test]
    async fn an_error_event_mid_stream_ends_it_with_an_upstream_error() {
        let start = ANSWER.split("event: content_block_stop").next().unwrap();
        let overloaded = r#"event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

event: message_stop
data: {"type":"message_stop"}

"#;
        let (base, _) = fake(200, &format!("{start}{overloaded}"), 16).await;
        let mut events = answer(&base, &ask("Hi")).await.unwrap();
        let error = events.pop().unwrap().unwrap_err();
        assert_eq!(upstream(&error), (529, "Overloaded", None));
        assert_eq!(events.len(), 3, "the events before the error: {events:?}");
        assert!(matches!(&events[2], Ok(ChatEvent::Delta(t)) if t == " 👋 there"));

        // A stream cut before message_stop ends with an error, never a Finished.
        let (base, _) = fake(200, start, 16).await;
        let events = answer(&base, &ask("Hi")).await.unwrap();
        let Some(Err(InferenceError::Unavailable(message))) = events.last() else {
            panic!("{events:?}");
        };
        assert!(message.contains("message_stop"), "{message}");
    }

    #[tokio::test]
    async fn refused_requests_timeouts_and_unreachable_servers() {
        // JSON output is refused before anything is sent (nothing listens here).
        let mut request = ask("Hi");
        let format = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}});
        request.response_format = Some(serde_json::from_value(format).unwrap());
        let claude = client("http://127.0.0.1:9", Duration::from_secs(1));
        let error = claude.stream(&request).await.err().unwrap();
        assert!(matches!(&error, InferenceError::Unsupported(m) if m.contains("response_format")));
        request.response_format = None;
        request.messages = vec![ChatMessage::new(Role::System, "Only a system prompt")];
        let error = claude.stream(&request).await.err().unwrap();
        assert!(matches!(
            error,
            InferenceError::InvalidRequest {
                param: Some("messages"),
                ..
            }
        ));

        let (base, _) = fake(200, "", 16).await;
        let slow = client(&base, Duration::from_millis(300));
        let error = slow.stream(&ask("Hi")).await.err().unwrap();
        assert!(matches!(error, InferenceError::Timeout), "{error:?}");

        // A port nobody listens on any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = answer(&format!("http://{address}"), &ask("Hi"))
            .await
            .unwrap_err();
        assert!(matches!(&error, InferenceError::Unavailable(m) if m.starts_with("claude: ")));
    }
}
