//! The chat API under `/api/v1`: conversations, their messages and branches, answers as
//! server-sent events that a client can re-attach to, and presets. Every route needs a signed-in
//! user (an API key needs the `chat` scope) and sees only that user's data: another user's
//! ids answer 404, as missing ones do.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{CurrentUser, DynAuthenticator, Principal, Scope};
use confab_core::error::ErrorEnvelope;
use confab_core::extract::{ClientMeta, Json};
use confab_core::pagination::{Page, PageParams, encode_cursor};
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{
    Conversation, Message, Params, Preset, Reaction, SearchHit, ShareLink, SharedConversation,
};
use crate::ports::ModelError;
use crate::ports::{Branches, ConversationChanges, ConversationFilter, ConversationPosition};
use crate::service::{ChatError, ChatService, ConversationInput, Follow, SendInput};

#[derive(Clone)]
pub struct ChatState {
    pub service: Arc<ChatService>,
    pub authenticator: DynAuthenticator,
    /// Where creating and revoking share links is recorded.
    pub audit: Arc<dyn AuditLog>,
}

impl FromRef<ChatState> for DynAuthenticator {
    fn from_ref(state: &ChatState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: ChatState) -> OpenApiRouter {
    // Imports have their own body limit (`chat.import_limit_bytes`; the server's usual one is
    // far smaller).
    let import_limit = state.service.settings().import_limit_bytes;
    let imports = OpenApiRouter::new()
        .routes(routes!(import))
        .layer(axum::extract::DefaultBodyLimit::max(import_limit));
    // Share pages are for whoever holds the link, never for a cache on the way or the
    // browser's history store to keep once the link is revoked.
    let shares = OpenApiRouter::new()
        .routes(routes!(shared))
        .routes(routes!(shared_page))
        .layer(axum::middleware::map_response(no_store));
    OpenApiRouter::new()
        .merge(imports)
        .routes(routes!(export_all))
        .routes(routes!(export_one))
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(
            get_conversation,
            update_conversation,
            delete_conversation
        ))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(regenerate))
        .routes(routes!(stop))
        .routes(routes!(follow))
        .routes(routes!(search))
        .routes(routes!(websocket))
        .routes(routes!(bulk))
        .routes(routes!(list_shares, create_share))
        .routes(routes!(revoke_share))
        .merge(shares)
        .routes(routes!(add_reaction))
        .routes(routes!(remove_reaction))
        .routes(routes!(list_presets, create_preset))
        .routes(routes!(update_preset, delete_preset))
        .with_state(state)
}

/// Marks a response as not to be stored by any cache (error responses too).
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// A signed-in user allowed to chat.
struct Chatter(Principal);

impl<S> FromRequestParts<S> for Chatter
where
    S: Send + Sync,
    DynAuthenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        principal.require_scope(Scope::Chat)?;
        Ok(Chatter(principal))
    }
}

