//! The SEO studio's API under `/api/v1/seo`: projects, generation (a job, followed over SSE
//! or the WebSocket), package versions with edits, restores, diffs and exports, scoring of
//! any metadata, and the dashboard's figures. Every route needs a signed-in user (an API key
//! needs the `seo` scope) and sees only that user's projects: another user's ids answer 404,
//! as missing ones do.

use std::sync::Arc;

use axum::extract::FromRef;
use confab_core::ApiError;
use confab_core::auth::DynAuthenticator;
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{SeoError, SeoService};

mod generation;
mod projects;
mod versions;
mod youtube;

#[derive(Clone)]
pub struct SeoState {
    pub service: Arc<SeoService>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<SeoState> for DynAuthenticator {
    fn from_ref(state: &SeoState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: SeoState) -> OpenApiRouter {
    // A transcript may double in size as JSON (escaped newlines and quotes).
    let body_limit = state
        .service
        .settings()
        .transcript_max_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    OpenApiRouter::new()
        .merge(projects::routes(body_limit))
        .merge(generation::routes())
        .merge(versions::routes())
        .merge(youtube::routes())
        .with_state(state)
}

confab_core::scoped_user! {
    /// A signed-in user allowed to use the studio.
    struct Creator: confab_core::auth::Scope::Seo;
}

impl From<SeoError> for ApiError {
    fn from(e: SeoError) -> Self {
        match e {
            SeoError::NotFound(what) => ApiError::not_found(format!("no such {what}")),
            SeoError::Invalid(problems) => {
                let message = match problems.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    _ => format!("{} fields need fixing", problems.len()),
                };
                ApiError::validation("invalid_fields", message).with_details(
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                        .collect(),
                )
            }
            SeoError::Transcript(e) => ApiError::validation(
                "invalid_transcript",
                format!(
                    "the transcript cannot be read: line {}: {}",
                    e.line, e.message
                ),
            ),
            SeoError::TranscriptTooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "transcript_too_large",
                e.to_string(),
            ),
            SeoError::InvalidPackage(violations) => {
                let errors: Vec<String> = violations
                    .iter()
                    .filter(|v| v.severity == crate::domain::rules::Severity::Error)
                    .map(|v| format!("{} ({}): {}", v.field.as_str(), v.code, v.message))
                    .collect();
                let message = match errors.as_slice() {
                    [one] => one.clone(),
                    _ => format!("{} of YouTube's rules are broken", errors.len()),
                };
                ApiError::validation("invalid_package", message).with_details(errors)
            }
            SeoError::TooManyGenerations { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_generations",
                e.to_string(),
            )
            .with_retry_after(30),
            SeoError::TooManyFeeds { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_feeds",
                e.to_string(),
            ),
            SeoError::AlreadyGenerating => ApiError::conflict("already_generating", e.to_string()),
            SeoError::YouTubeNotConfigured(_) => {
                ApiError::conflict("youtube_not_configured", e.to_string())
            }
            SeoError::TooManyResearches { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_researches",
                e.to_string(),
            )
            .with_retry_after(600),
            SeoError::NoChannel => ApiError::conflict("no_channel", e.to_string()),
            SeoError::Reconnect => ApiError::conflict("youtube_reconnect", e.to_string()),
            SeoError::YouTube(e) => youtube_error(&e),
            SeoError::Model(e) => e.api_error(),
            SeoError::Store(confab_store::StoreError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            SeoError::Store(other) => ApiError::internal(other.to_string()),
            SeoError::Jobs(confab_bus::JobError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            SeoError::Jobs(other) => ApiError::internal(other.to_string()),
        }
    }
}

/// A YouTube failure as the studio's API answers it: the shared quota spent is 429 until the
/// reset; YouTube's own trouble 503; what YouTube refused about the request 4xx with its reason.
fn youtube_error(e: &crate::youtube::YouTubeError) -> ApiError {
    use crate::youtube::YouTubeError as Y;
    match e {
        Y::QuotaExceeded { resets_at, .. } => {
            let wait = resets_at
                .duration_since(jiff::Timestamp::now())
                .as_secs()
                .max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "youtube_quota_exceeded",
                format!("{e}; nothing more is spent until then"),
            )
            .with_retry_after(u64::try_from(wait).unwrap_or(1))
        }
        Y::RateLimited { retry_after } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "youtube_rate_limited",
            e.to_string(),
        )
        .with_retry_after(retry_after.map_or(30, |d| d.as_secs().max(1))),
        Y::ReconnectNeeded => ApiError::conflict("youtube_reconnect", e.to_string()),
        Y::NotFound { .. } => ApiError::not_found(e.to_string()),
        Y::BadRequest { .. } => ApiError::validation("youtube_bad_request", e.to_string()),
        Y::Forbidden { .. } => ApiError::forbidden("youtube_forbidden", e.to_string()),
        Y::Unauthorized | Y::Credentials(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "youtube_refused",
            "YouTube refused the configured credentials; check YOUTUBE_API_KEY or YOUTUBE_CREDENTIALS",
        )
        .with_internal(e.to_string()),
        Y::Unavailable(_) | Y::Decode(_) | Y::Ledger(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "youtube_unavailable",
            "YouTube cannot be reached right now; try again later",
        )
        .with_internal(e.to_string()),
    }
}
