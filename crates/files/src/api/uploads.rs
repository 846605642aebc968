//! Resumable uploads, for files too large for one request or sent over a flaky network.
//!
//! The protocol: `POST /api/v1/files/uploads` with the file's `name` and `size` answers the
//! upload's `id`, its `part_bytes` and number of `parts`. Part `n` (from 0) is bytes
//! `[n × part_bytes, min(size, (n + 1) × part_bytes))`, sent as the raw body of
//! `PUT /api/v1/files/uploads/{id}/parts/{n}`: in any order, several at once, and again after
//! a failure (a part received twice is stored once). `GET …/uploads/{id}` lists the parts
//! `received`, so a client that lost track resumes with the others. `POST …/{id}/complete`
//! makes the file — checked like a single upload — and answers it; `DELETE …/{id}` cancels.
//! An upload not completed by `expires_at` is deleted with its parts.

use std::io;

use axum::body::Body;
use axum::extract::{Path, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden, JsonBody};
use confab_core::extract::Json;
use futures::{StreamExt, TryStreamExt};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::{FileView, rfc3339};
use super::{FilesState, Owner};
use crate::service::{NewUpload, UploadStatus};

pub(super) fn routes() -> OpenApiRouter<FilesState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload))
        .routes(routes!(upload_status, cancel_upload))
        .routes(routes!(put_part))
        .routes(routes!(complete_upload))
}

/// A resumable upload to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUploadBody {
    /// The file's name (kept as metadata).
    pub name: String,
    /// The whole file's size in bytes.
    pub size: u64,
    /// The file's type, if known; it must agree with the content.
    pub content_type: Option<String>,
}

/// A resumable upload and the parts received.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadView {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    /// Every part but the last is exactly this long.
    pub part_bytes: u64,
    pub parts: u32,
    /// The parts stored so far, in order.
    pub received: Vec<u32>,
    pub expires_at: String,
}

impl From<UploadStatus> for UploadView {
    fn from(s: UploadStatus) -> Self {
        Self {
            id: s.upload.id,
            parts: s.upload.parts(),
            name: s.upload.name,
            size: s.upload.size,
            part_bytes: s.upload.part_bytes,
            received: s.received,
            expires_at: rfc3339(s.upload.expires_ms),
        }
    }
}

/// Start a resumable upload.
#[utoipa::path(post, path = "/api/v1/files/uploads", tag = "files", request_body = NewUploadBody,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 201, body = UploadView),
        (status = 413, body = ErrorEnvelope, description = "file_too_large, file_too_large_to_scan, quota_exceeded"),
        (status = 422, body = ErrorEnvelope, description = "file_empty, invalid_file_name"),
        (status = 429, body = ErrorEnvelope, description = "too_many_open_uploads")),
    security(("bearer" = [])))]
async fn create_upload(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Json(body): Json<NewUploadBody>,
) -> Result<(StatusCode, axum::Json<UploadView>), ApiError> {
    let status = state
        .service
        .create_upload(
            principal.user_id,
            NewUpload {
                name: body.name,
                size: body.size,
                declared_type: body.content_type,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(status.into())))
}

/// An upload and the parts received so far.
#[utoipa::path(get, path = "/api/v1/files/uploads/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = UploadView)),
    security(("bearer" = [])))]
async fn upload_status(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<UploadView>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .upload_status(principal.user_id, id)
            .await?
            .into(),
    ))
}

/// Send part `n` (from 0) as the raw body: exactly `part_bytes` long, the last part the rest.
/// Sending a part again replaces it.
#[utoipa::path(put, path = "/api/v1/files/uploads/{id}/parts/{n}", tag = "files",
    params(("id" = Uuid, Path), ("n" = u32, Path)),
    request_body(content_type = "application/octet-stream", description = "the part's bytes"),
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "stored"),
        (status = 400, body = ErrorEnvelope, description = "upload_incomplete: the body ended early"),
        (status = 422, body = ErrorEnvelope, description = "invalid_part: no such part number; part_size_mismatch"),
        (status = 429, body = ErrorEnvelope, description = "too_many_uploads")),
    security(("bearer" = [])))]
async fn put_part(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path((id, n)): Path<(Uuid, u32)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = body.into_data_stream().map_err(io::Error::other).boxed();
    state
        .service
        .put_part(principal.user_id, id, n, body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make the file from its parts (checked like a single upload); the upload is gone after.
#[utoipa::path(post, path = "/api/v1/files/uploads/{id}/complete", tag = "files",
    params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 201, body = FileView),
        (status = 409, body = ErrorEnvelope, description = "parts_missing: the details list them"),
        (status = 413, body = ErrorEnvelope, description = "quota_exceeded"),
        (status = 422, body = ErrorEnvelope, description = "file_type_not_allowed, file_type_mismatch, image_too_large")),
    security(("bearer" = [])))]
async fn complete_upload(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<FileView>), ApiError> {
    let file = state.service.complete_upload(principal.user_id, id).await?;
    Ok((StatusCode::CREATED, axum::Json(file.into())))
}

/// Cancel an upload: it and its parts are deleted.
#[utoipa::path(delete, path = "/api/v1/files/uploads/{id}", tag = "files",
    params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 204, description = "cancelled")),
    security(("bearer" = [])))]
async fn cancel_upload(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.cancel_upload(principal.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