/// A model call's failure as the chat API answers it: the user's own mistake (an unknown or
/// refused model, a prompt too long) is 422, their limits 429, the platform's trouble 503 —
/// with the error's safe message; internal detail only in the log.
fn model_error(e: &ModelError) -> ApiError {
    let message = e.public_message();
    let error = match e {
        ModelError::ModelNotFound(_) => ApiError::validation("unknown_model", message),
        ModelError::Limited { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
        ModelError::Upstream { status: 429, .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
        ModelError::ModelNotAllowed(_)
        | ModelError::InvalidRequest { .. }
        | ModelError::ContextLengthExceeded(_)
        | ModelError::Unsupported(_) => ApiError::validation("model_refused", message),
        ModelError::Upstream { status, .. } if (400..500).contains(status) => {
            ApiError::validation("model_refused", message)
        }
        ModelError::Busy { .. }
        | ModelError::Upstream { .. }
        | ModelError::Unavailable(_)
        | ModelError::Timeout
        | ModelError::Engine(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
            message,
        ),
    };
    let error = match e.retry_after_secs() {
        Some(secs) => error.with_retry_after(secs),
        None => error,
    };
    match e.internal() {
        Some(detail) => error.with_internal(detail),
        None => error,
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound(what) => ApiError::not_found(what),
            ChatError::Invalid {
                code,
                message,
                details,
            } => {
                let error = ApiError::validation(code, message);
                if details.len() > 1 {
                    error.with_details(details)
                } else {
                    error
                }
            }
            ChatError::Conflict(code, message) => ApiError::conflict(code, message),
            ChatError::NoModel => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                e.to_string(),
            ),
            ChatError::Model(e) => model_error(&e),
            ChatError::Store(confab_store::StoreError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            ChatError::Store(other) => ApiError::internal(other.to_string()),
            ChatError::Busy {
                code,
                message,
                retry_after_secs,
            } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
                .with_retry_after(retry_after_secs),
            ChatError::TooMany { code, message } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            }
            ChatError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

/// Reads a field that may be absent (unchanged), `null` (cleared) or a value.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    pub title: Option<String>,
    /// A model or alias; unset: the server's default model at each message.
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Option<Params>,
    pub folder: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Take the system prompt and parameters of this preset (fields given here win).
    pub preset_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    pub title: Option<String>,
    /// `null` clears it (the default model is used).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub system_prompt: Option<Option<String>>,
    pub params: Option<Params>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub folder: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    /// Switch branches: any message of the conversation; the newest message under it becomes
    /// the active leaf.
    pub active_message_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    pub folder: Option<String>,
    pub tag: Option<String>,
    /// `true` lists archived conversations instead of the others.
    pub archived: Option<bool>,
    pub pinned: Option<bool>,
}

/// Create a conversation.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "chat", request_body = CreateConversation,
    responses((status = 201, body = Conversation), (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope, description = "invalid_body, unknown_model")),
    security(("bearer" = [])))]
async fn create_conversation(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Json(body): Json<CreateConversation>,
) -> Result<(StatusCode, axum::Json<Conversation>), ApiError> {
    let conversation = state
        .service
        .create_conversation(
            &principal,
            ConversationInput {
                title: body.title,
                model: body.model,
                system_prompt: body.system_prompt,
                params: body.params,
                folder: body.folder,
                tags: body.tags,
                preset_id: body.preset_id,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(conversation)))
}

