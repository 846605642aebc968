//! The auth service's HTTP API (`/api/v1/auth/...` and `/.well-known/jwks.json`). Handlers are
//! thin: extract, call [`AuthService`], map the error.
//!
//! Browsers also get the refresh token as an HttpOnly, SameSite=Strict cookie. A state change
//! authenticated by that cookie (refresh, logout) must echo the `confab_csrf` cookie in the
//! `x-csrf-token` header (double-submit), which a cross-site page cannot read.
//!
//! Long (about 930 lines) because every auth route's handler carries its OpenAPI annotation and
//! request/response types here, a third of the file; the next cut is one module per area
//! (sessions, API keys, users, groups), as the chat API already has.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use confab_core::ApiError;
use confab_core::auth::{AdminUser, CurrentUser, DynAuthenticator, JwkSet, Role, Scope};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{
    AdminOnly, Authenticated, BadQuery, ById, Forbidden, JsonBody,
};
use confab_core::extract::{ClientMeta, Json, OptionalJson};
use confab_core::pagination::{Page, PageParams, encode_cursor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::{ApiKeyView, GroupView, UserStatus, UserView};
use crate::ports::UserFilter;
use crate::secret;
use crate::service::{AuthError, AuthService, SignedIn, UserChanges};
use crate::throttle::IpThrottle;
use confab_store::StoreError;

pub const REFRESH_COOKIE: &str = "confab_refresh";
pub const CSRF_COOKIE: &str = "confab_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// What the auth routes share.
#[derive(Clone)]
pub struct AuthState {
    pub service: Arc<AuthService>,
    pub authenticator: DynAuthenticator,
    pub throttle: Arc<IpThrottle>,
    /// Cookies are `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// `X-Forwarded-Proto: https` also makes them `Secure`.
    pub trust_proxy_headers: bool,
}

impl FromRef<AuthState> for DynAuthenticator {
    fn from_ref(state: &AuthState) -> Self {
        state.authenticator.clone()
    }
}

/// The auth routes with their OpenAPI description.
pub fn router(state: AuthState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(complete_password_reset))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(jwks))
        .routes(routes!(list_users))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(lock_user))
        .routes(routes!(reset_password))
        .routes(routes!(approve_user))
        .routes(routes!(unlock_user))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(delete_group))
        .routes(routes!(add_member, remove_member))
        .with_state(state)
        .layer(axum::middleware::map_response(no_store))
}

/// Responses here carry tokens, keys, temporary passwords or account data: no cache (the
/// browser's, a proxy's) may keep them. A route that sets its own policy (the public JWKS)
/// keeps it.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Omit to use the `confab_refresh` cookie (then send `x-csrf-token`).
    pub refresh_token: Option<String>,
}

/// Tokens and the signed-in user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Absent for browsers (requests with `Sec-Fetch-*` headers, or a refresh by cookie):
    /// they hold it only in the HttpOnly cookie, out of reach of the page's scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
}

/// The new user, and tokens unless the account waits for approval.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Absent for browsers, which hold it only in the HttpOnly cookie (see `TokenResponse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteResetRequest {
    pub email: String,
    /// The temporary password the administrator handed over.
    pub password: String,
    pub new_password: String,
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// RFC 3339; omit for a key that does not expire.
    #[serde(default, with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
}

/// The key itself (shown only here, once) and its stored description.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    pub key: String,
    pub api_key: ApiKeyView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
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

