//! Sessions: registration, sign-in, refresh (by body or by cookie with its CSRF check),
//! logout, the signed-in user's profile and passwords.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use confab_core::ApiError;
use confab_core::auth::CurrentUser;
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{Authenticated, Forbidden, JsonBody};
use confab_core::extract::{ClientMeta, Json, OptionalJson};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::UserView;
use crate::secret;
use crate::service::SignedIn;

use super::{AuthState, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, REFRESH_COOKIE_PATH};

/// This area's routes.
pub(super) fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(complete_password_reset))
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
    state.throttle.check(client.ip).await?;
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
    state.throttle.check(client.ip).await?;
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
    state.throttle.check(client.ip).await?;
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
    state.throttle.check(client.ip).await?;
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
    state.throttle.check(client.ip).await?;
    let signed_in = state
        .service
        .complete_password_reset(&body.email, &body.password, &body.new_password, &client)
        .await?;
    signed_in_response(&state, &headers, jar, signed_in, false)
}
