//! Package versions (list, read, save a hand edit, restore, diff, export), scoring of any
//! metadata, and the dashboard's score history.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
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
use crate::domain::diff::PackageDiff;
use crate::domain::{Package, Version};
use crate::ports::ScorePoint;
use crate::service::{ExportFormat, ScoreReport, ScoreRequest};

pub(super) fn routes() -> OpenApiRouter<SeoState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions, save_version))
        .routes(routes!(get_version))
        .routes(routes!(restore_version))
        .routes(routes!(diff_versions))
        .routes(routes!(export_project))
        .routes(routes!(export_csv))
        .routes(routes!(score))
        .routes(routes!(score_history))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub items: Vec<Version>,
}

/// Every version of the project's package, newest first.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/versions", tag = "seo", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = VersionList)),
    security(("bearer" = [])))]
async fn list_versions(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<VersionList>, ApiError> {
    Ok(axum::Json(VersionList {
        items: state.service.versions(&principal, id).await?,
    }))
}

/// Save a hand-edited package as the newest version. It is validated against YouTube's rules
/// and scored; a package that breaks a rule is refused (422) and nothing is stored.
#[utoipa::path(post, path = "/api/v1/seo/projects/{id}/versions", tag = "seo", params(("id" = Uuid, Path)),
    request_body = Package,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 201, body = Version),
        (status = 422, body = ErrorEnvelope, description = "invalid_package: every broken rule in `details`")),
    security(("bearer" = [])))]
async fn save_version(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Json(package): Json<Package>,
) -> Result<(StatusCode, axum::Json<Version>), ApiError> {
    let version = state.service.save_edit(&principal, id, package).await?;
    Ok((StatusCode::CREATED, axum::Json(version)))
}

/// One version.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/versions/{number}", tag = "seo",
    params(("id" = Uuid, Path), ("number" = u32, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = Version)),
    security(("bearer" = [])))]
async fn get_version(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path((id, number)): Path<(Uuid, u32)>,
) -> Result<axum::Json<Version>, ApiError> {
    Ok(axum::Json(
        state.service.version(&principal, id, number).await?,
    ))
}

/// Make an earlier version the newest again (as a copy; history is kept).
#[utoipa::path(post, path = "/api/v1/seo/projects/{id}/versions/{number}/restore", tag = "seo",
    params(("id" = Uuid, Path), ("number" = u32, Path)),
    responses(Authenticated, Forbidden, ById, (status = 201, body = Version)),
    security(("bearer" = [])))]
async fn restore_version(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path((id, number)): Path<(Uuid, u32)>,
) -> Result<(StatusCode, axum::Json<Version>), ApiError> {
    let version = state.service.restore(&principal, id, number).await?;
    Ok((StatusCode::CREATED, axum::Json(version)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older version's number.
    pub from: u32,
    /// The newer version's number.
    pub to: u32,
}

/// What changed between two versions, field by field.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/diff", tag = "seo",
    params(("id" = Uuid, Path), DiffQuery),
    responses(Authenticated, Forbidden, ById, BadQuery, (status = 200, body = PackageDiff)),
    security(("bearer" = [])))]
async fn diff_versions(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Query(query): Query<DiffQuery>,
) -> Result<axum::Json<PackageDiff>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .diff(&principal, id, query.from, query.to)
            .await?,
    ))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Text,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (the version) or `text` (ready to paste into YouTube Studio).
    #[param(inline)]
    pub format: Option<Format>,
    /// The version's number; absent: the newest.
    pub version: Option<u32>,
}

/// A version as a download: JSON, or plain text ready to paste into YouTube Studio.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/export", tag = "seo",
    params(("id" = Uuid, Path), ExportQuery),
    responses(Authenticated, Forbidden, ById, BadQuery,
        (status = 200, description = "The version", content(
            (Version = "application/json"),
            (String = "text/plain")))),
    security(("bearer" = [])))]
async fn export_project(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match query.format.unwrap_or_default() {
        Format::Json => ExportFormat::Json,
        Format::Text => ExportFormat::Text,
    };
    let (body, content_type) = state
        .service
        .export(&principal, id, query.version, format)
        .await?;
    let extension = if format == ExportFormat::Json {
        "json"
    } else {
        "txt"
    };
    Ok((
        [
            (http::header::CONTENT_TYPE, content_type.to_owned()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"seo-{id}.{extension}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CsvQuery {
    /// Comma-separated project ids (at most 200); each project's newest version is a row.
    pub ids: String,
}

/// The most projects one CSV export may name.
const MAX_CSV_PROJECTS: usize = 200;

/// Several projects' newest packages as CSV, one row a project (cells a spreadsheet would run
/// as formulas are defused).
#[utoipa::path(get, path = "/api/v1/seo/export.csv", tag = "seo", params(CsvQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, description = "CSV", content_type = "text/csv"),
        (status = 400, body = ErrorEnvelope, description = "invalid_ids")),
    security(("bearer" = [])))]
async fn export_csv(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Query(query): Query<CsvQuery>,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = query
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAX_CSV_PROJECTS + 1)
        .collect();
    if parts.is_empty() || parts.len() > MAX_CSV_PROJECTS {
        return Err(ApiError::bad_request(
            "invalid_ids",
            format!("name 1 to {MAX_CSV_PROJECTS} project ids, separated by commas"),
        ));
    }
    let ids = parts
        .iter()
        .map(|p| {
            Uuid::parse_str(p).map_err(|_| {
                ApiError::bad_request("invalid_ids", format!("`{p}` is not a project id"))
            })
        })
        .collect::<Result<Vec<Uuid>, ApiError>>()?;
    let body = state.service.export_csv(&principal, &ids).await?;
    Ok((
        [
            (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"seo-projects.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// Validate and score any metadata — a draft being edited, an existing video — with the
/// studio's rules and scorer. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/seo/score", tag = "seo", request_body = ScoreRequest,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 200, body = ScoreReport),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields: too large to score")),
    security(("bearer" = [])))]
async fn score(
    State(state): State<SeoState>,
    Creator(_principal): Creator,
    Json(request): Json<ScoreRequest>,
) -> Result<axum::Json<ScoreReport>, ApiError> {
    Ok(axum::Json(state.service.score(&request)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many days back (1 to 365, default 90).
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreHistory {
    /// Oldest first.
    pub points: Vec<ScorePoint>,
}

/// The scores of the user's versions over time, for the dashboard.
#[utoipa::path(get, path = "/api/v1/seo/scores", tag = "seo", params(HistoryQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = ScoreHistory),
        (status = 400, body = ErrorEnvelope, description = "invalid_days")),
    security(("bearer" = [])))]
async fn score_history(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Query(query): Query<HistoryQuery>,
) -> Result<axum::Json<ScoreHistory>, ApiError> {
    let days = query.days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_days",
            "days must be between 1 and 365",
        ));
    }
    Ok(axum::Json(ScoreHistory {
        points: state.service.score_history(&principal, days).await?,
    }))
}
