//! The OpenAI-compatible API: `POST /v1/chat/completions` (streamed as SSE or not) and
//! `GET /v1/models`, authenticated by a session token or an API key with the `inference`
//! scope, with errors in OpenAI's shape; and `GET /api/v1/models` with local model details.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use confab_core::auth::{CurrentUser, DynAuthenticator, Principal, Scope};
use futures::StreamExt;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{InferenceError, OpenAiError, OpenAiErrorBody};
use crate::limits::Allowance;
use crate::models::LocalModel;
use crate::service::InferenceService;
use crate::types::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatEvent,
    ChatMessage, ChatRequest, Choice, ChunkChoice, Delta, EmbedRequest, EmbeddingData,
    EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingValue,
    FinishReason, ModelList, ModelObject, Role, SamplingParams, Usage, WireContent,
};

#[derive(Clone)]
pub struct InferenceState {
    pub service: Arc<InferenceService>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<InferenceState> for DynAuthenticator {
    fn from_ref(state: &InferenceState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: InferenceState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings))
        .routes(routes!(list_models))
        .routes(routes!(installed_models))
        .routes(routes!(catalog))
        .routes(routes!(list_pulls, start_pull))
        .routes(routes!(pull_status, cancel_pull))
        .routes(routes!(pull_events))
        .routes(routes!(delete_model))
        .with_state(state)
}

/// A caller allowed to use models, with failures in OpenAI's error shape.
struct InferenceCaller(Principal);

impl<S> FromRequestParts<S> for InferenceCaller
where
    S: Send + Sync,
    DynAuthenticator: FromRef<S>,
{
    type Rejection = OpenAiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        principal.require_scope(Scope::Inference)?;
        Ok(InferenceCaller(principal))
    }
}

/// The refusal of a model the runtime settings do not let this user call.
/// A JSON body whose failures are in OpenAI's error shape.
struct OpenAiJson<T>(T);

impl<T, S> FromRequest<S> for OpenAiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = OpenAiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let confab_core::extract::Json(value) =
            confab_core::extract::Json::<T>::from_request(req, state).await?;
        Ok(OpenAiJson(value))
    }
}

fn content_text(content: Option<WireContent>) -> Result<String, InferenceError> {
    match content {
        None => Ok(String::new()),
        Some(WireContent::Text(text)) => Ok(text),
        Some(WireContent::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(InferenceError::Unsupported(format!(
                            "content parts of type `{kind}` are not supported; send text"
                        )));
                    }
                }
            }
            Ok(text)
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
        messages.push(ChatMessage::new(role, content_text(message.content)?));
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
        (status = 200, body = ChatCompletion, description = "The answer; or `text/event-stream` of ChatCompletionChunk when streaming"),
        (status = 400, body = OpenAiErrorBody, description = "invalid_request, context_length_exceeded, unsupported"),
        (status = 401, body = OpenAiErrorBody),
        (status = 403, body = OpenAiErrorBody, description = "the API key lacks the inference scope"),
        (status = 404, body = OpenAiErrorBody, description = "model_not_found"),
        (status = 429, body = OpenAiErrorBody, description = "rate_limit_exceeded, tokens_exceeded (Retry-After)"),
        (status = 502, body = OpenAiErrorBody), (status = 503, body = OpenAiErrorBody), (status = 504, body = OpenAiErrorBody),
    ),
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

fn data<T: Serialize>(value: &T) -> Result<Event, Infallible> {
    Ok(Event::default().data(serde_json::to_string(value).unwrap_or_default()))
}

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
    let body = futures::stream::once(async move { data(&first) })
        .chain(
            events
                .map(move |event| {
                    // The guard lives as long as the stream; when the client leaves, both go.
                    let _keep = &guard;
                    match event {
                        Ok(ChatEvent::Started) => Vec::new(),
                        Ok(ChatEvent::Delta(text)) => vec![data(&chunk(
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
                            let mut out = vec![data(&chunk(&id, created, &model, Delta::default(), Some(reason)))];
                            if include_usage {
                                out.push(data(&usage_chunk(&id, created, &model, usage)));
                            }
                            out
                        }
                        Err(e) => {
                            let e = OpenAiError::from(e);
                            tracing::warn!(code = ?e.body.code, detail = ?e.internal, "stream failed after it began");
                            vec![data(&OpenAiErrorBody { error: e.body })]
                        }
                    }
                })
                .flat_map(futures::stream::iter),
        )
        .chain(futures::stream::once(async { Ok(Event::default().data("[DONE]")) }));
    Sse::new(body)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response()
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
        (status = 200, body = EmbeddingResponse),
        (status = 400, body = OpenAiErrorBody), (status = 401, body = OpenAiErrorBody),
        (status = 403, body = OpenAiErrorBody), (status = 404, body = OpenAiErrorBody, description = "model_not_found"),
        (status = 429, body = OpenAiErrorBody),
    ),
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
    responses((status = 200, body = ModelList), (status = 401, body = OpenAiErrorBody)),
    security(("bearer" = [])))]
