//! The OpenAI-compatible routes: chat completions (one JSON body or an SSE stream of chunks,
//! ending with `data: [DONE]`), embeddings (floats or base64) and the model list, each a thin
//! handler over `InferenceService::chat_completion` / `embeddings`.

use confab_core::error::responses::{Authenticated, Forbidden, JsonBody};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{InferenceError, OpenAiError, OpenAiErrorBody};
use crate::limits::Allowance;
use crate::types::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatEvent,
    ChatMessage, ChatRequest, Choice, ChunkChoice, Delta, EmbedRequest, EmbeddingData,
    EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingValue,
    FinishReason, IMAGE_TYPES, ImageInput, MAX_IMAGES, ModelList, ModelObject, Role,
    SamplingParams, Usage, WireContent,
};

use super::{InferenceCaller, InferenceState, OpenAiJson};

/// The largest chat completion body: room for [`MAX_IMAGES`] images as `data:` URLs (the
/// server's `body_limit_bytes` still bounds every other route).
pub const CHAT_BODY_LIMIT: usize = 24 << 20;

pub(super) fn routes() -> OpenApiRouter<InferenceState> {
    OpenApiRouter::new()
        .routes(routes!(chat_completions))
        .layer(axum::extract::DefaultBodyLimit::max(CHAT_BODY_LIMIT))
        .routes(routes!(embeddings))
        .routes(routes!(list_models))
}

/// An image part's `data:` URL as an image: one of the image types, base64.
fn data_url_image(url: &str, at: &str) -> Result<ImageInput, InferenceError> {
    let refused = |why: &str| {
        InferenceError::invalid(
            "messages",
            format!(
                "{at}.image_url.url {why}; send images as data: URLs (data:image/png;base64,…)"
            ),
        )
    };
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(refused(
            "is not a data: URL (images are not fetched from URLs)",
        ));
    };
    let Some((media_type, data)) = rest.split_once(";base64,") else {
        return Err(refused("is not base64"));
    };
    let media_type = media_type.to_ascii_lowercase();
    if !IMAGE_TYPES.contains(&media_type.as_str()) {
        return Err(refused(&format!(
            "has the type `{media_type}`: images are JPEG, PNG, WebP or GIF"
        )));
    }
    let data = data.trim_end();
    if data.is_empty()
        || !data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(refused("is not valid base64"));
    }
    Ok(ImageInput {
        media_type,
        base64: data.into(),
    })
}

/// A message's text and images; `images` counts the request's images so far.
fn content_parts(
    content: Option<WireContent>,
    at: &str,
    images: &mut usize,
) -> Result<(String, Vec<ImageInput>), InferenceError> {
    match content {
        None => Ok((String::new(), Vec::new())),
        Some(WireContent::Text(text)) => Ok((text, Vec::new())),
        Some(WireContent::Parts(parts)) => {
            let mut text = String::new();
            let mut found = Vec::new();
            for (j, part) in parts.into_iter().enumerate() {
                match (part.kind.as_str(), part.text, part.image_url) {
                    ("text", Some(t), _) => text.push_str(&t),
                    ("image_url", _, Some(image)) => {
                        *images += 1;
                        if *images > MAX_IMAGES {
                            return Err(InferenceError::invalid(
                                "messages",
                                format!("at most {MAX_IMAGES} images in one request"),
                            ));
                        }
                        found.push(data_url_image(&image.url, &format!("{at}.content[{j}]"))?);
                    }
                    ("image_url", _, None) => {
                        return Err(InferenceError::invalid(
                            "messages",
                            format!("{at}.content[{j}] is an image_url part without image_url.url"),
                        ));
                    }
                    (kind, _, _) => {
                        return Err(InferenceError::Unsupported(format!(
                            "content parts of type `{kind}` are not supported; send text or image_url"
                        )));
                    }
                }
            }
            Ok((text, found))
        }
    }
}

