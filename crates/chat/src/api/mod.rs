//! The chat API under `/api/v1`: conversations, their messages and branches, answers as
//! server-sent events that a client can re-attach to, and presets. Every route needs a signed-in
//! user (an API key needs the `chat` scope) and sees only that user's data: another user's
//! ids answer 404, as missing ones do. Share pages are the exception: public, for whoever holds
//! the link.
//!
//! One module per area, each with its routes: `conversations` (with bulk changes, search,
//! export and import), `messages` (answers as SSE, stop, re-attach, reactions), `sockets`
//! (the real-time WebSocket), `shares` and `presets`. This module holds the state, the
//! extractor of a user allowed to chat and the mapping of the service's errors to HTTP.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::response::Response;
use confab_core::ApiError;
use confab_core::audit::AuditLog;
use confab_core::auth::DynAuthenticator;
use http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa_axum::router::OpenApiRouter;

use crate::ports::FileAccessError;
use crate::service::{ChatError, ChatService};

mod conversations;
mod messages;
mod presets;
mod shares;
mod sockets;

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
    OpenApiRouter::new()
        .merge(conversations::routes(import_limit))
        .merge(messages::routes())
        .merge(sockets::routes())
        .merge(shares::routes())
        .merge(presets::routes())
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

confab_core::scoped_user! {
    /// A signed-in user allowed to chat.
    struct Chatter: confab_core::auth::Scope::Chat;
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
            ChatError::Model(e) => e.api_error(),
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
            ChatError::Files(e) => files_error(e),
        }
    }
}

/// An attachment that cannot be used, or the files service being away.
fn files_error(e: FileAccessError) -> ApiError {
    match e {
        FileAccessError::NotFound(id) => ApiError::validation(
            "attachment_not_found",
            format!("there is no file {id} of yours to attach; upload it first"),
        ),
        FileAccessError::NotReady(id) => ApiError::conflict(
            "attachment_not_ready",
            format!("file {id} is still being scanned for viruses; send it once it is ready"),
        ),
        FileAccessError::Quarantined(id) => ApiError::validation(
            "attachment_quarantined",
            format!("file {id} is quarantined: a virus was found in it"),
        ),
        FileAccessError::Disabled => ApiError::validation(
            "attachments_unavailable",
            "this server has no files service: messages cannot carry files",
        ),
        FileAccessError::Unavailable(detail) => {
            tracing::warn!(detail = %detail, "the files service is unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "files_unavailable",
                "files cannot be read now; retry shortly",
            )
            .with_retry_after(5)
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