async fn list_models(
    State(state): State<InferenceState>,
    _caller: InferenceCaller,
) -> Result<axum::Json<ModelList>, OpenAiError> {
    let data = models_off_thread(&state)
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

/// The models the service knows, listed on a blocking thread: listing reads the models
/// directory (and the header of a new or changed GGUF file).
async fn models_off_thread(
    state: &InferenceState,
) -> Result<Vec<crate::service::ModelEntry>, tokio::task::JoinError> {
    let service = state.service.clone();
    tokio::task::spawn_blocking(move || service.models()).await
}

/// One installed or configured model with what is known about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledModel {
    pub id: String,
    /// `embedded` for local GGUF models, else the provider's name.
    pub provider: String,
    /// Local models only.
    pub local: Option<InstalledLocalModel>,
    /// The model used when a request names none.
    pub default: bool,
    /// Tokens of context a request may use (prompt and answer), where known: for local models
    /// the engine's context size capped by the model's own.
    pub context_tokens: Option<usize>,
}

/// A GGUF file of the local store as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledLocalModel {
    pub name: String,
    /// The file on the server: shown to admins only (`null` for everyone else).
    pub path: Option<String>,
    pub size_bytes: u64,
    /// Recorded at pull time.
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub meta: crate::gguf::GgufMeta,
}

impl InstalledLocalModel {
    /// The listing of `model`; its path only when `admin`, since a server's file layout
    /// helps attackers and is of no use to anyone else.
    fn of(model: LocalModel, admin: bool) -> Self {
        Self {
            name: model.name,
            path: admin.then(|| model.path.display().to_string()),
            size_bytes: model.size_bytes,
            sha256: model.sha256,
            meta: model.meta,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledModels {
    pub items: Vec<InstalledModel>,
}

/// Installed models with provider, size, quantization, parameters and context length (file
/// paths for admins only). API keys need the `inference` or `chat` scope.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = InstalledModels), (status = 401, body = confab_core::error::ErrorEnvelope),
        (status = 403, body = confab_core::error::ErrorEnvelope, description = "insufficient_scope: the API key has neither the `inference` nor the `chat` scope")),
    security(("bearer" = [])))]
async fn installed_models(
    State(state): State<InferenceState>,
    CurrentUser(principal): CurrentUser,
) -> Result<axum::Json<InstalledModels>, confab_core::ApiError> {
    // Chat clients list models to pick one, so either scope will do.
    if !principal.allows(Scope::Inference) && !principal.allows(Scope::Chat) {
        return Err(confab_core::ApiError::forbidden(
            "insufficient_scope",
            "this API key needs the `inference` or `chat` scope to list models",
        ));
    }
    let admin = principal.is_admin();
    let service = state.service.clone();
    // Off the async threads: listing reads the models directory, and context sizes and the
    // default model look the local models up again (answered from the store's cache).
    let items = tokio::task::spawn_blocking(move || {
        let default = service.default_model();
        service
            .models()
            .into_iter()
            .map(|m| InstalledModel {
                default: default.as_deref() == Some(m.id.as_str()),
                context_tokens: service.context_tokens(&m.id),
                id: m.id,
                provider: m.provider,
                local: m.local.map(|local| InstalledLocalModel::of(local, admin)),
            })
            .collect()
    })
    .await
    .map_err(|e| confab_core::ApiError::internal(format!("the model listing thread: {e}")))?;
    Ok(axum::Json(InstalledModels { items }))
}

/// Query of the catalog.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Words to look for in names, families and descriptions.
    pub q: Option<String>,
    /// Only models with this capability (`chat`, `tools`).
    pub capability: Option<String>,
    /// Only models at most this many bytes.
    pub max_size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogPage {
    /// The catalog file's version.
    pub version: u32,
    pub items: Vec<crate::catalog::CatalogEntry>,
}