/// The user's conversations by last activity, newest first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "chat", params(ListQuery),
    responses((status = 200, body = Page<Conversation>), (status = 400, body = ErrorEnvelope, description = "invalid_cursor, invalid_limit"), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn list_conversations(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Conversation>>, ApiError> {
    let page = PageParams {
        cursor: query.cursor,
        limit: query.limit,
    };
    let limit = page.limit()?;
    let after = page.position::<ConversationPosition>()?;
    let filter = ConversationFilter {
        folder: query.folder,
        tag: query.tag,
        archived: query.archived,
        pinned: query.pinned,
    };
    let rows = state
        .service
        .list(&principal, &filter, after, limit + 1)
        .await?;
    Ok(axum::Json(Page::from_rows(rows, limit, |c| {
        encode_cursor(&ConversationPosition {
            updated_at: c.updated_at,
            id: c.id,
        })
    })))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn get_conversation(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(
        state.service.conversation(&principal, id).await?,
    ))
}

/// Change a conversation: any of its fields, or the branch shown.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    request_body = UpdateConversation,
    responses((status = 200, body = Conversation), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn update_conversation(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateConversation>,
) -> Result<axum::Json<Conversation>, ApiError> {
    let changes = ConversationChanges {
        title: body.title,
        model: body.model,
        system_prompt: body.system_prompt,
        params: body.params,
        folder: body.folder,
        tags: body.tags,
        pinned: body.pinned,
        archived: body.archived,
        active_leaf_id: body.active_message_id,
    };
    Ok(axum::Json(
        state.service.update(&principal, id, changes).await?,
    ))
}

/// Delete a conversation with all its messages.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn delete_conversation(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message on the active branch with its place among its siblings.
#[derive(Debug, Serialize, ToSchema)]
pub struct PathMessage {
    #[serde(flatten)]
    pub message: Message,
    pub branches: Branches,
    pub reactions: Vec<Reaction>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// The active branch, first message first.
    pub items: Vec<PathMessage>,
}

/// The messages of the active branch, with branch navigation data.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = MessageList), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn list_messages(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MessageList>, ApiError> {
    let path = state.service.active_path(&principal, id).await?;
    let ids: Vec<Uuid> = path.iter().map(|(m, _)| m.id).collect();
    let mut reactions = state.service.reactions(&principal, &ids).await?;
    Ok(axum::Json(MessageList {
        items: path
            .into_iter()
            .map(|(message, branches)| PathMessage {
                reactions: reactions.remove(&message.id).unwrap_or_default(),
                message,
                branches,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub content: String,
    /// Continue from this message instead of the active leaf. To edit a message, send the
    /// new text with the edited message's `parent_id`: it becomes a sibling branch. `null`
    /// starts from the top: a new first message (how the first message is edited).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
    /// Ask this model for this answer instead of the conversation's.
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RegenerateBody {
    pub model: Option<String>,
}

/// The first event of an answer's stream: the messages it concerns.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamStart {
    /// The message just stored (absent for a regeneration).
    pub user_message: Option<Message>,
    pub assistant_message: Message,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeltaEvent {
    pub message_id: Uuid,
    /// Characters (Unicode scalar values) of the answer before this piece.
    pub offset: usize,
    pub content: String,
}

fn json_event(name: &'static str, value: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_default())
}

/// The answer's events as SSE: `delta` (with `id:` the offset after it, so `Last-Event-ID`
/// resumes exactly), then `done` with the saved message.
fn sse(
    start: Option<StreamStart>,
    message_id: Uuid,
    events: futures::stream::BoxStream<'static, Follow>,
) -> Response {
    let first = start.map(|s| Ok::<_, Infallible>(json_event("message", &s)));
    let rest = events.map(move |event| {
        Ok(match event {
            Follow::Delta { offset, content } => {
                let end = offset + content.chars().count();
                json_event(
                    "delta",
                    &DeltaEvent {
                        message_id,
                        offset,
                        content,
                    },
                )
                .id(end.to_string())
            }
            Follow::Done(message) => json_event("done", &message),
        })
    });
    Sse::new(futures::stream::iter(first).chain(rest))
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response()
}

/// Send a message and stream the answer (SSE: `message`, `delta`…, `done`). The message is
/// stored before the model is called; the answer goes on if the client disconnects, and can be
/// followed again from `…/messages/{mid}/stream`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat", params(("id" = Uuid, Path)),
    request_body = SendMessage,
    responses((status = 200, content_type = "text/event-stream", description = "events `message` (StreamStart), `delta` (DeltaEvent), `done` (Message)"),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope, description = "empty_message, message_too_long, unknown_model"),
        (status = 429, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope, description = "model_unavailable")),
    security(("bearer" = [])))]
async fn send_message(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
    Json(body): Json<SendMessage>,
) -> Result<Response, ApiError> {
    let sent = state
        .service
        .send(
            &principal,
            id,
            SendInput {
                content: body.content,
                parent_id: body.parent_id.flatten(),
                from_root: body.parent_id == Some(None),
                model: body.model,
            },
        )
        .await?;
    let answer_id = sent.assistant_message.id;
    let events = state.service.follow(&principal, id, answer_id, 0).await?;
    Ok(sse(
        Some(StreamStart {
            user_message: Some(sent.user_message),
            assistant_message: sent.assistant_message,
        }),
        answer_id,
        events,
    ))
}

/// Generate another answer to the same question: a new sibling branch, streamed like a send.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{mid}/regenerate", tag = "chat",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path)), request_body(content = Option<RegenerateBody>),
    responses((status = 200, content_type = "text/event-stream"), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn regenerate(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path((id, mid)): Path<(Uuid, Uuid)>,
    confab_core::extract::OptionalJson(body): confab_core::extract::OptionalJson<RegenerateBody>,
) -> Result<Response, ApiError> {
    let model = body.unwrap_or_default().model;
    let answer = state.service.regenerate(&principal, id, mid, model).await?;
    let events = state.service.follow(&principal, id, answer.id, 0).await?;
    Ok(sse(
        Some(StreamStart {
            user_message: None,
            assistant_message: answer.clone(),
        }),
        answer.id,
        events,
    ))
}

/// Stop an answer being generated; its text so far is kept with status `stopped`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{mid}/stop", tag = "chat",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path)),
    responses((status = 202, description = "Stopping"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope, description = "not_streaming")),
    security(("bearer" = [])))]
async fn stop(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path((id, mid)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state.service.stop(&principal, id, mid).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowQuery {
    /// Characters already received; the stream continues after them. `Last-Event-ID` (as an
    /// EventSource sends on reconnecting) is used when this is absent.
    pub offset: Option<usize>,
}

/// Re-attach to an answer: live while it is generated, else from its saved text.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages/{mid}/stream", tag = "chat",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path), FollowQuery),
    responses((status = 200, content_type = "text/event-stream", description = "events `delta`, `done`"),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope, description = "invalid_offset, not_an_answer")),
    security(("bearer" = [])))]
async fn follow(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path((id, mid)): Path<(Uuid, Uuid)>,
    Query(query): Query<FollowQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let offset = match query.offset {
        Some(offset) => offset,
        None => match headers.get("last-event-id") {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::validation(
                        "invalid_offset",
                        "Last-Event-ID must be an offset given by this stream",
                    )
                })?,
            None => 0,
        },
    };
    let events = state.service.follow(&principal, id, mid, offset).await?;
    Ok(sse(None, mid, events))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Lossless, every branch; imports back.
    #[default]
    Json,
    /// The active branch of each conversation, for reading.
    Markdown,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `markdown`.
    pub format: Option<ExportFormat>,
}

fn attachment(content_type: &'static str, name: &str, body: String) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, content_type.to_owned()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Export one conversation: JSON with every branch (re-importable) or Markdown.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/export", tag = "chat",
    params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, body = crate::transfer::Export, description = "JSON (an export of one conversation) or text/markdown"),
        (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn export_one(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    match query.format.unwrap_or_default() {
        ExportFormat::Json => {
            let conversation = state.service.export_one(&principal, id).await?;
            let export = crate::transfer::Export {
                format: crate::transfer::FORMAT.into(),
                version: crate::transfer::VERSION,
                exported_at: confab_core::now_ms(),
                conversations: vec![conversation],
            };
            let body = serde_json::to_string_pretty(&export)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(attachment(
                "application/json",
                &format!("conversation-{id}.json"),
                body,
            ))
        }
        ExportFormat::Markdown => {
            let body = state.service.markdown(&principal, id).await?;
            Ok(attachment(
                "text/markdown; charset=utf-8",
                &format!("conversation-{id}.md"),
                body,
            ))
        }
    }
}

/// Export all of the user's conversations (archived ones too).
#[utoipa::path(get, path = "/api/v1/conversations/export", tag = "chat", params(ExportQuery),
    responses((status = 200, body = crate::transfer::Export, description = "JSON, or text/markdown of every active branch")),
    security(("bearer" = [])))]
