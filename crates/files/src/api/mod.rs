//! The files API: `/api/v1/files…` for a signed-in user's own files (an API key needs the
//! `files` scope), `/api/v1/admin/files…` for admins, and `/f/{token}`, the public share
//! links, whose signed token is the credential. Another user's file ids answer 404, as
//! missing ones do.

use std::sync::Arc;

use axum::extract::FromRef;
use confab_core::ApiError;
use confab_core::auth::DynAuthenticator;
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;

use crate::domain::KindError;
use crate::domain::links::LinkError;
use crate::service::{FilesError, FilesService};

mod admin;
mod content;
mod files;
pub mod internal;
mod links;
mod uploads;
pub mod views;

#[derive(Clone)]
pub struct FilesState {
    pub service: Arc<FilesService>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<FilesState> for DynAuthenticator {
    fn from_ref(state: &FilesState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: FilesState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(files::routes())
        .merge(content::routes())
        .merge(links::routes())
        .merge(uploads::routes())
        .merge(admin::routes())
        .with_state(state)
}

pub use internal::{InternalFilesState, internal_router};

confab_core::scoped_user! {
    /// A signed-in user allowed to use files (an API key needs the `files` scope).
    struct Owner: confab_core::auth::Scope::Files;
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        let message = e.to_string();
        match e {
            FilesError::NotFound(_) => ApiError::not_found(message),
            FilesError::InvalidName(_) => ApiError::validation("invalid_file_name", message),
            FilesError::Type(KindError::Empty) => ApiError::validation("file_empty", message),
            FilesError::Type(KindError::Mismatch { .. }) => {
                ApiError::validation("file_type_mismatch", message)
            }
            FilesError::Type(KindError::Unknown | KindError::NotAllowed { .. }) => {
                ApiError::validation("file_type_not_allowed", message)
            }
            FilesError::Image(_) => ApiError::validation("image_too_large", message),
            FilesError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", message)
            }
            FilesError::TooLargeToScan { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large_to_scan",
                message,
            ),
            FilesError::OverQuota { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message)
            }
            FilesError::TooManyUploads { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_uploads", message)
                    .with_retry_after(5)
            }
            FilesError::TooManyOpenUploads { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_open_uploads",
                message,
            ),
            FilesError::InvalidPart { .. } => ApiError::validation("invalid_part", message),
            FilesError::PartSize { .. } => ApiError::validation("part_size_mismatch", message),
            FilesError::PartsMissing(missing) => {
                let details = vec![format!(
                    "missing parts: {}",
                    missing
                        .iter()
                        .take(100)
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )];
                ApiError::conflict("parts_missing", message).with_details(details)
            }
            FilesError::Incomplete(_) => ApiError::bad_request("upload_incomplete", message),
            FilesError::NotReady | FilesError::Preparing => {
                ApiError::conflict("file_not_ready", message)
            }
            FilesError::Quarantined { .. } => ApiError::conflict("file_quarantined", message),
            FilesError::Range(_) => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                message,
            ),
            FilesError::InvalidHours { .. } => ApiError::validation("invalid_hours", message),
            FilesError::Link(LinkError::Expired) => ApiError::forbidden("link_expired", message),
            FilesError::Link(_) => ApiError::forbidden("link_invalid", message),
            FilesError::LinkGone => ApiError::forbidden("link_revoked", message),
            FilesError::Store(confab_store::StoreError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            FilesError::Store(other) => ApiError::internal(other.to_string()),
            FilesError::Blob(confab_blob::BlobError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            FilesError::Blob(other) => ApiError::internal(other.to_string()),
            FilesError::Jobs(confab_bus::JobError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            FilesError::Jobs(other) => ApiError::internal(other.to_string()),
        }
    }
}
