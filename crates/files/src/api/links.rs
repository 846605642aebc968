//! Share links of a file: make one (the URL is shown once), list, revoke.

use axum::extract::{Path, State};
use confab_core::ApiError;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, ById, Forbidden, JsonBody};
use confab_core::extract::{ClientMeta, Json};
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::views::{LinkList, LinkView, NewLink};
use super::{FilesState, Owner};

pub(super) fn routes() -> OpenApiRouter<FilesState> {
    OpenApiRouter::new()
        .routes(routes!(list_links, create_link))
        .routes(routes!(revoke_link))
}

/// Make a share link to a file that lives `hours`; anyone with the URL can read the file
/// until it expires or is revoked. The URL is in this answer only.
#[utoipa::path(post, path = "/api/v1/files/{id}/links", tag = "files", params(("id" = Uuid, Path)),
    request_body = NewLink,
    responses(Authenticated, Forbidden, JsonBody, ById,
        (status = 201, body = LinkView),
        (status = 409, body = ErrorEnvelope, description = "file_not_ready, file_quarantined: only clean or unscanned files are shared"),
        (status = 422, body = ErrorEnvelope, description = "invalid_hours")),
    security(("bearer" = [])))]
async fn create_link(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    client: ClientMeta,
    Path(id): Path<Uuid>,
    Json(input): Json<NewLink>,
) -> Result<(StatusCode, axum::Json<LinkView>), ApiError> {
    let created = state
        .service
        .create_link(principal.user_id, id, input.hours, &client)
        .await?;
    let url = format!("/f/{}", created.token);
    Ok((
        StatusCode::CREATED,
        axum::Json(LinkView::new(&created.link, Some(url))),
    ))
}

/// A file's share links, newest first (their URLs are not shown again).
#[utoipa::path(get, path = "/api/v1/files/{id}/links", tag = "files", params(("id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 200, body = LinkList)),
    security(("bearer" = [])))]
async fn list_links(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<LinkList>, ApiError> {
    let links = state.service.links(principal.user_id, id).await?;
    Ok(axum::Json(LinkList {
        links: links.iter().map(|l| LinkView::new(l, None)).collect(),
    }))
}

/// Revoke a share link: it answers 403 from now on.
#[utoipa::path(delete, path = "/api/v1/files/{id}/links/{link_id}", tag = "files",
    params(("id" = Uuid, Path), ("link_id" = Uuid, Path)),
    responses(Authenticated, Forbidden, ById, (status = 204, description = "revoked")),
    security(("bearer" = [])))]
async fn revoke_link(
    State(state): State<FilesState>,
    Owner(principal): Owner,
    client: ClientMeta,
    Path((id, link_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .revoke_link(principal.user_id, id, link_id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
