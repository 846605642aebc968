//! The OpenAI-compatible HTTP provider: OpenAI itself, vLLM, llama.cpp's server, LM Studio,
//! LiteLLM. Requests are always streamed upstream (so answers flow as they are generated)
//! and translated into [`ChatEvent`]s.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::error::InferenceError;
use crate::types::{ChatEvent, ChatRequest, ChatStream, FinishReason, ResponseFormat, Usage};

#[derive(Debug, Clone)]
pub struct OpenAiClient {
    pub name: String,
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

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

impl OpenAiClient {
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| InferenceError::Engine(format!("HTTP client: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
        })
    }

    fn body(request: &ChatRequest) -> serde_json::Value {
        let messages: Vec<_> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": request.params.temperature,
            "top_p": request.params.top_p,
        });
        if let Some(max) = request.params.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if !request.params.stop.is_empty() {
            body["stop"] = json!(request.params.stop);
        }
        if let Some(seed) = request.params.seed {
            body["seed"] = json!(seed);
        }
        if let Some(format) = &request.response_format
            && *format != ResponseFormat::Text
        {
            body["response_format"] = json!(format);
        }
        body
    }

    pub async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, InferenceError> {
        let mut call = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&Self::body(request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after_secs = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
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
                        if let Some(reason) = choice.finish_reason {
                            finish = Some(if reason == "length" {
                                FinishReason::Length
                            } else {
                                FinishReason::Stop
                            });
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
                    out.push(Err(InferenceError::Upstream {
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

    /// Embeddings from the upstream's `/embeddings`, as floats, with the tokens used.
    pub async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        let mut call = self
            .http
            .post(format!("{}/embeddings", self.base_url))
            .json(&json!({"model": model, "input": texts, "encoding_format": "float"}));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(InferenceError::Upstream {
                provider: self.name.clone(),
                status: status.as_u16(),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("embedding failed")
                    .to_owned(),
                retry_after_secs: None,
            });
        }
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

    fn transport_error(&self, e: &reqwest::Error) -> InferenceError {
        if e.is_timeout() {
            InferenceError::Timeout
        } else {
            InferenceError::Unavailable(format!("{}: {e}", self.name))
        }
    }
}

/// Maps SSE events through `handle` (which returns events to emit and whether the stream is
/// done); a transport error or an end without `[DONE]` becomes an error event.
fn sse_events<S, E, H>(
    provider: String,
    events: S,
    handle: H,
) -> impl futures::Stream<Item = Result<ChatEvent, InferenceError>> + Send
where
    S: futures::Stream<Item = Result<eventsource_stream::Event, E>> + Send + 'static,
    E: std::fmt::Display,
    H: FnMut(String) -> (Vec<Result<ChatEvent, InferenceError>>, bool) + Send + 'static,
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
                vec![Err(InferenceError::Unavailable(format!(
                    "{}: the stream broke: {e}",
                    st.provider
                )))]
            }
            None => {
                st.done = true;
                vec![Err(InferenceError::Unavailable(format!(
                    "{}: the stream ended without [DONE]",
                    st.provider
                )))]
            }
        };
        Some((futures::stream::iter(items), st))
    })
    .flatten()
}
