//! Projects: create, list (search, archived, cursor), read, change, delete, and the
//! transcript as given and as parsed.

use axum::extract::{Path, Query, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, BadQuery, ById, Forbidden, JsonBody};
use confab_core::extract::BlockingJson;
use confab_core::pagination::{Page, PageParams, encode_cursor};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Creator, SeoState};
use crate::domain::{Project, ProjectChanges, ProjectInput, Transcript};
use crate::ports::ProjectFilter;

/// `body_limit`: what a project with the largest transcript takes as JSON.
pub(super) fn routes(body_limit: usize) -> OpenApiRouter<SeoState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .routes(routes!(get_transcript))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words that must all appear in the topic or keywords.
    pub q: Option<String>,
    /// `true`: only archived projects; `false`: only active ones; absent: both.
    pub archived: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ProjectPosition {
    updated_at: i64,
    id: Uuid,
}

/// The longest search accepted, in bytes.
const MAX_QUERY_BYTES: usize = 200;

/// Create a project, optionally with a transcript (plain text, SRT or WebVTT).
#[utoipa::path(post, path = "/api/v1/seo/projects", tag = "seo", request_body = ProjectInput,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 201, body = Project),
        (status = 413, body = ErrorEnvelope, description = "transcript_too_large"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields, invalid_transcript (names the line)")),
    security(("bearer" = [])))]
async fn create_project(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    BlockingJson(input): BlockingJson<ProjectInput>,
) -> Result<(StatusCode, axum::Json<Project>), ApiError> {
    let project = state.service.create_project(&principal, input).await?;
    Ok((StatusCode::CREATED, axum::Json(project)))
}

/// The user's projects, most recently changed first.
#[utoipa::path(get, path = "/api/v1/seo/projects", tag = "seo", params(ListQuery),
    responses(Authenticated, Forbidden, BadQuery,
        (status = 200, body = Page<Project>),
        (status = 400, body = ErrorEnvelope, description = "invalid_cursor, invalid_limit, invalid_query")),
    security(("bearer" = [])))]
async fn list_projects(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Project>>, ApiError> {
    let page = PageParams {
        cursor: query.cursor,
        limit: query.limit,
    };
    let limit = page.limit()?;
    let after = page.position::<ProjectPosition>()?;
    if query.q.as_ref().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("a search may be at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let filter = ProjectFilter {
        query: query.q,
        archived: query.archived,
        after: after.map(|p| (p.updated_at, p.id)),
        limit: limit + 1,
    };
    let rows = state.service.projects(&principal, filter).await?;
    Ok(axum::Json(Page::from_rows(rows, limit, |p| {
        encode_cursor(&ProjectPosition {
            updated_at: p.updated_at,
            id: p.id,
        })
    })))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}", tag = "seo", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = Project)),
    security(("bearer" = [])))]
async fn get_project(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Project>, ApiError> {
    Ok(axum::Json(state.service.project(&principal, id).await?))
}

/// Change a project's fields, transcript (an empty string removes it) or archived flag.
#[utoipa::path(patch, path = "/api/v1/seo/projects/{id}", tag = "seo", params(("id" = Uuid, Path)),
    request_body = ProjectChanges,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 200, body = Project),
        (status = 413, body = ErrorEnvelope, description = "transcript_too_large"),
        (status = 422, body = ErrorEnvelope, description = "invalid_fields, invalid_transcript")),
    security(("bearer" = [])))]
async fn update_project(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
    BlockingJson(changes): BlockingJson<ProjectChanges>,
) -> Result<axum::Json<Project>, ApiError> {
    Ok(axum::Json(
        state
            .service
            .update_project(&principal, id, changes)
            .await?,
    ))
}

/// Delete a project with its transcript and every version.
#[utoipa::path(delete, path = "/api/v1/seo/projects/{id}", tag = "seo", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 204, description = "Deleted")),
    security(("bearer" = [])))]
async fn delete_project(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_project(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct TranscriptView {
    /// The text as it was given.
    pub text: String,
    #[serde(flatten)]
    pub parsed: Transcript,
}

/// The project's transcript as given and its segments; 404 when it has none.
#[utoipa::path(get, path = "/api/v1/seo/projects/{id}/transcript", tag = "seo", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = TranscriptView)),
    security(("bearer" = [])))]
async fn get_transcript(
    State(state): State<SeoState>,
    Creator(principal): Creator,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TranscriptView>, ApiError> {
    let (text, parsed) = state
        .service
        .transcript(&principal, id)
        .await?
        .ok_or_else(|| ApiError::not_found("this project has no transcript"))?;
    Ok(axum::Json(TranscriptView { text, parsed }))
}