/// Checks an OpenAI request and turns it into a provider request.
pub fn to_chat_request(body: ChatCompletionRequest) -> Result<ChatRequest, InferenceError> {
    if body.model.trim().is_empty() {
        return Err(InferenceError::invalid("model", "model is required"));
    }
    if body.messages.is_empty() {
        return Err(InferenceError::invalid(
            "messages",
            "messages must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    let mut images = 0;
    for (i, message) in body.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(InferenceError::invalid(
                    "messages",
                    format!(
                        "messages[{i}].role `{other}` is not one of system, developer, user, assistant, tool"
                    ),
                ));
            }
        };
        let (text, images) =
            content_parts(message.content, &format!("messages[{i}]"), &mut images)?;
        if !images.is_empty() && role != Role::User {
            return Err(InferenceError::invalid(
                "messages",
                format!("messages[{i}]: only user messages may carry images"),
            ));
        }
        messages.push(ChatMessage::new(role, text).with_images(images));
    }
    if body.n.is_some_and(|n| n != 1) {
        return Err(InferenceError::invalid("n", "only n = 1 is supported"));
    }
    let temperature = body.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(InferenceError::invalid(
            "temperature",
            "temperature must be between 0 and 2",
        ));
    }
    let top_p = body.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(InferenceError::invalid(
            "top_p",
            "top_p must be greater than 0 and at most 1",
        ));
    }
    let max_tokens = body.max_completion_tokens.or(body.max_tokens);
    if max_tokens == Some(0) {
        return Err(InferenceError::invalid(
            "max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    let stop = body.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > 4 {
        return Err(InferenceError::invalid("stop", "at most 4 stop sequences"));
    }
    Ok(ChatRequest {
        model: body.model,
        messages,
        params: SamplingParams {
            temperature,
            top_p,
            max_tokens,
            stop,
            seed: body.seed.map(|s| s as u64),
        },
        response_format: body.response_format,
        stream: body.stream,
    })
}

fn unix_now() -> i64 {
    confab_core::now_ms() / 1000
}

/// Create a chat completion (OpenAI-compatible). With `stream: true` the answer arrives as
/// server-sent events, `data: <chunk>` each, ending with `data: [DONE]`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "inference", request_body = ChatCompletionRequest,
    responses(
        Authenticated<OpenAiErrorBody>, Forbidden<OpenAiErrorBody>, JsonBody<OpenAiErrorBody>,
        (status = 200, description = "The answer; with `stream: true`, server-sent events of ChatCompletionChunk ending with `data: [DONE]`",
            content((ChatCompletion = "application/json"), (String = "text/event-stream"))),
        (status = 400, body = OpenAiErrorBody, description = "invalid_request, context_length_exceeded, unsupported"),
        (status = 403, body = OpenAiErrorBody, description = "the API key lacks the inference scope"),
        (status = 404, body = OpenAiErrorBody, description = "model_not_found"),
        (status = 429, body = OpenAiErrorBody, description = "rate_limit_exceeded, tokens_exceeded (Retry-After)"),
        (status = 502, body = OpenAiErrorBody),
        (status = 503, body = OpenAiErrorBody, description = "the model is busy or its provider unavailable (with Retry-After when waiting helps), or the authentication service cannot be reached"),
        (status = 504, body = OpenAiErrorBody)),
    security(("bearer" = [])))]
async fn chat_completions(
    State(state): State<InferenceState>,
    InferenceCaller(principal): InferenceCaller,
    OpenAiJson(body): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    let stream_requested = body.stream;
    let include_usage = body
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let request = to_chat_request(body)?;
    let model = request.model.clone();
    let cancel = CancellationToken::new();
    // Dropping the response (the client went away) cancels the generation.
    let guard = cancel.clone().drop_guard();
    let answer = state
        .service
        .chat_completion(&principal, request, cancel)
        .await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = unix_now();
    let mut response = if stream_requested {
        stream_response(answer.stream, id, created, model, include_usage, guard)
    } else {
        collect_response(answer.stream, id, created, model).await?
    };
    add_headers(&mut response, &answer.allowance);
    Ok(response)
}

fn add_headers(response: &mut Response, allowance: &Allowance) {
    for (name, value) in &allowance.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
}

async fn collect_response(
    mut events: crate::types::ChatStream,
    id: String,
    created: i64,
    model: String,
) -> Result<Response, OpenAiError> {
    let mut content = String::new();
    let mut finished = None;
    while let Some(event) = events.next().await {
        match event? {
            ChatEvent::Started => {}
            ChatEvent::Delta(text) => content.push_str(&text),
            ChatEvent::Finished { reason, usage } => finished = Some((reason, usage)),
        }
    }
    let Some((finish_reason, usage)) = finished else {
        return Err(OpenAiError::from(InferenceError::Engine(
            "the answer ended without finishing".into(),
        )));
    };
    let completion = ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: Role::Assistant,
                content,
            },
            finish_reason,
            logprobs: None,
        }],
        usage,
    };
    Ok(axum::Json(completion).into_response())
}

fn chunk(
    id: &str,
    created: i64,
    model: &str,
    delta: Delta,
    finish_reason: Option<FinishReason>,
) -> ChatCompletionChunk {
    ChatCompletionChunk {
        id: id.to_owned(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.to_owned(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        }],
        usage: None,
    }
}

pub(super) fn data<T: Serialize>(value: &T) -> Result<Event, Infallible> {
    Ok(Event::default().data(json(value)))
}

