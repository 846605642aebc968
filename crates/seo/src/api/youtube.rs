//! YouTube: keyword research, auditing and importing existing videos, applying a package to
//! a video of the user's connected channel, connecting that channel (OAuth; the callback is
//! the one public route, authenticated by its one-time state), and the quota's figures.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, BadQuery, ById, Forbidden, JsonBody};
use confab_core::extract::Json;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Creator, SeoState};
use crate::domain::Version;
use crate::domain::research::Research;
use crate::service::{Applied, ChannelView, QuotaView, ResearchRequest, VideoAudit};

pub(super) fn routes() -> OpenApiRouter<SeoState> {
    OpenApiRouter::new()
        .routes(routes!(research))
        .routes(routes!(audit_video))
        .routes(routes!(import_video))
        .routes(routes!(apply))
        .routes(routes!(get_channel, disconnect_channel))
        .routes(routes!(connect_channel))
        .routes(routes!(channel_callback))
        .routes(routes!(quota))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResearchQuery {
    /// The keyword (1 to 100 characters).
    pub keyword: String,
    /// A two-letter country code: results as seen there.
    pub region: Option<String>,
    /// A language whose results are preferred (`en`, `de`).
    pub language: Option<String>,
    /// Compare the top videos' tags with this project's newest package.
    pub project_id: Option<Uuid>,
}

/// The top videos for a keyword with their views, channels, titles and tags, and a
/// competition indicator computed from them (answers cached for `seo.youtube.cache_ttl_secs`).
#[utoipa::path(get, path = "/api/v1/seo/research", tag = "seo", params(ResearchQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = Research),
        (status = 404, body = ErrorEnvelope, description = "not_found: no such project"),
        (status = 409, body = ErrorEnvelope, description = "youtube_not_configured: no API key"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields"),
        (status = 429, body = ErrorEnvelope, description = "too_many_researches, youtube_quota_exceeded (until the reset)"),
        (status = 502, body = ErrorEnvelope, description = "youtube_refused: the API key was refused"),
        (status = 503, body = ErrorEnvelope, description = "youtube_unavailable, youtube_rate_limited")),
    security(("bearer" = [])))]
async fn research(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Query(query): Query<ResearchQuery>,
) -> Result<axum::Json<Research>, ApiError> {
    let request = ResearchRequest {
        keyword: query.keyword,
        region: query.region,
        language: query.language,
        project_id: query.project_id,
    };
    Ok(axum::Json(
        state.service.research(&principal, &request).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoRequest {
    /// A video id or a YouTube URL.
    pub video: String,
    /// For audits: the keyword to judge the metadata against.
    #[serde(default)]
    pub primary_keyword: Option<String>,
}

/// Judge an existing video's metadata (read with `videos.list`) by the studio's rules and
/// scorer. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/seo/videos/audit", tag = "seo", request_body = VideoRequest,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 200, body = VideoAudit),
        (status = 404, body = ErrorEnvelope, description = "not_found: no such video"),
        (status = 409, body = ErrorEnvelope, description = "youtube_not_configured"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields: not a video id or URL"),
        (status = 429, body = ErrorEnvelope, description = "youtube_quota_exceeded"),
        (status = 502, body = ErrorEnvelope, description = "youtube_refused"),
        (status = 503, body = ErrorEnvelope, description = "youtube_unavailable, youtube_rate_limited")),
    security(("bearer" = [])))]
async fn audit_video(
    State(state): State<SeoState>,
    Creator(_principal): Creator,
    Json(body): Json<VideoRequest>,
) -> Result<axum::Json<VideoAudit>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .audit_video(&body.video, body.primary_keyword.as_deref())
            .await?,
    ))
}

/// Store an existing video's title, description and tags as the project's newest version.
#[utoipa::path(post, path = "/api/v1/seo/projects/{id}/versions/import", tag = "seo",
    params(("id" = Uuid, Path)), request_body = VideoRequest,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 201, body = Version),
        (status = 409, body = ErrorEnvelope, description = "youtube_not_configured"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields, invalid_package"),
        (status = 429, body = ErrorEnvelope, description = "youtube_quota_exceeded"),
        (status = 502, body = ErrorEnvelope, description = "youtube_refused"),
        (status = 503, body = ErrorEnvelope, description = "youtube_unavailable, youtube_rate_limited")),
    security(("bearer" = [])))]
async fn import_video(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Json(body): Json<VideoRequest>,
) -> Result<(StatusCode, axum::Json<Version>), ApiError> {
    let version = state
        .service
        .import_video(&principal, id, &body.video)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(version)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// A video of the connected channel: its id or URL.
    pub video: String,
    /// The version to write; absent: the newest.
    #[serde(default)]
    pub version: Option<u32>,
}

