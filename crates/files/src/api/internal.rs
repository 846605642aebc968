//! The files service's internal routes (`/internal/v1/files/...`), which other Confab services
//! call as themselves ([`InternalCaller`]) in split mode — the chat service attaching files
//! to messages: which files may be attached, what a model is given for one, an image's
//! thumbnail or preview, and deleting several. Each names the user whose files they are, and
//! answers for that user's files only. The gateway never forwards `/internal/`.
//!
//! Errors about one file carry its id as the first of the envelope's `details`: 404
//! `file_not_found`, 409 `file_not_ready` (being scanned, or an image's preview not made
//! yet), 422 `file_quarantined`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{InternalOnly, JsonBody};
use confab_core::extract::Json;
use confab_core::internal::{InternalAuth, InternalCaller};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{FileKind, FileRecord, Variant};
use crate::service::{AttachProblem, FilesError, FilesService, ModelInput};

/// The most files one call names.
pub const MAX_INTERNAL_IDS: usize = 64;

/// The header that says whether a model input's text was cut.
pub const TRUNCATED_HEADER: &str = "x-confab-truncated";

/// What the internal routes share.
#[derive(Clone)]
pub struct InternalFilesState {
    pub service: Arc<FilesService>,
    /// The deployment's services secret; `InternalAuth(None)` refuses every call.
    pub internal: InternalAuth,
}

impl FromRef<InternalFilesState> for InternalAuth {
    fn from_ref(state: &InternalFilesState) -> Self {
        state.internal.clone()
    }
}

/// The internal routes with their OpenAPI description (tag `internal`).
pub fn internal_router(state: InternalFilesState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(internal_attachable_files))
        .routes(routes!(internal_file_model_input))
        .routes(routes!(internal_file_thumbnail))
        .routes(routes!(internal_file_preview))
        .routes(routes!(internal_delete_files))
        .with_state(state)
        .layer(axum::middleware::map_response(no_store))
}

/// Answers between services are never cached on the way.
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// A user's files, by id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InternalFileIds {
    /// The user whose files they are.
    pub user_id: Uuid,
    /// At most 64.
    pub ids: Vec<Uuid>,
}

/// A file that may be attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachableFile {
    pub file_id: Uuid,
    /// The sanitised name.
    pub name: String,
    /// The MIME type detected from the content.
    pub content_type: String,
    pub kind: FileKind,
    /// Bytes.
    pub size: u64,
}

impl From<FileRecord> for AttachableFile {
    fn from(file: FileRecord) -> Self {
        Self {
            file_id: file.id,
            name: file.name,
            content_type: file.content_type,
            kind: file.kind,
            size: file.size,
        }
    }
}

/// The files asked for, in the order asked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachableFiles {
    pub items: Vec<AttachableFile>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelInputQuery {
    /// The most bytes of text answered (cut on a character boundary); at most 16 MiB are.
    pub max_text_bytes: usize,
}

/// The error of a problem with one file, its id in the details.
fn problem(problem: AttachProblem) -> ApiError {
    let id = problem.file_id();
    let error = match problem {
        AttachProblem::NotFound(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "file_not_found",
            format!("no file {id} of this user's"),
        ),
        AttachProblem::NotReady(_) => ApiError::conflict(
            "file_not_ready",
            format!("file {id} is not ready yet (being scanned, or being prepared)"),
        ),
        AttachProblem::Quarantined(_) => {
            ApiError::validation("file_quarantined", format!("file {id} is quarantined"))
        }
    };
    error.with_details(vec![id.to_string()])
}

/// A service error about the file `id`, in the internal routes' codes.
fn file_error(id: Uuid, e: FilesError) -> ApiError {
    match e {
        FilesError::NotFound(_) => problem(AttachProblem::NotFound(id)),
        FilesError::NotReady | FilesError::Preparing => problem(AttachProblem::NotReady(id)),
        FilesError::Quarantined { .. } => problem(AttachProblem::Quarantined(id)),
        other => other.into(),
    }
}

fn too_many(ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.len() > MAX_INTERNAL_IDS {
        return Err(ApiError::validation(
            "too_many_files",
            format!("at most {MAX_INTERNAL_IDS} files a call"),
        ));
    }
    Ok(())
}

