//! Messages: the active branch, sending and regenerating (the answer streamed as server-sent
//! events), stopping, re-attaching to an answer, and reactions.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{
    Authenticated, BadQuery, ById, Forbidden, JsonBody, ModelCall,
};
use confab_core::extract::Json;
use futures::StreamExt;
use http::HeaderMap;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::double_option;
use super::{ChatState, Chatter};
use crate::domain::{Message, Reaction};
use crate::ports::Branches;
use crate::service::{Follow, SendInput};

pub(super) fn routes() -> OpenApiRouter<ChatState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, send_message))
        .routes(routes!(regenerate))
        .routes(routes!(stop))
        .routes(routes!(follow))
        .routes(routes!(add_reaction))
        .routes(routes!(remove_reaction))
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
    responses(Authenticated, Forbidden, ById,
        (status = 200, body = MessageList)),
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
    /// Ids of the sender's files to attach (at most 8; uploaded through `/api/v1/files`, and
    /// scanned). Images go to models that see as images; text, markdown and PDF text as
    /// context; `content` may then be empty.
    #[serde(default)]
    pub attachments: Vec<Uuid>,
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
    responses(Authenticated, Forbidden, JsonBody, ById, ModelCall,
        (status = 200, content_type = "text/event-stream", description = "events `message` (StreamStart), `delta` (DeltaEvent), `done` (Message)"),
        (status = 409, body = ErrorEnvelope, description = "attachment_not_ready: an attached file is still being scanned"),
        (status = 422, body = ErrorEnvelope, description = "empty_message, message_too_long, unknown_model, model_refused, too_many_attachments, attachment_not_found, attachment_quarantined, attachments_unavailable")),
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
                attachments: body.attachments,
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
    responses(Authenticated, Forbidden, JsonBody, ById, ModelCall,
        (status = 200, content_type = "text/event-stream", description = "events `message` (StreamStart), `delta` (DeltaEvent), `done` (Message)"),
        (status = 422, body = ErrorEnvelope, description = "unknown_model, model_refused, nothing_to_answer")),
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
    responses(Authenticated, Forbidden, ById,
        (status = 202, description = "Stopping"), (status = 409, body = ErrorEnvelope, description = "not_streaming")),
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
    responses(Authenticated, Forbidden, BadQuery, ById,
        (status = 200, content_type = "text/event-stream", description = "events `delta`, `done`"),
        (status = 422, body = ErrorEnvelope, description = "invalid_offset, not_an_answer")),
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
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 200, body = ReactionList), (status = 422, body = ErrorEnvelope, description = "invalid_reaction")),
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
    responses(Authenticated, Forbidden, ById,
        (status = 200, body = ReactionList)),
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