fn cookies_secure(state: &AuthState, headers: &HeaderMap) -> bool {
    state.secure_cookies
        || (state.trust_proxy_headers
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https")))
}

fn session_cookies(
    state: &AuthState,
    headers: &HeaderMap,
    jar: CookieJar,
    refresh_token: &str,
) -> CookieJar {
    let secure = cookies_secure(state, headers);
    let max_age = time::Duration::seconds(
        i64::try_from(state.service.config().refresh_token_ttl_secs).unwrap_or(i64::MAX),
    );
    let refresh = Cookie::build((REFRESH_COOKIE, refresh_token.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(REFRESH_COOKIE_PATH)
        .max_age(max_age)
        .build();
    let csrf = Cookie::build((CSRF_COOKIE, secret::random_token()))
        .http_only(false)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(max_age)
        .build();
    jar.add(refresh).add(csrf)
}

fn clear_cookies(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(REFRESH_COOKIE).path(REFRESH_COOKIE_PATH))
        .remove(Cookie::build(CSRF_COOKIE).path("/"))
}

/// The refresh token from the body, or from the cookie after the CSRF check.
fn presented_refresh(
    jar: &CookieJar,
    headers: &HeaderMap,
    body: Option<String>,
) -> Result<Option<String>, ApiError> {
    if let Some(token) = body {
        return Ok(Some(token));
    }
    let Some(cookie) = jar.get(REFRESH_COOKIE) else {
        return Ok(None);
    };
    let expected = jar.get(CSRF_COOKIE).map(|c| c.value().to_owned());
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match (expected, sent) {
        (Some(expected), Some(sent)) if secret::same(&expected, sent) => {
            Ok(Some(cookie.value().to_owned()))
        }
        _ => Err(ApiError::forbidden(
            "csrf_failed",
            "a cookie-authenticated request must send the confab_csrf cookie's value in the x-csrf-token header",
        )),
    }
}

/// Whether the refresh token may go into the JSON body. Browsers get it only as the HttpOnly
/// cookie, so a script injected into the page cannot read the long-lived credential: a
/// refresh authenticated by the cookie is a browser's, and so is any request with
/// `Sec-Fetch-*` headers, which browsers add to every request and scripts cannot remove.
/// Other clients (the CLI, SDKs) have no cookie jar and need it in the body.
fn refresh_in_body(headers: &HeaderMap, by_cookie: bool) -> bool {
    !by_cookie && !headers.contains_key("sec-fetch-site") && !headers.contains_key("sec-fetch-mode")
}

fn token_response(signed_in: SignedIn, refresh_in_body: bool) -> Result<TokenResponse, ApiError> {
    let tokens = signed_in
        .tokens
        .ok_or_else(|| ApiError::internal("sign-in produced no tokens"))?;
    Ok(TokenResponse {
        access_token: tokens.access_token,
        refresh_token: refresh_in_body.then_some(tokens.refresh_token),
        token_type: "Bearer".into(),
        expires_in: tokens.expires_in,
        user: signed_in.user,
    })
}

/// Create an account. The first account becomes an admin; otherwise the registration policy
/// decides (open: active at once; approval: pending; closed: refused).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        JsonBody,
        (status = 201, body = RegisterResponse, description = "Created; tokens unless pending"),
        (status = 403, body = ErrorEnvelope, description = "registration_closed"),
        (status = 409, body = ErrorEnvelope, description = "email_taken"),
        (status = 422, body = ErrorEnvelope, description = "invalid_email, invalid_name, weak_password (details list every rule broken)"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited"),
    ))]
async fn register(
    State(state): State<AuthState>,
    client: ClientMeta,
    headers: HeaderMap,
    jar: CookieJar,
    Json(body): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    state.throttle.check(client.ip)?;
    let signed_in = state
        .service
        .register(&body.email, &body.name, &body.password, &client)
        .await?;
    let (jar, response) = match signed_in.tokens {
        Some(tokens) => (
            session_cookies(&state, &headers, jar, &tokens.refresh_token),
            RegisterResponse {
                user: signed_in.user,
                access_token: Some(tokens.access_token),
                refresh_token: refresh_in_body(&headers, false).then_some(tokens.refresh_token),
                token_type: Some("Bearer".into()),
                expires_in: Some(tokens.expires_in),
            },
        ),
        None => (
            jar,
            RegisterResponse {
                user: signed_in.user,
                access_token: None,
                refresh_token: None,
                token_type: None,
                expires_in: None,
            },
        ),
    };
    Ok((StatusCode::CREATED, jar, Json(response)).into_response())
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        JsonBody,
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorEnvelope, description = "invalid_credentials (same for unknown email and wrong password)"),
        (status = 403, body = ErrorEnvelope, description = "account_pending, account_disabled"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited (this address, any account) or login_throttled (too many failures for this account from this address; alike for unknown emails), with Retry-After"),
    ))]
async fn login(
    State(state): State<AuthState>,
    client: ClientMeta,
    headers: HeaderMap,
    jar: CookieJar,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    state.throttle.check(client.ip)?;
    let signed_in = state
        .service
        .login(&body.email, &body.password, &client)
        .await?;
    signed_in_response(&state, &headers, jar, signed_in, false)
}