async fn export_all(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let export = state.service.export_all(&principal).await?;
    match query.format.unwrap_or_default() {
        ExportFormat::Json => {
            let body = serde_json::to_string_pretty(&export)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(attachment("application/json", "conversations.json", body))
        }
        ExportFormat::Markdown => {
            let mut body = String::new();
            for conversation in &export.conversations {
                body.push_str(&state.service.markdown(&principal, conversation.id).await?);
                body.push_str("\n---\n\n");
            }
            Ok(attachment(
                "text/markdown; charset=utf-8",
                "conversations.md",
                body,
            ))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub imported: usize,
    pub conversation_ids: Vec<Uuid>,
}

/// Import conversations: a Confab JSON export or ChatGPT's `conversations.json` (up to
/// `chat.import_limit_bytes`, 32 MiB by default; a ChatGPT conversation of at most 20,000
/// nodes). The file is checked whole first; a bad file changes nothing and the error lists its
/// first problems with where they are. A few imports are read at once; another is refused with
/// 503 and `Retry-After`.
#[utoipa::path(post, path = "/api/v1/conversations/import", tag = "chat",
    request_body(content = crate::transfer::Export, description = "a Confab export, or ChatGPT's conversations.json"),
    responses((status = 201, body = ImportResult), (status = 413, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope, description = "invalid_import, with details; import_too_large"),
        (status = 503, body = ErrorEnvelope, description = "imports_busy, with Retry-After")),
    security(("bearer" = [])))]
