//! User and group administration (admin only): listing, status and role changes, locks,
//! password resets, deletion, groups and their members.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::auth::{AdminUser, Role};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery, ById, JsonBody};
use confab_core::extract::{ClientMeta, Json};
use confab_core::pagination::{Page, PageParams, encode_cursor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{GroupView, UserStatus, UserView};
use crate::ports::UserFilter;
use crate::service::UserChanges;

use super::AuthState;

/// This area's routes.
pub(super) fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(lock_user))
        .routes(routes!(reset_password))
        .routes(routes!(approve_user))
        .routes(routes!(unlock_user))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(delete_group))
        .routes(routes!(add_member, remove_member))
}

/// A temporary password, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetResponse {
    pub user_id: Uuid,
    /// Hand this to the user; it only lets them choose a new password.
    pub temporary_password: String,
}

/// A deletion under way.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDeletionResponse {
    pub user_id: Uuid,
    /// The background job (`user.purge`) deleting the user's data; follow it at
    /// `/api/v1/admin/jobs/{job_id}`.
    pub job_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    pub items: Vec<GroupView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// A substring of the email or name.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    pub name: String,
}

/// List users (admin), oldest first, with filters.
#[utoipa::path(get, path = "/api/v1/auth/users", tag = "users", params(UserQuery),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, body = Page<UserView>)),
    security(("bearer" = [])))]
async fn list_users(
    State(state): State<AuthState>,
    _admin: AdminUser,
    Query(query): Query<UserQuery>,
) -> Result<Json<Page<UserView>>, ApiError> {
    let page = PageParams {
        cursor: query.cursor,
        limit: query.limit,
    };
    let limit = page.limit()?;
    let filter = UserFilter {
        status: query.status,
        query: query.q,
        after: page.position::<(i64, String)>()?,
        limit,
    };
    let users = state.service.list_users(&filter).await?;
    Ok(Json(Page::from_rows(users, limit, |u| {
        encode_cursor(&(u.created_at, u.id.to_string()))
    })))
}

/// Change a user's role or status (admin). Disabling signs the user out everywhere.
#[utoipa::path(patch, path = "/api/v1/auth/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, JsonBody, ById,
        (status = 200, body = UserView), (status = 409, body = ErrorEnvelope, description = "last_admin")),
    security(("bearer" = [])))]
async fn update_user(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let changes = UserChanges {
        role: body.role,
        status: body.status,
    };
    Ok(Json(
        state
            .service
            .update_user(&admin, id, &changes, &client)
            .await?,
    ))
}

/// Approve a pending user (admin).
#[utoipa::path(post, path = "/api/v1/auth/users/{id}/approve", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = UserView)),
    security(("bearer" = [])))]
async fn approve_user(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>, ApiError> {
    let changes = UserChanges {
        role: None,
        status: Some(UserStatus::Active),
    };
    Ok(Json(
        state
            .service
            .update_user(&admin, id, &changes, &client)
            .await?,
    ))
}

/// Unlock an account (admin): ends the waits after failed sign-ins early and re-enables an
/// account an admin locked.
#[utoipa::path(post, path = "/api/v1/auth/users/{id}/unlock", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = UserView)),
    security(("bearer" = [])))]
async fn unlock_user(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.service.unlock_user(&admin, id, &client).await?))
}

/// Lock an account (admin): it cannot sign in, and its sessions and API keys stop working
/// at once, until unlocked.
#[utoipa::path(post, path = "/api/v1/auth/users/{id}/lock", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = UserView), (status = 409, body = ErrorEnvelope, description = "last_admin, cannot_lock_self")),
    security(("bearer" = [])))]
async fn lock_user(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.service.lock_user(&admin, id, &client).await?))
}

/// Reset a user's password (admin): returns a temporary password, once, that only lets the
/// user choose a new one (`POST /api/v1/auth/password/reset`); their sessions end and their
/// API keys are revoked.
#[utoipa::path(post, path = "/api/v1/auth/users/{id}/password-reset", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 200, body = PasswordResetResponse)),
    security(("bearer" = [])))]
async fn reset_password(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<Json<PasswordResetResponse>, ApiError> {
    let temporary_password = state.service.reset_password(&admin, id, &client).await?;
    Ok(Json(PasswordResetResponse {
        user_id: id,
        temporary_password,
    }))
}

/// Delete a user with all their data (admin): the account is disabled at once; a background
/// job deletes their conversations, keys and files, then the account.
#[utoipa::path(delete, path = "/api/v1/auth/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 202, body = UserDeletionResponse), (status = 409, body = ErrorEnvelope, description = "last_admin, cannot_delete_self")),
    security(("bearer" = [])))]
async fn delete_user(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let job_id = state.service.delete_user(&admin, id, &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(UserDeletionResponse {
            user_id: id,
            job_id,
        }),
    )
        .into_response())
}

/// List groups with their members (admin).
#[utoipa::path(get, path = "/api/v1/auth/groups", tag = "users",
    responses(Authenticated, AdminOnly,
        (status = 200, body = GroupList)),
    security(("bearer" = [])))]
async fn list_groups(
    State(state): State<AuthState>,
    _admin: AdminUser,
) -> Result<Json<GroupList>, ApiError> {
    Ok(Json(GroupList {
        items: state.service.list_groups().await?,
    }))
}

/// Create a group (admin).
#[utoipa::path(post, path = "/api/v1/auth/groups", tag = "users", request_body = CreateGroupRequest,
    responses(Authenticated, AdminOnly, JsonBody,
        (status = 201, body = GroupView), (status = 409, body = ErrorEnvelope, description = "group_exists")),
    security(("bearer" = [])))]
async fn create_group(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Json(body): Json<CreateGroupRequest>,
) -> Result<Response, ApiError> {
    let group = state
        .service
        .create_group(&admin, &body.name, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

/// Delete a group (admin); its members stay.
#[utoipa::path(delete, path = "/api/v1/auth/groups/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 204, description = "Deleted")),
    security(("bearer" = [])))]
async fn delete_group(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_group(&admin, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a user to a group (admin).
#[utoipa::path(put, path = "/api/v1/auth/groups/{id}/members/{user_id}", tag = "users",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 204, description = "Member")),
    security(("bearer" = [])))]
async fn add_member(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .set_membership(&admin, id, user_id, true, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a group (admin).
#[utoipa::path(delete, path = "/api/v1/auth/groups/{id}/members/{user_id}", tag = "users",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(Authenticated, AdminOnly, ById,
        (status = 204, description = "Removed")),
    security(("bearer" = [])))]
async fn remove_member(
    State(state): State<AuthState>,
    admin: AdminUser,
    client: ClientMeta,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .set_membership(&admin, id, user_id, false, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
