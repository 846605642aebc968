//! Uploading (multipart or a raw body), listing, reading metadata, usage and deleting.

use std::io;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, BadQuery, ById, Forbidden};
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::{FileList, FileView, QuotaView, UsageView};
use super::{FilesState, Owner};
use crate::service::Upload;

pub(super) fn routes() -> OpenApiRouter<FilesState> {
    OpenApiRouter::new()
        .routes(routes!(list_files, upload_multipart))
        .routes(routes!(upload_raw))
        .routes(routes!(usage))
        .routes(routes!(get_file, delete_file))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 100, default 50.
    pub limit: Option<u32>,
}

/// The user's files, newest first.
#[utoipa::path(get, path = "/api/v1/files", tag = "files", params(ListQuery),
    responses(Authenticated, Forbidden, BadQuery, (status = 200, body = FileList)),
    security(("bearer" = [])))]
async fn list_files(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<FileList>, ApiError> {
    let page = state
        .service
        .list(principal.user_id, query.before, query.limit.unwrap_or(50))
        .await?;
    Ok(axum::Json(FileList {
        files: page.files.into_iter().map(FileView::from).collect(),
        next: page.next,
    }))
}

/// Upload one file as `multipart/form-data`, in a part named `file` (its filename is kept as
/// the name; its `Content-Type`, if given, must agree with the content). The body is streamed
/// to storage; the file is `pending` until scanned for viruses (`unscanned` when no scanner is
/// configured). A single upload must finish within the server's request timeout; larger
/// files go through `/api/v1/files/uploads`.
#[utoipa::path(post, path = "/api/v1/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "one part named `file`"),
    responses(Authenticated, Forbidden,
        (status = 201, body = FileView),
        (status = 400, body = ErrorEnvelope, description = "invalid_multipart: not multipart, no `file` part, or another part; upload_incomplete: the body ended early"),
        (status = 413, body = ErrorEnvelope, description = "file_too_large, file_too_large_to_scan, quota_exceeded"),
        (status = 422, body = ErrorEnvelope, description = "file_empty, file_type_not_allowed, file_type_mismatch, invalid_file_name, image_too_large"),
        (status = 429, body = ErrorEnvelope, description = "too_many_uploads: this user's uploads in progress are at the cap")),
    security(("bearer" = [])))]
async fn upload_multipart(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<FileView>), ApiError> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_multipart",
                "send multipart/form-data with a boundary, the file in a part named `file`",
            )
        })?;
    let constraints = multer::Constraints::new().allowed_fields(vec!["file"]);
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let field = match multipart.next_field().await {
        Ok(Some(field)) => field,
        Ok(None) => {
            return Err(ApiError::bad_request(
                "invalid_multipart",
                "the form has no part named `file`",
            ));
        }
        Err(multer::Error::UnknownField { field_name }) => {
            return Err(ApiError::bad_request(
                "invalid_multipart",
                format!(
                    "unexpected part `{}`: send one part named `file`",
                    field_name.unwrap_or_default()
                ),
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "upload_incomplete",
                format!("the multipart body could not be read: {e}"),
            ));
        }
    };
    let name = field.file_name().unwrap_or_default().to_owned();
    let declared_type = field.content_type().map(|m| m.essence_str().to_owned());
    let upload = Upload {
        name,
        declared_type,
        body: field.map_err(io::Error::other).boxed(),
    };
    let file = state.service.upload(principal.user_id, upload).await?;
    Ok((StatusCode::CREATED, axum::Json(file.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawQuery {
    /// The file's name (kept as metadata; no path separators or control characters).
    pub name: String,
}

/// Upload one file as the raw request body; `Content-Type`, if given, must agree with the
/// content.
#[utoipa::path(put, path = "/api/v1/files/raw", tag = "files", params(RawQuery),
    request_body(content_type = "application/octet-stream", description = "the file's bytes"),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 201, body = FileView),
        (status = 400, body = ErrorEnvelope, description = "upload_incomplete: the body ended early"),
        (status = 413, body = ErrorEnvelope, description = "file_too_large, file_too_large_to_scan, quota_exceeded"),
        (status = 422, body = ErrorEnvelope, description = "file_empty, file_type_not_allowed, file_type_mismatch, invalid_file_name, image_too_large"),
        (status = 429, body = ErrorEnvelope, description = "too_many_uploads")),
    security(("bearer" = [])))]
async fn upload_raw(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Query(query): Query<RawQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<FileView>), ApiError> {
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|v| !v.is_empty());
    // A declared length past the limit is refused before a byte is read.
    let max = state.service.max_upload_bytes();
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > max
    {
        return Err(crate::service::FilesError::TooLarge { max }.into());
    }
    let upload = Upload {
        name: query.name,
        declared_type,
        body: body.into_data_stream().map_err(io::Error::other).boxed(),
    };
    let file = state.service.upload(principal.user_id, upload).await?;
    Ok((StatusCode::CREATED, axum::Json(file.into())))
}

/// What the user stores against their quota, and what an upload may be.
#[utoipa::path(get, path = "/api/v1/files/usage", tag = "files",
    responses(Authenticated, Forbidden, (status = 200, body = UsageView)),
    security(("bearer" = [])))]
async fn usage(
    State(state): State<FilesState>,
    Owner(principal): Owner,
) -> Result<axum::Json<UsageView>, ApiError> {
    let service = &state.service;
    let usage = service.usage(principal.user_id).await?;
    let settings = service.settings();
    Ok(axum::Json(UsageView {
        usage,
        quota: QuotaView {
            max_bytes: settings.quota.max_bytes,
            max_files: settings.quota.max_files,
        },
        max_file_bytes: service.max_upload_bytes(),
        scanning: service.scanning(),
        allowed_kinds: settings.types.allowed().collect(),
    }))
}

/// One file's metadata.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = FileView)),
    security(("bearer" = [])))]
async fn get_file(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<FileView>, ApiError> {
    Ok(axum::Json(
        state.service.file(principal.user_id, id).await?.into(),
    ))
}

/// Delete a file, its variants and its share links; its room is given back at once.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 204, description = "deleted")),
    security(("bearer" = [])))]
async fn delete_file(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete(principal.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