async fn import(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<ImportResult>), ApiError> {
    let ids = state.service.import(&principal, body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ImportResult {
            imported: ids.len(),
            conversation_ids: ids,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The access token, for browsers (which cannot set headers on a WebSocket); other
    /// clients may send `Authorization: Bearer` instead.
    pub access_token: Option<String>,
}

/// How often the server pings a real-time connection, and how long it waits for any sign of
/// life before closing it.
const WS_PING: Duration = Duration::from_secs(20);
const WS_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon an access token found still valid at its expiry is checked again.
const WS_EXPIRY_RETRY: Duration = Duration::from_secs(5);

/// Real-time events for the signed-in user's tabs (WebSocket). Each text frame is
/// `{"type", "data", "at"}`: `message.created`, `message.delta`, `message.completed`,
/// `conversation.updated`, `conversation.deleted`, `conversations.changed`, `typing`,
/// `reaction`, `presence`; `resync` when events were missed (reload from the API); `hello`
/// first. The server pings every 20 s and closes a connection silent for 60 s. The credential
/// is checked again when the user's access is revoked (logout, lock, disable, role or
/// password change) and when the access token expires: a credential no longer valid closes
/// the socket with code 1008 (policy violation). A user may hold `chat.sockets_per_user`
/// connections (16 by default) in one process; another is refused with 429.
#[utoipa::path(get, path = "/api/v1/ws", tag = "chat", params(WsQuery),
    responses((status = 101, description = "Switching to WebSocket"), (status = 401, body = ErrorEnvelope),
        (status = 426, body = ErrorEnvelope, description = "upgrade_required: not a WebSocket request"),
        (status = 429, body = ErrorEnvelope, description = "too_many_sockets")),
    security(("bearer" = [])))]
async fn websocket(
    State(state): State<ChatState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response, ApiError> {
    let header_token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let token = header_token.or(query.access_token).ok_or_else(|| {
        ApiError::unauthorized("sign in: send ?access_token= or Authorization: Bearer")
    })?;
    let principal = state.authenticator.authenticate(&token).await?;
    principal.require_scope(Scope::Chat)?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket only",
        )
    })?;
    // Held by the connection until it ends (dropped with it if the upgrade fails).
    let slot = state.service.reserve_socket(principal.user_id)?;
    let connection = Connection {
        service: state.service.clone(),
        authenticator: state.authenticator.clone(),
        expires_at: token_expiry(&token),
        token,
        principal,
    };
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| realtime(connection, slot, socket)))
}

/// What one real-time connection holds: the credential it was opened with, checked again
/// whenever the user's access may have changed.
struct Connection {
    service: Arc<ChatService>,
    authenticator: DynAuthenticator,
    token: String,
    principal: Principal,
    /// When the access token expires (Unix seconds); API keys do not.
    expires_at: Option<i64>,
}

/// The `exp` of a JWT (an access token, or a service token behind its `cfs_` prefix), read
/// without checking the signature: the token was verified when the socket opened, and this
/// only decides when to verify it again.
fn token_expiry(token: &str) -> Option<i64> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Claims {
        exp: i64,
    }
    let jwt = token.strip_prefix("cfs_").unwrap_or(token);
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Claims>(&bytes).ok().map(|c| c.exp)
}

