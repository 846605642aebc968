//! The OpenAI-compatible HTTP client: OpenAI itself, vLLM, llama.cpp's server, LM Studio,
//! LiteLLM — and another Confab's inference service, which speaks the same API. A request the caller streams is streamed upstream too (so answers flow as they are
//! generated); one the caller reads whole is fetched whole, which costs the upstream and the
//! gateway far less than an event stream. Both are translated into [`ChatEvent`]s.

use std::time::Duration;

use confab_core::telemetry::otel;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::error::ModelError;
use crate::types::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, FinishReason, ResponseFormat, Usage,
};

#[derive(Debug, Clone)]
pub struct OpenAiClient {
    pub name: String,
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive so it never appears in logs.
    authorization: Option<HeaderValue>,
    http: reqwest::Client,
}

/// A streamed chunk.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: ChunkDelta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct ChunkDelta {
    content: Option<String>,
}

/// A whole (non-streamed) completion.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
}

/// The request body, borrowed from the request (no intermediate JSON tree).
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    temperature: f32,
    top_p: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a ResponseFormat>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
}

/// A message's content: its text alone, or (with images) a list of parts.
#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

fn wire_content(message: &ChatMessage) -> WireContent<'_> {
    if message.images.is_empty() {
        return WireContent::Text(&message.content);
    }
    let mut parts = Vec::with_capacity(message.images.len() + 1);
    if !message.content.is_empty() {
        parts.push(WirePart::Text {
            text: &message.content,
        });
    }
    parts.extend(message.images.iter().map(|image| WirePart::ImageUrl {
        image_url: ImageUrl {
            url: image.data_url(),
        },
    }));
    WireContent::Parts(parts)
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// The message of an OpenAI error body, or the start of whatever the body is.
fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(500).collect())
}