/// Write a version's title, description and tags (and the project's category) to a video of
/// the user's connected channel. `videos.update` overwrites the parts it is sent, so the
/// video's snippet is read, changed and written back whole.
#[utoipa::path(post, path = "/api/v1/seo/projects/{id}/apply", tag = "seo",
    params(("id" = Uuid, Path)), request_body = ApplyRequest,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 200, body = Applied),
        (status = 409, body = ErrorEnvelope, description = "no_channel, youtube_reconnect, youtube_not_configured"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields, youtube_bad_request"),
        (status = 429, body = ErrorEnvelope, description = "youtube_quota_exceeded"),
        (status = 502, body = ErrorEnvelope, description = "youtube_refused"),
        (status = 503, body = ErrorEnvelope, description = "youtube_unavailable, youtube_rate_limited")),
    security(("bearer" = [])))]
async fn apply(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Json(body): Json<ApplyRequest>,
) -> Result<axum::Json<Applied>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .apply(&principal, id, body.version, &body.video)
            .await?,
    ))
}

/// The user's YouTube channel: connected, to reconnect, or none.
#[utoipa::path(get, path = "/api/v1/seo/channel", tag = "seo",
    responses(Authenticated, Forbidden, (status = 200, body = ChannelView)),
    security(("bearer" = [])))]
async fn get_channel(
    State(state): State<SeoState>,
    Creator(principal): Creator,
) -> Result<axum::Json<ChannelView>, ApiError> {
    Ok(axum::Json(state.service.channel(&principal).await?))
}

/// Forget the user's channel (its sealed token is deleted).
#[utoipa::path(delete, path = "/api/v1/seo/channel", tag = "seo",
    responses(Authenticated, Forbidden,
        (status = 204, description = "Disconnected"),
        (status = 404, body = ErrorEnvelope, description = "not_found: no channel connected")),
    security(("bearer" = [])))]
async fn disconnect_channel(
    State(state): State<SeoState>,
    Creator(principal): Creator,
) -> Result<StatusCode, ApiError> {
    state.service.disconnect_channel(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Where Google sends the user back: this server's `/api/v1/seo/channel/callback`, as
    /// registered with the OAuth client.
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectResponse {
    /// Open it in the browser: Google's consent page.
    pub authorization_url: String,
}

/// Start connecting a YouTube channel (OAuth with PKCE): the consent page's URL.
#[utoipa::path(post, path = "/api/v1/seo/channel/connect", tag = "seo", request_body = ConnectRequest,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 200, body = ConnectResponse),
        (status = 409, body = ErrorEnvelope, description = "youtube_not_configured: no OAuth client or no encryption key"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields: redirect_uri")),
    security(("bearer" = [])))]
async fn connect_channel(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Json(body): Json<ConnectRequest>,
) -> Result<axum::Json<ConnectResponse>, ApiError> {
    let authorization_url = state
        .service
        .connect_channel(&principal, &body.redirect_uri)
        .await?;
    Ok(axum::Json(ConnectResponse { authorization_url }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    /// Set by Google when the user refused (`access_denied`).
    pub error: Option<String>,
}

/// Where Google sends the user back after consent. Public: the one-time `state` names the
/// user. Redirects to the studio with `?channel=connected` or `?channel=failed&reason=…`.
#[utoipa::path(get, path = "/api/v1/seo/channel/callback", tag = "seo", params(CallbackQuery),
    responses(BadQuery,
        (status = 303, description = "Back to the SEO studio with the outcome")))]
async fn channel_callback(
    State(state): State<SeoState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let outcome = match (&query.state, &query.code, &query.error) {
        (_, _, Some(_)) => Err("denied"),
        (Some(s), Some(code), None) if s.len() <= 200 && code.len() <= 2000 => {
            match state.service.finish_channel(s, code).await {
                Ok(_) => Ok(()),
                Err(crate::service::SeoError::NotFound(_)) => Err("expired"),
                Err(e) => {
                    tracing::warn!(error = %e, "a channel could not be connected");
                    Err("refused")
                }
            }
        }
        _ => Err("invalid"),
    };
    let location = match outcome {
        Ok(()) => "/seo?channel=connected".to_owned(),
        Err(reason) => format!("/seo?channel=failed&reason={reason}"),
    };
    let mut response = Redirect::to(&location).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuotaQuery {
    /// How many quota days back (1 to 90, default 7).
    pub days: Option<u32>,
}

/// The YouTube quota spent per bucket per day (days in America/Los_Angeles) and the next
/// reset.
#[utoipa::path(get, path = "/api/v1/seo/quota", tag = "seo", params(QuotaQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = QuotaView),
        (status = 400, body = ErrorEnvelope, description = "invalid_days")),
    security(("bearer" = [])))]
async fn quota(
    State(state): State<SeoState>,
    Creator(_principal): Creator,
    Query(query): Query<QuotaQuery>,
) -> Result<axum::Json<QuotaView>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_days",
            "days must be between 1 and 90",
        ));
    }
    Ok(axum::Json(state.service.quota(days).await?))
}