/// The moment to check an expiring credential again: just after it expires.
fn expiry_deadline(expires_at: i64) -> tokio::time::Instant {
    let left_ms = expires_at
        .saturating_mul(1000)
        .saturating_sub(confab_core::now_ms())
        .saturating_add(500)
        .max(0);
    tokio::time::Instant::now() + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// Why a connection must end, as a WebSocket close frame.
struct Refused {
    code: u16,
    reason: String,
}

impl Connection {
    /// Authenticates the connection's credential again (the auth service clears its caches
    /// before it announces a revocation, so this sees the change).
    async fn recheck(&mut self) -> Result<(), Refused> {
        use axum::extract::ws::close_code;
        match self.authenticator.authenticate(&self.token).await {
            Ok(principal)
                if principal.user_id == self.principal.user_id && principal.allows(Scope::Chat) =>
            {
                self.principal = principal;
                Ok(())
            }
            Ok(_) => Err(Refused {
                code: close_code::POLICY,
                reason: "the credential no longer allows chat".into(),
            }),
            // Not a refusal: the client reconnects later and is checked then.
            Err(confab_core::auth::AuthFailure::Unavailable(_)) => Err(Refused {
                code: close_code::AGAIN,
                reason: "authentication is unavailable; reconnect".into(),
            }),
            Err(failure) => Err(Refused {
                code: close_code::POLICY,
                reason: failure.to_string(),
            }),
        }
    }
}

/// One real-time connection: the user's events out, heartbeats both ways, and the
/// credential checked again on revocation events, after missed events and at its expiry.
async fn realtime(
    mut connection: Connection,
    slot: crate::service::SocketSlot,
    mut socket: axum::extract::ws::WebSocket,
) {
    use axum::extract::ws::{CloseFrame, Message as Frame};
    use confab_bus::events::AccessRevoked;
    let service = connection.service.clone();
    let user = connection.principal.user_id;
    let mut events = service.events().subscribe(&confab_bus::user_topic(user));
    service.announce_presence(user).await;
    let frame = |kind: &str, data: serde_json::Value, at: i64| {
        Frame::Text(
            serde_json::json!({"type": kind, "data": data, "at": at})
                .to_string()
                .into(),
        )
    };
    let hello = frame(
        "hello",
        serde_json::json!({"user_id": user}),
        confab_core::now_ms(),
    );
    let mut ping = tokio::time::interval(WS_PING);
    ping.tick().await;
    let mut last_seen = tokio::time::Instant::now();
    let mut recheck_at = connection.expires_at.map(expiry_deadline);
    let mut refused = None;
    if socket.send(hello).await.is_ok() {
        loop {
            let expiry = async {
                match recheck_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = events.next() => {
                    let out = match received {
                        // Access changed: check the credential; the event itself is not
                        // for the browser.
                        Some(confab_bus::Received::Event(e)) if e.kind == <AccessRevoked as confab_bus::TypedEvent>::KIND => {
                            if let Err(r) = connection.recheck().await {
                                refused = Some(r);
                                break;
                            }
                            continue;
                        }
                        Some(confab_bus::Received::Event(e)) => frame(&e.kind, e.data, e.at),
                        // Fell behind: the client reloads rather than the server buffering.
                        // A revocation may be among the missed events: check first.
                        Some(confab_bus::Received::Lagged(missed)) => {
                            if let Err(r) = connection.recheck().await {
                                refused = Some(r);
                                break;
                            }
                            frame(
                                "resync",
                                serde_json::json!({"missed": missed}),
                                confab_core::now_ms(),
                            )
                        }
                        None => break,
                    };
                    if socket.send(out).await.is_err() {
                        break;
                    }
                }
                () = expiry => {
                    if let Err(r) = connection.recheck().await {
                        refused = Some(r);
                        break;
                    }
                    // Still valid (clocks differ a little): look again shortly.
                    recheck_at = Some(tokio::time::Instant::now() + WS_EXPIRY_RETRY);
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(Frame::Text(text))) => {
                        last_seen = tokio::time::Instant::now();
                        if text.as_str().contains("\"ping\"") {
                            let pong = frame("pong", serde_json::Value::Null, confab_core::now_ms());
                            if socket.send(pong).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(_)) => last_seen = tokio::time::Instant::now(),
                },
                _ = ping.tick() => {
                    if last_seen.elapsed() > WS_TIMEOUT
                        || socket.send(Frame::Ping(Vec::new().into())).await.is_err()
                    {
                        break;
                    }
                }
            }
        }
    }
    if let Some(Refused { code, reason }) = refused {
        tracing::info!(%user, code, reason, "real-time connection closed: access ended");
        let close = Frame::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = socket.send(close).await;
    }
    drop(events);
    drop(slot);
    service.announce_presence(user).await;
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// 1 to 500 conversation ids; ids that are not the caller's are skipped.
    pub ids: Vec<Uuid>,
    pub action: crate::ports::BulkAction,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub affected: u64,
}

/// Archive, unarchive or delete many conversations at once.
#[utoipa::path(post, path = "/api/v1/conversations/bulk", tag = "chat", request_body = BulkRequest,
    responses((status = 200, body = BulkResult), (status = 422, body = ErrorEnvelope, description = "invalid_ids")),
    security(("bearer" = [])))]