impl OpenAiClient {
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        Self::with_client(
            reqwest::Client::builder(),
            name,
            base_url,
            api_key,
            connect_timeout,
            timeout,
        )
    }

    /// [`Self::new`] from a client builder that already holds its TLS trust (calls between
    /// Confab's services: `confab_core::service_tls`).
    pub fn with_client(
        builder: reqwest::ClientBuilder,
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        let http = builder
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| ModelError::Engine(format!("HTTP client: {e}")))?;
        let base = base_url.trim_end_matches('/');
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| {
                ModelError::Engine(format!(
                    "provider `{name}`: base_url `{}`: {e}",
                    confab_core::config::redact_url(base_url)
                ))
            })
        };
        let authorization = match api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    ModelError::Engine(format!(
                        "provider `{name}`: the API key contains characters a header cannot carry"
                    ))
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            name: name.to_owned(),
            chat_url: url("chat/completions")?,
            embeddings_url: url("embeddings")?,
            authorization,
            http,
        })
    }

    fn body(request: &ChatRequest) -> Body<'_> {
        Body {
            model: &request.model,
            messages: request
                .messages
                .iter()
                .map(|m: &ChatMessage| WireMessage {
                    role: m.role.as_str(),
                    content: wire_content(m),
                })
                .collect(),
            stream: request.stream,
            stream_options: request.stream.then_some(StreamOptions {
                include_usage: true,
            }),
            temperature: request.params.temperature,
            top_p: request.params.top_p,
            max_tokens: request.params.max_tokens,
            stop: &request.params.stop,
            seed: request.params.seed,
            response_format: request
                .response_format
                .as_ref()
                .filter(|f| **f != ResponseFormat::Text),
        }
    }

    /// Sends `body` to `url`; a non-2xx answer becomes [`ModelError::Upstream`] with the
    /// upstream's message and `Retry-After`.
    async fn send_as<B: Serialize>(
        &self,
        url: &reqwest::Url,
        body: &B,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, ModelError> {
        // A client span per call when traces are exported; its context goes in `traceparent`.
        let span = otel::client_span("POST", url.path(), url.host_str().unwrap_or(""));
        let mut call = self
            .http
            .post(url.clone())
            .headers(otel::span_headers(&span))
            .json(body);
        if let Some(authorization) = authorization {
            call = call.header(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = call
            .send()
            .instrument(span)
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after_secs = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = response.text().await.unwrap_or_default();
        Err(ModelError::Upstream {
            provider: self.name.clone(),
            status: status.as_u16(),
            message: error_message(&text),
            retry_after_secs,
        })
    }

    /// Starts a generation: streamed upstream when `request.stream`, else fetched whole and
    /// replayed as one delta.
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        self.stream_as(request, self.authorization.as_ref()).await
    }

    /// [`OpenAiClient::stream`] with another `Authorization` for this request (a token minted
    /// for the user on whose behalf it is made).
    pub async fn stream_with_bearer(
        &self,
        request: &ChatRequest,
        bearer: &str,
    ) -> Result<ChatStream, ModelError> {
        let value = bearer_header(bearer)?;
        self.stream_as(request, Some(&value)).await
    }

    async fn stream_as(
        &self,
        request: &ChatRequest,
        authorization: Option<&HeaderValue>,
    ) -> Result<ChatStream, ModelError> {
        let response = self
            .send_as(&self.chat_url, &Self::body(request), authorization)
            .await?;
        if !request.stream {
            return self.whole(response).await;
        }
        let name = self.name.clone();
        let provider = self.name.clone();
        let mut finish = None;
        let mut usage = None;
        let events = response.bytes_stream().eventsource();
        let stream = sse_events(name, events, move |data| {
            let mut out = Vec::new();
            if data == "[DONE]" {
                out.push(Ok(ChatEvent::Finished {
                    reason: finish.unwrap_or(FinishReason::Stop),
                    usage: usage.unwrap_or_default(),
                }));
                return (out, true);
            }
            match serde_json::from_str::<Chunk>(&data) {
                Ok(chunk) => {
                    if let Some(u) = chunk.usage {
                        usage = Some(u);
                    }
                    for choice in chunk.choices {
                        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                            out.push(Ok(ChatEvent::Delta(text)));
                        }
                        if choice.finish_reason.is_some() {
                            finish = Some(finish_reason(choice.finish_reason.as_deref()));
                        }
                    }
                }
                Err(_) => {
                    let message = serde_json::from_str::<serde_json::Value>(&data)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| {
                            format!(
                                "unreadable chunk: {}",
                                data.chars().take(200).collect::<String>()
                            )
                        });
                    out.push(Err(ModelError::Upstream {
                        provider: provider.clone(),
                        status: 502,
                        message,
                        retry_after_secs: None,
                    }));
                    return (out, true);
                }
            }
            (out, false)
        });
        Ok(futures::stream::once(async { Ok(ChatEvent::Started) })
            .chain(stream)
            .boxed())
    }

    /// Reads a non-streamed completion and replays it as events.
    async fn whole(&self, response: reqwest::Response) -> Result<ChatStream, ModelError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let completion: Completion =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::Upstream {
                provider: self.name.clone(),
                status: 502,
                message: format!(
                    "unreadable completion ({e}): {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
                retry_after_secs: None,
            })?;
        let choice = completion.choices.into_iter().next();
        let reason = finish_reason(choice.as_ref().and_then(|c| c.finish_reason.as_deref()));
        let content = choice.and_then(|c| c.message.content).unwrap_or_default();
        let mut events = Vec::with_capacity(3);
        events.push(Ok(ChatEvent::Started));
        if !content.is_empty() {
            events.push(Ok(ChatEvent::Delta(content)));
        }
        events.push(Ok(ChatEvent::Finished {
            reason,
            usage: completion.usage,
        }));
        Ok(futures::stream::iter(events).boxed())
    }

    /// Embeddings from the upstream's `/embeddings`, as floats, with the tokens used.
    pub async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, u32), ModelError> {
        self.embed_as(model, texts, self.authorization.as_ref())
            .await
    }

    /// [`OpenAiClient::embed`] with another `Authorization` for this request.
    pub async fn embed_with_bearer(
        &self,
        model: &str,
        texts: Vec<String>,
        bearer: &str,
    ) -> Result<(Vec<Vec<f32>>, u32), ModelError> {
        let value = bearer_header(bearer)?;
        self.embed_as(model, texts, Some(&value)).await
    }

    async fn embed_as(
        &self,
        model: &str,
        texts: Vec<String>,
        authorization: Option<&HeaderValue>,
    ) -> Result<(Vec<Vec<f32>>, u32), ModelError> {
        let response = self
            .send_as(
                &self.embeddings_url,
                &json!({"model": model, "input": texts, "encoding_format": "float"}),
                authorization,
            )
            .await?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let mut rows: Vec<(u64, Vec<f32>)> = body["data"]
            .as_array()
            .map(|data| {
                data.iter()
                    .map(|d| {
                        let vector = d["embedding"]
                            .as_array()
                            .map(|v| {
                                v.iter()
                                    .filter_map(|x| x.as_f64().map(|x| x as f32))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (d["index"].as_u64().unwrap_or(0), vector)
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by_key(|(index, _)| *index);
        let tokens =
            u32::try_from(body["usage"]["prompt_tokens"].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        Ok((rows.into_iter().map(|(_, v)| v).collect(), tokens))
    }

    fn transport_error(&self, e: &reqwest::Error) -> ModelError {
        if e.is_timeout() {
            ModelError::Timeout
        } else {
            ModelError::Unavailable(format!("{}: {e}", self.name))
        }
    }
}

/// `Bearer <token>` as a header value that logs never show.
fn bearer_header(bearer: &str) -> Result<HeaderValue, ModelError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {bearer}"))
        .map_err(|_| ModelError::Engine("the bearer token cannot be sent in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Maps SSE events through `handle` (which returns events to emit and whether the stream is
/// done); a transport error or an end without `[DONE]` becomes an error event.
fn sse_events<S, E, H>(
    provider: String,
    events: S,
    handle: H,
) -> impl futures::Stream<Item = Result<ChatEvent, ModelError>> + Send
where
    S: futures::Stream<Item = Result<eventsource_stream::Event, E>> + Send + 'static,
    E: std::fmt::Display,
    H: FnMut(String) -> (Vec<Result<ChatEvent, ModelError>>, bool) + Send + 'static,
{
    struct State<H> {
        events: futures::stream::BoxStream<'static, Result<eventsource_stream::Event, String>>,
        handle: H,
        provider: String,
        done: bool,
    }
    let state = State {
        events: events.map(|r| r.map_err(|e| e.to_string())).boxed(),
        handle,
        provider,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let items = match st.events.next().await {
            Some(Ok(event)) => {
                let (items, finished) = (st.handle)(event.data);
                st.done = finished;
                items
            }
            Some(Err(e)) => {
                st.done = true;
                vec![Err(ModelError::Unavailable(format!(
                    "{}: the stream broke: {e}",
                    st.provider
                )))]
            }
            None => {
                st.done = true;
                vec![Err(ModelError::Unavailable(format!(
                    "{}: the stream ended without [DONE]",
                    st.provider
                )))]
            }
        };
        Some((futures::stream::iter(items), st))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ImageInput, Role, SamplingParams};

    #[test]
    fn images_go_as_image_url_parts_after_the_text() {
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![
                ChatMessage::new(Role::System, "Be brief."),
                ChatMessage::new(Role::User, "What is this?")
                    .with_images(vec![ImageInput::from_bytes("image/png", b"\x89PNG")]),
            ],
            params: SamplingParams::default(),
            response_format: None,
            stream: false,
        };
        let body = serde_json::to_value(OpenAiClient::body(&request)).unwrap();
        assert_eq!(body["messages"][0]["content"], "Be brief.");
        assert_eq!(
            body["messages"][1]["content"],
            serde_json::json!([
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ])
        );
    }
}