fn bytes_response(content_type: &str, bytes: bytes::Bytes) -> Result<Response, ApiError> {
    let mut response = Response::new(Body::from(bytes));
    let content_type = HeaderValue::from_str(content_type)
        .map_err(|_| ApiError::internal(format!("bad content type `{content_type}`")))?;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Describes a user's files in the order given if every one may be attached; else the first
/// that may not (internal: other services' processes).
#[utoipa::path(post, path = "/internal/v1/files/attachable", tag = "internal",
    request_body = InternalFileIds,
    responses(InternalOnly, JsonBody,
        (status = 200, body = AttachableFiles),
        (status = 404, body = ErrorEnvelope, description = "file_not_found: no such file of the user's; its id is the first detail"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready: still being scanned; its id is the first detail"),
        (status = 422, body = ErrorEnvelope, description = "file_quarantined: infected, its id the first detail; too_many_files: more than 64; invalid_body: the JSON does not have the expected fields or types"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the files database cannot be reached")),
    security(("bearer" = [])))]
async fn internal_attachable_files(
    _caller: InternalCaller,
    State(state): State<InternalFilesState>,
    Json(request): Json<InternalFileIds>,
) -> Result<axum::Json<AttachableFiles>, ApiError> {
    too_many(&request.ids)?;
    match state
        .service
        .attachable(request.user_id, &request.ids)
        .await?
    {
        Ok(files) => Ok(axum::Json(AttachableFiles {
            items: files.into_iter().map(AttachableFile::from).collect(),
        })),
        Err(e) => Err(problem(e)),
    }
}

/// What a model is given for one of a user's files: an image's bytes (its preview, or the
/// original while small) with their type; text as `text/plain; charset=utf-8` with
/// `x-confab-truncated: true|false`; or 204 when nothing in it is readable (internal: other
/// services' processes).
#[utoipa::path(get, path = "/internal/v1/files/users/{user_id}/files/{id}/model-input", tag = "internal",
    params(("user_id" = Uuid, Path), ("id" = Uuid, Path), ModelInputQuery),
    responses(InternalOnly,
        (status = 200, description = "an image (JPEG, PNG, WebP or GIF) or text", content_type = "application/octet-stream",
            headers(("x-confab-truncated" = String, description = "for text: `true` when it was cut"))),
        (status = 204, description = "nothing a model can read"),
        (status = 400, body = ErrorEnvelope, description = "bad_request: a path or query parameter is malformed"),
        (status = 404, body = ErrorEnvelope, description = "file_not_found"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready: being scanned, or an image's preview is not made yet"),
        (status = 422, body = ErrorEnvelope, description = "file_quarantined"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the files database or storage cannot be reached")),
    security(("bearer" = [])))]
async fn internal_file_model_input(
    _caller: InternalCaller,
    State(state): State<InternalFilesState>,
    Path((user_id, id)): Path<(Uuid, Uuid)>,
    Query(query): Query<ModelInputQuery>,
) -> Result<Response, ApiError> {
    let input = state
        .service
        .model_input(user_id, id, query.max_text_bytes)
        .await
        .map_err(|e| file_error(id, e))?;
    match input {
        ModelInput::Image {
            content_type,
            bytes,
        } => bytes_response(&content_type, bytes),
        ModelInput::Text { text, truncated } => {
            let mut response = bytes_response("text/plain; charset=utf-8", text.into())?;
            response.headers_mut().insert(
                TRUNCATED_HEADER,
                HeaderValue::from_static(if truncated { "true" } else { "false" }),
            );
            Ok(response)
        }
        ModelInput::Unreadable => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
    }
}

async fn variant(
    state: &InternalFilesState,
    user_id: Uuid,
    id: Uuid,
    variant: Variant,
) -> Result<Response, ApiError> {
    let (_, bytes, content_type) = state
        .service
        .variant(user_id, id, variant)
        .await
        .map_err(|e| file_error(id, e))?;
    bytes_response(content_type, bytes)
}

/// An image file's thumbnail (at most 320 px) of a user's (internal: other services'
/// processes).
#[utoipa::path(get, path = "/internal/v1/files/users/{user_id}/files/{id}/thumbnail", tag = "internal",
    params(("user_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses(InternalOnly,
        (status = 200, description = "the thumbnail", content_type = "image/jpeg"),
        (status = 400, body = ErrorEnvelope, description = "bad_request: a path parameter is malformed"),
        (status = 404, body = ErrorEnvelope, description = "file_not_found: no such file, not an image, or no thumbnail yet"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready"),
        (status = 422, body = ErrorEnvelope, description = "file_quarantined")),
    security(("bearer" = [])))]
async fn internal_file_thumbnail(
    _caller: InternalCaller,
    State(state): State<InternalFilesState>,
    Path((user_id, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    variant(&state, user_id, id, Variant::Thumb).await
}

/// An image file's preview (at most 1600 px) of a user's (internal: other services'
/// processes).
#[utoipa::path(get, path = "/internal/v1/files/users/{user_id}/files/{id}/preview", tag = "internal",
    params(("user_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses(InternalOnly,
        (status = 200, description = "the preview", content_type = "image/jpeg"),
        (status = 400, body = ErrorEnvelope, description = "bad_request: a path parameter is malformed"),
        (status = 404, body = ErrorEnvelope, description = "file_not_found: no such file, not an image, or no preview yet"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready"),
        (status = 422, body = ErrorEnvelope, description = "file_quarantined")),
    security(("bearer" = [])))]
async fn internal_file_preview(
    _caller: InternalCaller,
    State(state): State<InternalFilesState>,
    Path((user_id, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    variant(&state, user_id, id, Variant::Preview).await
}

/// Deletes a user's files; those already gone are skipped (internal: other services'
/// processes).
#[utoipa::path(post, path = "/internal/v1/files/delete", tag = "internal",
    request_body = InternalFileIds,
    responses(InternalOnly, JsonBody,
        (status = 204, description = "deleted"),
        (status = 422, body = ErrorEnvelope, description = "too_many_files: more than 64; invalid_body: the JSON does not have the expected fields or types"),
        (status = 503, body = ErrorEnvelope, description = "unavailable: the files database cannot be reached")),
    security(("bearer" = [])))]
async fn internal_delete_files(
    _caller: InternalCaller,
    State(state): State<InternalFilesState>,
    Json(request): Json<InternalFileIds>,
) -> Result<StatusCode, ApiError> {
    too_many(&request.ids)?;
    state
        .service
        .delete_many(request.user_id, &request.ids)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