/// The tokens of a sign-in, in the body and the session cookies.
fn signed_in_response(
    state: &AuthState,
    headers: &HeaderMap,
    jar: CookieJar,
    signed_in: SignedIn,
    by_cookie: bool,
) -> Result<Response, ApiError> {
    let refresh_token = signed_in
        .tokens
        .as_ref()
        .map(|t| t.refresh_token.clone())
        .ok_or_else(|| ApiError::internal("sign-in produced no tokens"))?;
    let response = token_response(signed_in, refresh_in_body(headers, by_cookie))?;
    let jar = session_cookies(state, headers, jar, &refresh_token);
    Ok((jar, Json(response)).into_response())
}

/// Exchange a refresh token (body, or cookie plus `x-csrf-token`) for new tokens. The old
/// refresh token stops working; presenting it again revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "optional when the cookie is used"),
    responses(
        JsonBody,
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorEnvelope, description = "invalid_refresh_token, refresh_token_reused"),
        (status = 403, body = ErrorEnvelope, description = "csrf_failed"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited"),
    ))]
async fn refresh(
    State(state): State<AuthState>,
    client: ClientMeta,
    headers: HeaderMap,
    jar: CookieJar,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    state.throttle.check(client.ip)?;
    let in_body = body.unwrap_or_default().refresh_token;
    let by_cookie = in_body.is_none();
    let presented = presented_refresh(&jar, &headers, in_body)?;
    let Some(token) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "send refresh_token in the body or the confab_refresh cookie",
        ));
    };
    match state.service.refresh(&token, &client).await {
        Ok(signed_in) => signed_in_response(&state, &headers, jar, signed_in, by_cookie),
        Err(e) => Ok((clear_cookies(jar), ApiError::from(e)).into_response()),
    }
}

/// End the session: the access token's (Bearer), or the refresh token's (body or cookie).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body(content = RefreshRequest, description = "optional"),
    responses(
        Authenticated, Forbidden, JsonBody,
        (status = 204, description = "Signed out; cookies cleared"),
        (status = 401, body = ErrorEnvelope, description = "no session given"),
        (status = 403, body = ErrorEnvelope, description = "csrf_failed, session_required (API keys cannot sign out)")),
    security((), ("bearer" = [])))]
async fn logout(
    State(state): State<AuthState>,
    client: ClientMeta,
    headers: HeaderMap,
    jar: CookieJar,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let (user_id, session_id) = if headers.contains_key(http::header::AUTHORIZATION) {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let principal = state.authenticator.authenticate(token.trim()).await?;
        (principal.user_id, principal.require_session()?)
    } else {
        let token = presented_refresh(&jar, &headers, body.unwrap_or_default().refresh_token)?
            .ok_or_else(|| {
                ApiError::unauthorized("send a Bearer access token, or the refresh token")
            })?;
        let (session, user) = state.service.session_of_refresh(&token).await?;
        (user, session)
    };
    state.service.logout(user_id, session_id, &client).await?;
    Ok((StatusCode::NO_CONTENT, clear_cookies(jar)).into_response())
}

/// The signed-in user (works with API keys of any scope too).
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses(Authenticated,
        (status = 200, body = UserView)),
    security(("bearer" = [])))]
async fn me(
    State(state): State<AuthState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.service.user(principal.user_id).await?))
}

/// Change the signed-in user's display name.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = UpdateMeRequest,
    responses(Authenticated, Forbidden, JsonBody,
        (status = 200, body = UserView), (status = 403, body = ErrorEnvelope, description = "session_required"), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn update_me(
    State(state): State<AuthState>,
    CurrentUser(principal): CurrentUser,
    Json(body): Json<UpdateMeRequest>,
) -> Result<Json<UserView>, ApiError> {
    principal.require_session()?;
    Ok(Json(
        state
            .service
            .update_name(principal.user_id, &body.name)
            .await?,
    ))
}

/// Change the password; every other session of the user is signed out and every API key of
/// the user is revoked.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    responses(
        Authenticated, Forbidden, JsonBody,
        (status = 204, description = "Changed"),
        (status = 403, body = ErrorEnvelope, description = "wrong_password, session_required"),
        (status = 422, body = ErrorEnvelope, description = "weak_password")),
    security(("bearer" = [])))]