async fn bulk(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Json(body): Json<BulkRequest>,
) -> Result<axum::Json<BulkResult>, ApiError> {
    let affected = state
        .service
        .bulk(&principal, &body.ids, body.action)
        .await?;
    Ok(axum::Json(BulkResult { affected }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareList {
    pub items: Vec<ShareLink>,
}

/// Make a read-only link to a snapshot of the conversation's active branch.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/shares", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 201, body = ShareLink), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope, description = "nothing_to_share")),
    security(("bearer" = [])))]
async fn create_share(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<ShareLink>), ApiError> {
    let link = state.service.share(&principal, id).await?;
    // The token is the secret of the link: only its start is kept, to tell links apart.
    let token_start: String = link.token.chars().take(6).collect();
    let _ = state
        .audit
        .record(
            AuditEvent::new("chat.share_created", Outcome::Success, &client)
                .actor(principal.user_id)
                .target(id.to_string())
                .details(serde_json::json!({"token_start": token_start})),
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(link)))
}

/// The conversation's share links, revoked ones included.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/shares", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = ShareList), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn list_shares(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShareList>, ApiError> {
    Ok(axum::Json(ShareList {
        items: state.service.shares(&principal, id).await?,
    }))
}

/// Revoke a share link: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/shares/{token}", tag = "chat", params(("token" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn revoke_share(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    client: ClientMeta,
    Path(token): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_share(&principal, &token).await?;
    let token_start: String = token.chars().take(6).collect();
    let _ = state
        .audit
        .record(
            AuditEvent::new("chat.share_revoked", Outcome::Success, &client)
                .actor(principal.user_id)
                .details(serde_json::json!({"token_start": token_start})),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A shared conversation (public: no sign-in; only what the link's snapshot holds).
#[utoipa::path(get, path = "/api/v1/shared/{token}", tag = "chat", params(("token" = String, Path)),
    responses((status = 200, body = SharedConversation), (status = 404, body = ErrorEnvelope)))]
async fn shared(
    State(state): State<ChatState>,
    Path(token): Path<String>,
) -> Result<axum::Json<SharedConversation>, ApiError> {
    Ok(axum::Json(state.service.shared(&token).await?))
}

/// A shared conversation as a page (public; server-rendered, no scripts).
#[utoipa::path(get, path = "/s/{token}", tag = "chat", params(("token" = String, Path)),
    responses((status = 200, content_type = "text/html", description = "The page"), (status = 404, body = ErrorEnvelope)))]
async fn shared_page(
    State(state): State<ChatState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    use confab_core::html::escape;
    let shared = state.service.shared(&token).await?;
    let title = if shared.title.is_empty() {
        "Shared conversation".to_owned()
    } else {
        shared.title.clone()
    };
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}\
         .m{{white-space:pre-wrap;padding:.75rem 1rem;border-radius:.5rem;margin:.5rem 0}}\
         .user{{background:#eef}}.assistant{{background:#f4f4f4}}small{{color:#666}}</style></head>\
         <body><h1>{t}</h1><p><small>Shared from Confab (read-only)</small></p>",
        t = escape(&title)
    );
    for message in &shared.messages {
        let (class, who) = match message.role {
            crate::domain::Author::User => ("user", "User"),
            crate::domain::Author::Assistant => ("assistant", "Assistant"),
        };
        body.push_str(&format!(
            "<section class=\"m {class}\"><strong>{who}</strong>\n{}</section>",
            escape(&message.content)
        ));
    }
    body.push_str("</body></html>");
    // Its own policy: no scripts or outside resources at all, the inline style allowed.
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionBody {
    pub emoji: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionList {
    pub items: Vec<Reaction>,
}

/// React to a message (idempotent); answers with the message's reactions.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{mid}/reactions", tag = "chat",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path)), request_body = ReactionBody,
    responses((status = 200, body = ReactionList), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope, description = "invalid_reaction")),
    security(("bearer" = [])))]