/// Installable models from the curated catalog, best match first.
#[utoipa::path(get, path = "/api/v1/models/catalog", tag = "models", params(CatalogQuery),
    responses((status = 200, body = CatalogPage), (status = 401, body = confab_core::error::ErrorEnvelope)),
    security(("bearer" = [])))]
async fn catalog(
    State(state): State<InferenceState>,
    _user: CurrentUser,
    axum::extract::Query(query): axum::extract::Query<CatalogQuery>,
) -> axum::Json<CatalogPage> {
    let catalog = state.service.catalog();
    axum::Json(CatalogPage {
        version: catalog.version,
        items: catalog.search(
            query.q.as_deref(),
            query.capability.as_deref(),
            query.max_size,
        ),
    })
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// A catalog name, `org/repo/file.gguf` on Hugging Face, an https URL, a file in the
    /// server's import directory (`inference.import_dir`, when set), or
    /// `ollama:<provider>/<model>` to have a configured Ollama provider pull `model`.
    pub source: String,
    /// Refuse the file unless its sha256 is this (catalog entries bring their own).
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PullList {
    pub items: Vec<crate::pulls::PullStatus>,
}

fn api_error(e: crate::pulls::PullError) -> confab_core::ApiError {
    use crate::models::ModelStoreError;
    match e {
        crate::pulls::PullError::Source(e @ ModelStoreError::Forbidden(_)) => {
            confab_core::ApiError::validation("pull_target_forbidden", e.to_string())
        }
        crate::pulls::PullError::Source(
            e @ (ModelStoreError::LocalPath(_) | ModelStoreError::NotImportable(_)),
        ) => confab_core::ApiError::validation("local_path_forbidden", e.to_string()),
        crate::pulls::PullError::Source(e) => {
            confab_core::ApiError::validation("invalid_source", e.to_string())
        }
        crate::pulls::PullError::Provider(message) => {
            confab_core::ApiError::validation("invalid_source", message)
        }
        crate::pulls::PullError::Store(e) => confab_core::ApiError::internal(e.to_string()),
    }
}

/// Start pulling a model in the background (admin). Poll the returned id, or subscribe to
/// its events; an interrupted pull resumes.
#[utoipa::path(post, path = "/api/v1/models/pulls", tag = "models", request_body = PullRequest,
    responses(
        (status = 202, body = crate::pulls::PullStatus),
        (status = 403, body = confab_core::error::ErrorEnvelope),
        (status = 422, body = confab_core::error::ErrorEnvelope, description = "invalid_source; pull_target_forbidden: the URL is not https (inference.pull_allow_http) or its host is or resolves to an internal address (inference.pull_allow_private); local_path_forbidden: a server path outside inference.import_dir"),
    ),
    security(("bearer" = [])))]
async fn start_pull(
    State(state): State<InferenceState>,
    admin: confab_core::auth::AdminUser,
    client: confab_core::extract::ClientMeta,
    confab_core::extract::Json(body): confab_core::extract::Json<PullRequest>,
) -> Result<Response, confab_core::ApiError> {
    let (source, sha256) = match state
        .service
        .catalog()
        .models
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(&body.source))
    {
        Some(entry) => (
            entry.source.clone(),
            body.sha256.or_else(|| entry.sha256.clone()),
        ),
        None => (body.source.clone(), body.sha256),
    };
    if sha256
        .as_deref()
        .is_some_and(|s| s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(confab_core::ApiError::validation(
            "invalid_sha256",
            "sha256 must be 64 hex digits",
        ));
    }
    let status = state
        .service
        .pulls()
        .start(&source, sha256, Some(admin.principal().user_id))
        .await
        .map_err(api_error)?;
    state
        .service
        .audit(
            confab_core::audit::AuditEvent::new(
                "model.pull_started",
                confab_core::audit::Outcome::Success,
                &client,
            )
            .actor(admin.principal().user_id)
            .target(status.model.clone())
            .details(serde_json::json!({"source": source, "pull": status.id})),
        )
        .await;
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}

/// Recent pulls with their state and progress (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls", tag = "models",
    responses((status = 200, body = PullList), (status = 403, body = confab_core::error::ErrorEnvelope)),
    security(("bearer" = [])))]
