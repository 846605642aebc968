//! The Anthropic Messages API provider (`POST {base}/v1/messages`). Requests are translated
//! from the OpenAI shape Confab speaks (system messages lifted to the top-level `system`,
//! roles merged so they alternate, `max_tokens` always set) and always streamed; the SSE
//! events (`message_start` … `message_stop`) are translated back into [`ChatEvent`]s.

use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::InferenceError;
use crate::types::{ChatEvent, ChatRequest, ChatStream, FinishReason, ResponseFormat, Role, Usage};

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
        if request
            .response_format
            .as_ref()
            .is_some_and(|f| *f != ResponseFormat::Text)
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
            .header("anthropic-version", API_VERSION)
            .json(&to_anthropic_body(request));
        if let Some(key) = &self.api_key {
            call = call.header("x-api-key", key.as_str());
        }
        let response = call
            .send()
            .await
            .map_err(|e| transport_error(&self.name, &e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after_secs = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse().ok());
            let text = response.text().await.unwrap_or_default();
            // `{"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}`
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(500).collect());
            return Err(InferenceError::Upstream {
                provider: self.name.clone(),
                status: status.as_u16(),
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
    let mut turns: Vec<(&'static str, String)> = Vec::new();
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
        if message.content.trim().is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, text)) if *last == role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => turns.push((role, message.content.clone())),
        }
    }
    // A final assistant turn is a prefill the model continues; Anthropic refuses one that
    // ends in whitespace.
    if let Some((role, text)) = turns.last_mut()
        && *role == "assistant"
    {
        text.truncate(text.trim_end().len());
    }
    let messages: Vec<Value> = turns
        .iter()
        .map(|(role, text)| json!({"role": role, "content": text}))
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