async fn change_password(
    State(state): State<AuthState>,
    client: ClientMeta,
    CurrentUser(principal): CurrentUser,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state.throttle.check(client.ip)?;
    let session_id = principal.require_session()?;
    state
        .service
        .change_password(
            principal.user_id,
            session_id,
            &body.current_password,
            &body.new_password,
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Choose a new password after an administrator reset it: the temporary password proves
/// who you are; answers like sign-in.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", request_body = CompleteResetRequest,
    responses(
        JsonBody,
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorEnvelope, description = "invalid_credentials"),
        (status = 409, body = ErrorEnvelope, description = "no_reset_pending"),
        (status = 422, body = ErrorEnvelope, description = "weak_password"),
        (status = 429, body = ErrorEnvelope, description = "rate_limited, login_throttled"),
    ))]
async fn complete_password_reset(
    State(state): State<AuthState>,
    client: ClientMeta,
    headers: HeaderMap,
    jar: CookieJar,
    Json(body): Json<CompleteResetRequest>,
) -> Result<Response, ApiError> {
    state.throttle.check(client.ip)?;
    let signed_in = state
        .service
        .complete_password_reset(&body.email, &body.password, &body.new_password, &client)
        .await?;
    signed_in_response(&state, &headers, jar, signed_in, false)
}

/// The signed-in user's API keys (not revoked).
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "auth",
    responses(Authenticated, Forbidden,
        (status = 200, body = ApiKeyList), (status = 403, body = ErrorEnvelope, description = "session_required")),
    security(("bearer" = [])))]
async fn list_api_keys(
    State(state): State<AuthState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    principal.require_session()?;
    Ok(Json(ApiKeyList {
        items: state.service.list_api_keys(principal.user_id).await?,
    }))
}

/// Create an API key. The key is in the response once and never again.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "auth", request_body = CreateApiKeyRequest,
    responses(
        Authenticated, Forbidden, JsonBody,
        (status = 201, body = CreatedApiKeyResponse),
        (status = 403, body = ErrorEnvelope, description = "session_required"),
        (status = 409, body = ErrorEnvelope, description = "too_many_keys"),
        (status = 422, body = ErrorEnvelope, description = "invalid_name, invalid_scopes, invalid_expiry")),
    security(("bearer" = [])))]
async fn create_api_key(
    State(state): State<AuthState>,
    client: ClientMeta,
    CurrentUser(principal): CurrentUser,
    Json(body): Json<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    principal.require_session()?;
    let created = state
        .service
        .create_api_key(
            &principal,
            &body.name,
            &body.scopes,
            body.expires_at,
            &client,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            key: created.key,
            api_key: created.view,
        }),
    )
        .into_response())
}

/// Revoke one of the signed-in user's API keys.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(Authenticated, Forbidden, ById,
        (status = 204, description = "Revoked")),
    security(("bearer" = [])))]
async fn revoke_api_key(
    State(state): State<AuthState>,
    client: ClientMeta,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    principal.require_session()?;
    state
        .service
        .revoke_api_key(principal.user_id, id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Public keys that verify access tokens (RFC 7517; Ed25519 per RFC 8037).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = JwkSet)))]
async fn jwks(State(state): State<AuthState>) -> Response {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.service.keys().jwks()),
    )
        .into_response()
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
/// Each auth failure as the API answers it: its status, stable code and message; store and
/// key-ring failures are internal (their detail goes to the log, never to the client).
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Invalid {
                code,
                message,
                details,
            } => ApiError::validation(code, message).with_details(details),
            AuthError::EmailTaken => ApiError::conflict("email_taken", message),
            AuthError::RegistrationClosed => ApiError::forbidden("registration_closed", message),
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::Throttled { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_throttled", message)
                    .with_retry_after(retry_after_secs)
            }
            AuthError::Pending => ApiError::forbidden("account_pending", message),
            AuthError::Disabled => ApiError::forbidden("account_disabled", message),
            AuthError::InvalidRefresh => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", message)
            }
            AuthError::RefreshReused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "refresh_token_reused", message)
            }
            AuthError::WrongPassword => ApiError::forbidden("wrong_password", message),
            AuthError::PasswordChangeRequired => {
                ApiError::forbidden("password_change_required", message)
            }
            AuthError::NotFound(_) => ApiError::not_found(message),
            AuthError::Conflict { code, message } => ApiError::conflict(code, message),
            AuthError::Store(StoreError::NotFound) => ApiError::not_found("not found"),
            AuthError::Store(StoreError::Unavailable(detail)) => ApiError::unavailable(detail),
            AuthError::Store(other) => ApiError::internal(other.to_string()),
            AuthError::Keys(e) => ApiError::internal(e.to_string()),
            AuthError::Internal(detail) => ApiError::internal(detail),
        }
    }
}