async fn add_reaction(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path((id, mid)): Path<(Uuid, Uuid)>,
    Json(body): Json<ReactionBody>,
) -> Result<axum::Json<ReactionList>, ApiError> {
    let items = state
        .service
        .react(&principal, id, mid, &body.emoji, true)
        .await?;
    Ok(axum::Json(ReactionList { items }))
}

/// Take back a reaction.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/messages/{mid}/reactions/{emoji}", tag = "chat",
    params(("id" = Uuid, Path), ("mid" = Uuid, Path), ("emoji" = String, Path)),
    responses((status = 200, body = ReactionList), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn remove_reaction(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path((id, mid, emoji)): Path<(Uuid, Uuid, String)>,
) -> Result<axum::Json<ReactionList>, ApiError> {
    let items = state
        .service
        .react(&principal, id, mid, &emoji, false)
        .await?;
    Ok(axum::Json(ReactionList { items }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find (all must match; the last may be the start of a word).
    pub q: String,
    /// Message results, 1 to 100 (default 20); up to 5 title results come first.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

/// Search the user's conversation titles and messages.
#[utoipa::path(get, path = "/api/v1/search", tag = "chat", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope, description = "invalid_query")),
    security(("bearer" = [])))]
async fn search(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Query(query): Query<SearchQuery>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    let items = state
        .service
        .search(&principal, &query.q, query.limit.unwrap_or(20))
        .await?;
    Ok(axum::Json(SearchResults { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetBody {
    pub name: String,
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub params: Params,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresetList {
    pub items: Vec<Preset>,
}

/// The user's presets, by name.
#[utoipa::path(get, path = "/api/v1/presets", tag = "chat",
    responses((status = 200, body = PresetList), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn list_presets(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
) -> Result<axum::Json<PresetList>, ApiError> {
    Ok(axum::Json(PresetList {
        items: state.service.presets(&principal).await?,
    }))
}

/// Save a named system prompt with parameters.
#[utoipa::path(post, path = "/api/v1/presets", tag = "chat", request_body = PresetBody,
    responses((status = 201, body = Preset), (status = 409, body = ErrorEnvelope, description = "preset_exists"), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn create_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Json(body): Json<PresetBody>,
) -> Result<(StatusCode, axum::Json<Preset>), ApiError> {
    let preset = state
        .service
        .create_preset(&principal, body.name, body.system_prompt, body.params)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(preset)))
}

/// Replace a preset.
#[utoipa::path(put, path = "/api/v1/presets/{id}", tag = "chat", params(("id" = Uuid, Path)), request_body = PresetBody,
    responses((status = 200, body = Preset), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn update_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
    Json(body): Json<PresetBody>,
) -> Result<axum::Json<Preset>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .update_preset(&principal, id, body.name, body.system_prompt, body.params)
            .await?,
    ))
}

/// Delete a preset.
#[utoipa::path(delete, path = "/api/v1/presets/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn delete_preset(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_preset(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.signature", b64(r#"{"alg":"EdDSA"}"#), b64(payload))
    }

    /// A socket checks its access token again when it expires: the `exp` is read from access
    /// and service tokens; API keys have none.
    #[test]
    fn sockets_know_when_their_token_expires() {
        let token = jwt(r#"{"sub":"x","exp":1700000000}"#);
        assert_eq!(token_expiry(&token), Some(1_700_000_000));
        assert_eq!(token_expiry(&format!("cfs_{token}")), Some(1_700_000_000));
        assert_eq!(token_expiry("cfk_0123456789abcdef"), None);
        assert_eq!(token_expiry(&jwt(r#"{"sub":"x"}"#)), None);
        // Already expired: checked again at once.
        assert!(expiry_deadline(0) <= tokio::time::Instant::now());
    }
}