/// One streamed event; `type` in the data names it (the SSE `event:` line repeats it).
/// Unknown types are ignored, as Anthropic says new ones may appear.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockDelta {
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageChange,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_start`, `content_block_stop` and anything newer.
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// Tool input, thinking, signatures, citations: not part of the text answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageChange {
    stop_reason: Option<String>,
}

/// Counts are cumulative; `input_tokens` leaves out tokens read from or written to the
/// prompt cache, which still count as prompt tokens here.
#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    cache_creation_input_tokens: Option<u32>,
    cache_read_input_tokens: Option<u32>,
}

impl WireUsage {
    fn prompt_tokens(&self) -> Option<u32> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts
            .iter()
            .any(Option::is_some)
            .then(|| parts.iter().flatten().sum())
    }
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
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

/// What has been learnt from the stream so far.
struct Translator {
    provider: String,
    prompt_tokens: u32,
    completion_tokens: u32,
    reason: Option<FinishReason>,
}

type Emitted = Vec<Result<ChatEvent, InferenceError>>;

impl Translator {
    /// The events one SSE event becomes, and whether the stream is over.
    fn handle(&mut self, event: &Event) -> (Emitted, bool) {
        let parsed = match serde_json::from_str::<StreamEvent>(&event.data) {
            Ok(parsed) => parsed,
            Err(e) => {
                let data: String = event.data.chars().take(200).collect();
                return (
                    vec![Err(
                        self.upstream(502, format!("unreadable event ({e}): {data}"))
                    )],
                    true,
                );
            }
        };
        match parsed {
            StreamEvent::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.count(&usage);
                }
            }
            StreamEvent::ContentBlockDelta {
                delta: BlockDelta::TextDelta { text },
            } if !text.is_empty() => return (vec![Ok(ChatEvent::Delta(text))], false),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.count(&usage);
                }
                if let Some(reason) = delta.stop_reason {
                    self.reason = Some(match reason.as_str() {
                        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
                        // end_turn, stop_sequence, refusal, pause_turn, tool_use
                        _ => FinishReason::Stop,
                    });
                }
            }
            StreamEvent::MessageStop => {
                let finished = ChatEvent::Finished {
                    reason: self.reason.unwrap_or(FinishReason::Stop),
                    usage: Usage::new(self.prompt_tokens, self.completion_tokens),
                };
                return (vec![Ok(finished)], true);
            }
            StreamEvent::Error { error } => {
                let status = status_for(&error.kind);
                let message = if error.message.is_empty() {
                    error.kind
                } else {
                    error.message
                };
                return (vec![Err(self.upstream(status, message))], true);
            }
            StreamEvent::ContentBlockDelta { .. } | StreamEvent::Ignored => {}
        }
        (Vec::new(), false)
    }

    fn count(&mut self, usage: &WireUsage) {
        if let Some(prompt) = usage.prompt_tokens() {
            self.prompt_tokens = prompt;
        }
        if let Some(output) = usage.output_tokens {
            self.completion_tokens = output;
        }
    }

    fn upstream(&self, status: u16, message: String) -> InferenceError {
        InferenceError::Upstream {
            provider: self.provider.clone(),
            status,
            message,
            retry_after_secs: None,
        }
    }
}

/// Translates the SSE stream; it ends after `message_stop` or the first error, and a stream
/// that ends before `message_stop` ends with an error (the answer may be cut short).
fn translate<S>(
    provider: String,
    events: S,
) -> impl Stream<Item = Result<ChatEvent, InferenceError>> + Send
where
    S: Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send + 'static,
{
    let state = (
        events.boxed(),
        Translator {
            provider,
            prompt_tokens: 0,
            completion_tokens: 0,
            reason: None,
        },
        false,
    );
    futures::stream::unfold(state, |(mut events, mut translator, done)| async move {
        if done {
            return None;
        }
        let (items, done) = match events.next().await {
            Some(Ok(event)) => translator.handle(&event),
            Some(Err(EventStreamError::Transport(e))) if e.is_timeout() => {
                (vec![Err(InferenceError::Timeout)], true)
            }
            Some(Err(e)) => {
                let message = format!("{}: the stream broke: {e}", translator.provider);
                (vec![Err(InferenceError::Unavailable(message))], true)
            }
            None => {
                let message = format!(
                    "{}: the stream ended before message_stop",
                    translator.provider
                );
                (vec![Err(InferenceError::Unavailable(message))], true)
            }
        };
        Some((futures::stream::iter(items), (events, translator, done)))
    })
    .flatten()
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
    use axum::http::{HeaderMap, StatusCode};
    use tokio::sync::Mutex;

    use super::*;
    use crate::types::{ChatMessage, JsonSchemaFormat, SamplingParams};

    /// The headers and body the fake received.
    type Seen = Arc<Mutex<(HeaderMap, Value)>>;

    const SSE: &[(&str, &str)] = &[("content-type", "text/event-stream")];

    /// A fake `POST /v1/messages` answering `status` and `headers` after `delay`, then
    /// `body` in pieces of `piece` bytes written apart (so SSE events, JSON and UTF-8
    /// characters straddle reads).
    async fn fake(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &str,
        piece: usize,
        delay: Duration,
    ) -> (String, Seen) {
        let seen = Seen::default();
        let pieces: Vec<Vec<u8>> = body.as_bytes().chunks(piece).map(<[u8]>::to_vec).collect();
        let recorder = seen.clone();
        let handler = move |request_headers: HeaderMap, request_body: Bytes| {
            let (seen, pieces) = (recorder.clone(), pieces.clone());
            async move {
                let body = serde_json::from_slice(&request_body).unwrap_or(Value::Null);
                *seen.lock().await = (request_headers, body);
                tokio::time::sleep(delay).await;
                let chunks = futures::stream::iter(pieces).then(|p| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Infallible>(p)
                });
                let mut response = axum::response::Response::builder();
                for (name, value) in headers {
                    response = response.header(*name, *value);
                }
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

    fn ask(messages: Vec<ChatMessage>, params: SamplingParams) -> ChatRequest {
        let model = "claude-sonnet-4-5".into();
        let response_format = None;
        ChatRequest {
            model,
            messages,
            params,
            response_format,
        }
    }

    fn hi() -> ChatRequest {
        ask(
            vec![ChatMessage::new(Role::User, "Hi")],
            SamplingParams::default(),
        )
    }

    /// Everything the stream yields.
    async fn answer(
        base_url: &str,
        request: &ChatRequest,
    ) -> Result<Vec<Result<ChatEvent, InferenceError>>, InferenceError> {
        let client = client(base_url, Duration::from_secs(10));
        Ok(client.stream(request).await?.collect().await)
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

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", how can I help?"}}

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
        let (base, seen) = fake(200, SSE, ANSWER, 7, Duration::ZERO).await;
        let messages = vec![
            ChatMessage::new(Role::System, "You are terse."),
            ChatMessage::new(Role::User, "Hi"),
            ChatMessage::new(Role::System, "Answer in English."),
            ChatMessage::new(Role::User, "anyone there?"),
            ChatMessage::new(Role::Assistant, "Yes."),
            ChatMessage::new(Role::Tool, "{\"weather\":\"sunny\"}"),
            ChatMessage::new(Role::User, "And now?"),
        ];
        let params = SamplingParams {
            temperature: 1.5,
            stop: vec!["END".into(), String::new()],
            seed: Some(7),
            ..SamplingParams::default()
        };
        // A configured `/v1/` suffix is not doubled.
        let events = answer(&format!("{base}/v1/"), &ask(messages, params))
            .await
            .unwrap();

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

        let events: Vec<ChatEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(events.first(), Some(&ChatEvent::Started));
        let text: String = events
            .iter()
            .filter_map(|e| {
                if let ChatEvent::Delta(t) = e {
                    Some(t.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(text, "Hello 👋 there, how can I help?");
        // Cached prompt tokens count as prompt tokens.
        let usage = Usage::new(35, 15);
        let finished = ChatEvent::Finished {
            reason: FinishReason::Stop,
            usage,
        };
        assert_eq!(events.last(), Some(&finished));
        let finishes = events
            .iter()
            .filter(|e| matches!(e, ChatEvent::Finished { .. }));
        assert_eq!(finishes.count(), 1);
    }

    #[test]
    fn sampling_parameters_fit_anthropic() {
        let messages = vec![
            ChatMessage::new(Role::User, "Write JSON"),
            ChatMessage::new(Role::User, "  "),
            ChatMessage::new(Role::Assistant, "{\n  "),
        ];
        let params = SamplingParams {
            temperature: 0.7,
            top_p: 0.9,
            max_tokens: Some(100),
            ..SamplingParams::default()
        };
        let mut request = ask(messages, params);
        let body = to_anthropic_body(&request);
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(
            (&body["temperature"], &body["top_p"]),
            (&json!(0.7), &json!(0.9))
        );
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
        assert_eq!(
            (body.get("temperature"), &body["top_p"]),
            (None, &json!(0.9))
        );
        request.params.top_p = 1.0;
        request.params.temperature = 0.0;
        let body = to_anthropic_body(&request);
        assert_eq!(
            (&body["temperature"], body.get("top_p")),
            (&json!(0.0), None)
        );
    }

    #[tokio::test]
    async fn max_tokens_finishes_with_length_and_thinking_is_skipped() {
        let body = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"The answer is"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":40,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"output_tokens":5}}

event: message_stop
data: {"type":"message_stop"}

"#;
        let (base, _) = fake(200, SSE, body, 64, Duration::ZERO).await;
        let events = answer(&base, &hi()).await.unwrap();
        let events: Vec<ChatEvent> = events.into_iter().map(Result::unwrap).collect();
        let usage = Usage::new(40, 5);
        let expected = vec![
            ChatEvent::Started,
            ChatEvent::Delta("The answer is".into()),
            ChatEvent::Finished {
                reason: FinishReason::Length,
                usage,
            },
        ];
        assert_eq!(events, expected);
    }

    #[tokio::test]
    async fn refusals_map_to_upstream_errors_with_retry_after() {
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        let headers = &[("content-type", "application/json"), ("retry-after", "7")];
        let (base, _) = fake(429, headers, body, 1024, Duration::ZERO).await;
        let error = answer(&base, &hi()).await.unwrap_err();
        let InferenceError::Upstream {
            provider,
            status,
            message,
            retry_after_secs,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(
            (provider.as_str(), *status, *retry_after_secs),
            ("claude", 429, Some(7))
        );
        assert!(message.starts_with("Number of request tokens"), "{message}");
    }

    #[tokio::test]
    async fn an_error_event_mid_stream_ends_it_with_an_upstream_error() {
        let start = ANSWER.split("event: content_block_stop").next().unwrap();
        let overloaded = r#"event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

event: message_stop
data: {"type":"message_stop"}

"#;
        let (base, _) = fake(
            200,
            SSE,
            &format!("{start}{overloaded}"),
            16,
            Duration::ZERO,
        )
        .await;
        let events = answer(&base, &hi()).await.unwrap();
        assert_eq!(events.len(), 5, "{events:?}");
        assert!(matches!(events[0], Ok(ChatEvent::Started)));
        assert!(matches!(&events[3], Ok(ChatEvent::Delta(t)) if t == ", how can I help?"));
        let Err(InferenceError::Upstream {
            status, message, ..
        }) = &events[4]
        else {
            panic!("{events:?}");
        };
        assert_eq!((*status, message.as_str()), (529, "Overloaded"));

        // A stream cut before message_stop ends with an error, never a Finished.
        let (base, _) = fake(200, SSE, start, 16, Duration::ZERO).await;
        let events = answer(&base, &hi()).await.unwrap();
        let Some(Err(InferenceError::Unavailable(message))) = events.last() else {
            panic!("{events:?}");
        };
        assert!(message.contains("message_stop"), "{message}");
    }

    #[tokio::test]
    async fn json_output_is_refused_before_any_request() {
        let mut request = hi();
        let schema = json!({"type": "object"});
        let json_schema = JsonSchemaFormat {
            name: "x".into(),
            schema,
            strict: None,
            description: None,
        };
        request.response_format = Some(ResponseFormat::JsonSchema { json_schema });
        // Nothing listens here: the refusal must come first.
        let claude = client("http://127.0.0.1:9", Duration::from_secs(1));
        let error = claude.stream(&request).await.err().unwrap();
        assert!(matches!(&error, InferenceError::Unsupported(m) if m.contains("response_format")));
        request.response_format = Some(ResponseFormat::Text);
        request.messages = vec![ChatMessage::new(Role::System, "Only a system prompt")];
        let error = claude.stream(&request).await.err().unwrap();
        let InferenceError::InvalidRequest { param, .. } = error else {
            panic!("{error:?}");
        };
        assert_eq!(param, Some("messages"));
    }

    #[tokio::test]
    async fn timeouts_and_unreachable_servers() {
        let (base, _) = fake(200, SSE, "", 16, Duration::from_secs(5)).await;
        let slow = client(&base, Duration::from_millis(300));
        let error = slow.stream(&hi()).await.err().unwrap();
        assert!(matches!(error, InferenceError::Timeout), "{error:?}");

        // A port nobody listens on any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = answer(&format!("http://{address}"), &hi())
            .await
            .unwrap_err();
        let InferenceError::Unavailable(message) = error else {
            panic!("{error:?}");
        };
        assert!(message.starts_with("claude: "), "{message}");
    }
}
