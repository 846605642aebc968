//! Serving bytes: a file's content (whole or one range), its image variants, and share links
//! (`/f/{token}`, public). Every response says `nosniff`; what is not safe to show inline
//! (HTML, SVG, anything unknown) is an attachment, and inline content gets a sandboxing CSP.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{FilesState, Owner};
use crate::domain::Variant;
use crate::domain::range::content_range;
use crate::domain::serve::INLINE_CSP;
use crate::service::{Content, FilesError, Opened};

pub(super) fn routes() -> OpenApiRouter<FilesState> {
    OpenApiRouter::new()
        .routes(routes!(content))
        .routes(routes!(thumbnail))
        .routes(routes!(preview))
        .routes(routes!(shared))
}

fn range_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::RANGE).and_then(|v| v.to_str().ok())
}

/// The response headers every served byte carries.
fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(INLINE_CSP),
    );
}

fn respond(content: Content, cache: &'static str) -> Result<Response, ApiError> {
    let Content {
        file,
        serving,
        range,
        read,
    } = content;
    let (status, length) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, file.size),
    };
    let mut response = Response::new(Body::from_stream(read.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let value = |s: &str| {
        HeaderValue::from_str(s).map_err(|_| ApiError::internal(format!("bad header value `{s}`")))
    };
    headers.insert(header::CONTENT_TYPE, value(&serving.content_type)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CONTENT_DISPOSITION, value(&serving.disposition)?);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, value(&format!("\"{}\"", file.sha256))?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Some(r) = &range {
        headers.insert(header::CONTENT_RANGE, value(&content_range(r, file.size))?);
    }
    protect(headers);
    Ok(response)
}

/// A 416 says how long the file is.
fn range_error(e: FilesError, size: Option<u64>) -> Response {
    let unsatisfiable = matches!(e, FilesError::Range(_));
    let mut response = axum::response::IntoResponse::into_response(ApiError::from(e));
    if unsatisfiable
        && let Some(size) = size
        && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
    {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// A file's bytes (a `Range` of one span is honoured). Pending files answer 409
/// `file_not_ready`, quarantined ones 409 `file_quarantined`.
#[utoipa::path(get, path = "/api/v1/files/{id}/content", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 206, description = "one range of the bytes"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready (being scanned), file_quarantined"),
        (status = 416, body = ErrorEnvelope, description = "range_not_satisfiable")),
    security(("bearer" = [])))]
async fn content(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match state
        .service
        .content(principal.user_id, id, range_header(&headers))
        .await
    {
        Ok(content) => respond(content, "private, no-cache"),
        Err(e @ FilesError::Range(_)) => {
            let size = state
                .service
                .file(principal.user_id, id)
                .await
                .ok()
                .map(|f| f.size);
            Ok(range_error(e, size))
        }
        Err(e) => Err(e.into()),
    }
}

async fn variant(
    state: &FilesState,
    owner: Uuid,
    id: Uuid,
    variant: Variant,
) -> Result<Response, ApiError> {
    let (file, bytes, content_type) = state.service.variant(owner, id, variant).await?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}-{}\"", file.sha256, variant.as_str())) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    protect(headers);
    Ok(response)
}

/// An image's thumbnail (at most 320 px on its longer side; JPEG, or PNG with transparency),
/// without the original's metadata.
#[utoipa::path(get, path = "/api/v1/files/{id}/thumbnail", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 200, description = "the thumbnail", content_type = "image/jpeg"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready, file_quarantined")),
    security(("bearer" = [])))]
async fn thumbnail(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    variant(&state, principal.user_id, id, Variant::Thumb).await
}

/// An image's preview (at most 1600 px on its longer side), without the original's metadata.
#[utoipa::path(get, path = "/api/v1/files/{id}/preview", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById,
        (status = 200, description = "the preview", content_type = "image/jpeg"),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready, file_quarantined")),
    security(("bearer" = [])))]
async fn preview(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    variant(&state, principal.user_id, id, Variant::Preview).await
}

/// A shared file, through its signed link; no sign-in. A malformed, tampered, expired or
/// revoked link answers 403 before anything is read.
#[utoipa::path(get, path = "/f/{token}", tag = "files", operation_id = "shared_file", params(("token" = String, Path)),
    responses(ById,
        (status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 206, description = "one range of the bytes"),
        (status = 302, description = "with `files.presigned_links` on S3 storage: to a presigned URL of the object, valid a minute"),
        (status = 403, body = ErrorEnvelope, description = "link_invalid, link_expired, link_revoked"),
        (status = 416, body = ErrorEnvelope, description = "range_not_satisfiable")))]
async fn shared(
    State(state): State<FilesState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match state
        .service
        .open_link(&token, range_header(&headers))
        .await
    {
        Ok(Opened::Content(content)) => respond(*content, "private, no-store"),
        Ok(Opened::Redirect(url)) => Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