async fn list_pulls(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
) -> Result<axum::Json<PullList>, confab_core::ApiError> {
    Ok(axum::Json(PullList {
        items: state.service.pulls().list().await.map_err(api_error)?,
    }))
}

/// One pull's state and progress (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls/{id}", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = crate::pulls::PullStatus), (status = 403, body = confab_core::error::ErrorEnvelope), (status = 404, body = confab_core::error::ErrorEnvelope)),
    security(("bearer" = [])))]
async fn pull_status(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<axum::Json<crate::pulls::PullStatus>, confab_core::ApiError> {
    state
        .service
        .pulls()
        .status(id)
        .await
        .map_err(api_error)?
        .map(axum::Json)
        .ok_or_else(|| confab_core::ApiError::not_found("no such pull"))
}

/// Cancel a running pull (admin); pulling the same source again resumes it.
#[utoipa::path(delete, path = "/api/v1/models/pulls/{id}", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Cancelled"), (status = 403, body = confab_core::error::ErrorEnvelope), (status = 404, body = confab_core::error::ErrorEnvelope)),
    security(("bearer" = [])))]
async fn cancel_pull(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<StatusCode, confab_core::ApiError> {
    let cancelled = state
        .service
        .pulls()
        .cancel(id)
        .await
        .map_err(|e| confab_core::ApiError::internal(e.to_string()))?;
    if cancelled {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(confab_core::ApiError::not_found(
            "no running pull with this id",
        ))
    }
}

/// Progress of a pull as server-sent events (`data: <PullStatus>`), until it ends (admin).
#[utoipa::path(get, path = "/api/v1/models/pulls/{id}/events", tag = "models", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "text/event-stream of PullStatus"), (status = 403, body = confab_core::error::ErrorEnvelope), (status = 404, body = confab_core::error::ErrorEnvelope)),
    security(("bearer" = [])))]
async fn pull_events(
    State(state): State<InferenceState>,
    _admin: confab_core::auth::AdminUser,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<Response, confab_core::ApiError> {
    let Some(receiver) = state.service.pulls().subscribe(id) else {
        // Not running here: one event with the recorded state.
        let status = state
            .service
            .pulls()
            .status(id)
            .await
            .map_err(api_error)?
            .ok_or_else(|| confab_core::ApiError::not_found("no such pull"))?;
        let once = futures::stream::once(async move { data(&status) });
        return Ok(Sse::new(once).into_response());
    };
    let updates = futures::stream::unfold((receiver, false), |(mut receiver, done)| async move {
        if done {
            return None;
        }
        let status = receiver.borrow_and_update().clone();
        let finished = status.state.is_final();
        if !finished && receiver.changed().await.is_err() {
            return Some((data(&status), (receiver, true)));
        }
        Some((data(&status), (receiver, finished)))
    });
    Ok(Sse::new(updates)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response())
}

/// Delete a local model, or a model of an Ollama provider named `ollama:<provider>/<model>`
/// (the slash written `%2F`) (admin).
#[utoipa::path(delete, path = "/api/v1/models/{name}", tag = "models", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = confab_core::error::ErrorEnvelope), (status = 404, body = confab_core::error::ErrorEnvelope),
        (status = 502, body = confab_core::error::ErrorEnvelope, description = "upstream_error: the Ollama server failed")),
    security(("bearer" = [])))]
async fn delete_model(
    State(state): State<InferenceState>,
    admin: confab_core::auth::AdminUser,
    client: confab_core::extract::ClientMeta,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<StatusCode, confab_core::ApiError> {
    match state.service.delete_ollama(&name).await {
        Some(Ok(())) => {}
        Some(Err(InferenceError::ModelNotFound(model))) => {
            return Err(confab_core::ApiError::not_found(format!(
                "the Ollama server has no model `{model}`"
            )));
        }
        Some(Err(e)) => {
            return Err(confab_core::ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                format!("the Ollama server refused the deletion: {e}"),
            ));
        }
        None => state
            .service
            .delete_local(&name)
            .await
            .map_err(|e| match e {
                crate::models::ModelStoreError::NotFound(_) => {
                    confab_core::ApiError::not_found(format!("no local model named `{name}`"))
                }
                other => confab_core::ApiError::internal(other.to_string()),
            })?,
    }
    state
        .service
        .audit(
            confab_core::audit::AuditEvent::new(
                "model.deleted",
                confab_core::audit::Outcome::Success,
                &client,
            )
            .actor(admin.principal().user_id)
            .target(name),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