/// The data of one event.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A comment line after this long without an event keeps the stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn stream_response(
    events: crate::types::ChatStream,
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    guard: tokio_util::sync::DropGuard,
) -> Response {
    let first = chunk(
        &id,
        created,
        &model,
        Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
        },
        None,
    );
    let body = futures::stream::once(async move { json(&first) })
        .chain(
            events
                .map(move |event| {
                    // The guard lives as long as the stream; when the client leaves, both go.
                    let _keep = &guard;
                    match event {
                        Ok(ChatEvent::Started) => Vec::new(),
                        Ok(ChatEvent::Delta(text)) => vec![json(&chunk(
                            &id,
                            created,
                            &model,
                            Delta {
                                role: None,
                                content: Some(text),
                            },
                            None,
                        ))],
                        Ok(ChatEvent::Finished { reason, usage }) => {
                            let mut out = vec![json(&chunk(&id, created, &model, Delta::default(), Some(reason)))];
                            if include_usage {
                                out.push(json(&usage_chunk(&id, created, &model, usage)));
                            }
                            out
                        }
                        Err(e) => {
                            let e = OpenAiError::from(e);
                            tracing::warn!(code = ?e.body.code, detail = ?e.internal, "stream failed after it began");
                            vec![json(&OpenAiErrorBody { error: e.body })]
                        }
                    }
                })
                .flat_map(futures::stream::iter),
        )
        .chain(futures::stream::once(async { "[DONE]".to_owned() }));
    // Events ready together go out as one frame: an answer produced at once is one write
    // here and one relay at the gateway, not one per event.
    confab_core::sse::response(body, KEEP_ALIVE)
}

fn usage_chunk(id: &str, created: i64, model: &str, usage: Usage) -> ChatCompletionChunk {
    ChatCompletionChunk {
        id: id.to_owned(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.to_owned(),
        choices: Vec::new(),
        usage: Some(usage),
    }
}

/// Create embeddings (OpenAI-compatible): float arrays, or base64 of little-endian float32.
#[utoipa::path(post, path = "/v1/embeddings", tag = "inference", request_body = EmbeddingRequest,
    responses(
        Authenticated<OpenAiErrorBody>, Forbidden<OpenAiErrorBody>, JsonBody<OpenAiErrorBody>,
        (status = 200, body = EmbeddingResponse),
        (status = 400, body = OpenAiErrorBody), (status = 404, body = OpenAiErrorBody, description = "model_not_found"),
        (status = 429, body = OpenAiErrorBody)),
    security(("bearer" = [])))]
async fn embeddings(
    State(state): State<InferenceState>,
    InferenceCaller(principal): InferenceCaller,
    OpenAiJson(body): OpenAiJson<EmbeddingRequest>,
) -> Result<Response, OpenAiError> {
    let texts = match body.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) => texts,
        EmbeddingInput::Tokens(_) => {
            return Err(InferenceError::Unsupported(
                "token arrays are not supported as input; send text".into(),
            )
            .into());
        }
    };
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(InferenceError::invalid(
                "encoding_format",
                format!("encoding_format `{other}` is not float or base64"),
            )
            .into());
        }
    };
    let cancel = CancellationToken::new();
    // Dropping the response (the client went away) stops a local encoder between batches.
    let _guard = cancel.clone().drop_guard();
    let request = EmbedRequest {
        model: body.model,
        texts,
    };
    let model = request.model.clone();
    let (embeddings, allowance) = state
        .service
        .embeddings(&principal, request, cancel)
        .await?;
    if let Some(dimensions) = body.dimensions
        && let Some(first) = embeddings.vectors.first()
        && first.len() != dimensions as usize
    {
        return Err(InferenceError::invalid(
            "dimensions",
            format!(
                "this model makes {}-dimensional embeddings; omit dimensions or ask for that",
                first.len()
            ),
        )
        .into());
    }
    let tokens = embeddings.prompt_tokens;
    let data = embeddings
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingData {
            object: "embedding".into(),
            index: u32::try_from(index).unwrap_or(u32::MAX),
            embedding: if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingValue::Float(vector)
            },
        })
        .collect();
    let mut response = axum::Json(EmbeddingResponse {
        object: "list".into(),
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    })
    .into_response();
    add_headers(&mut response, &allowance);
    Ok(response)
}

/// The models a request may name (OpenAI-compatible).
#[utoipa::path(get, path = "/v1/models", tag = "inference",
    responses(Authenticated<OpenAiErrorBody>, Forbidden<OpenAiErrorBody>,
        (status = 200, body = ModelList)),
    security(("bearer" = [])))]
async fn list_models(
    State(state): State<InferenceState>,
    _caller: InferenceCaller,
) -> Result<axum::Json<ModelList>, OpenAiError> {
    let data = super::models::models_off_thread(&state)
        .await
        .map_err(|e| InferenceError::Engine(e.to_string()))?
        .into_iter()
        .map(|m| ModelObject {
            id: m.id,
            object: "model".into(),
            created: 0,
            owned_by: m.provider,
        })
        .collect();
    Ok(axum::Json(ModelList {
        object: "list".into(),
        data,
    }))
}
