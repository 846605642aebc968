//! Conversations: create, list, read, change, delete; bulk changes; search; export and import.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, BadQuery, ById, Forbidden, JsonBody};
use confab_core::extract::Json;
use confab_core::pagination::{Page, PageParams, encode_cursor};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::double_option;
use super::{ChatState, Chatter};
use crate::domain::{Conversation, ConversationChanges, ConversationInput, Params, SearchHit};
use crate::ports::{ConversationFilter, ConversationPosition};

pub(super) fn routes(import_limit: usize) -> OpenApiRouter<ChatState> {
    let imports = OpenApiRouter::new()
        .routes(routes!(import))
        .layer(axum::extract::DefaultBodyLimit::max(import_limit));
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
        .routes(routes!(search))
        .routes(routes!(bulk))
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
    responses(Authenticated, Forbidden, JsonBody,
        (status = 201, body = Conversation), (status = 404, body = ErrorEnvelope, description = "not_found: `preset_id` names no preset of yours"),
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
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = Page<Conversation>), (status = 400, body = ErrorEnvelope, description = "invalid_cursor, invalid_limit")),
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
    responses(Authenticated, Forbidden, ById,
        (status = 200, body = Conversation)),
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
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 200, body = Conversation), (status = 422, body = ErrorEnvelope)),
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
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "Deleted")),
    security(("bearer" = [])))]
async fn delete_conversation(
    State(state): State<ChatState>,
    Chatter(principal): Chatter,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    responses(Authenticated, Forbidden, JsonBody,
        (status = 200, body = BulkResult), (status = 422, body = ErrorEnvelope, description = "invalid_ids")),
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
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = SearchResults), (status = 422, body = ErrorEnvelope, description = "invalid_query")),
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
    // Inline: a query parameter's schema is not collected into the document's components,
    // so a `$ref` here would point at nothing.
    #[param(inline)]
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
    responses(Authenticated, Forbidden, BadQuery, ById,
        (status = 200, description = "JSON (an export of one conversation, with `format=json`) or Markdown of its active branch (`format=markdown`)",
            content((crate::transfer::Export = "application/json"), (String = "text/markdown")))),
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
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, description = "JSON (`format=json`), or Markdown of every active branch (`format=markdown`)",
            content((crate::transfer::Export = "application/json"), (String = "text/markdown")))),
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
    responses(Authenticated, Forbidden,
        (status = 201, body = ImportResult),
        (status = 413, body = ErrorEnvelope, description = "payload_too_large: larger than `chat.import_limit_bytes`"),
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
