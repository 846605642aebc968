//! Auth flows over a real socket: registration, login, refresh rotation and reuse detection,
//! cookies and CSRF, logout, profile, password change, lockout, throttling, API keys,
//! registration policies and key rotation.

use confab_core::auth::{AccessClaims, JwkSet, KeySet, Role};
use confab_core::config::RegistrationPolicy;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

#[tokio::test]
async fn first_user_is_admin_and_gets_tokens_and_cookies() {
    let app = TestApp::start().await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "Ada@Example.com", "password": PASSWORD, "name": " Ada "}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let body = &response.body;
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["status"], "active");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["user"].get("password_hash").is_none());
    let cookies = response.cookies();
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("confab_refresh="))
        .expect("refresh cookie");
    assert!(
        refresh.contains("HttpOnly")
            && refresh.contains("SameSite=Strict")
            && refresh.contains("Path=/api/v1/auth"),
        "{refresh}"
    );
    assert!(
        !refresh.contains("Secure"),
        "plain http is not Secure: {refresh}"
    );
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("confab_csrf="))
        .expect("csrf cookie");
    assert!(!csrf.contains("HttpOnly"), "{csrf}");

    let second = app.register("bob@example.com").await;
    assert_eq!(second["user"]["role"], "user");
    app.stop().await;
}

#[tokio::test]
async fn registration_rejects_bad_input_with_codes() {
    let app = TestApp::start().await;
    let register = |body: serde_json::Value| app.post("/api/v1/auth/register", None, body);

    register(json!({"email": "not-an-email", "password": PASSWORD, "name": "X"}))
        .await
        .assert_error(422, "invalid_email");
    register(json!({"email": "x@example.com", "password": PASSWORD, "name": "  "}))
        .await
        .assert_error(422, "invalid_name");
    let weak =
        register(json!({"email": "x@example.com", "password": "password123", "name": "X"})).await;
    weak.assert_error(422, "weak_password");
    assert!(
        weak.body["error"]["details"][0]
            .as_str()
            .unwrap()
            .contains("common"),
        "{}",
        weak.text
    );
    let weak = register(json!({"email": "x@example.com", "password": "aaaa", "name": "X"})).await;
    assert_eq!(
        weak.body["error"]["details"].as_array().unwrap().len(),
        2,
        "{}",
        weak.text
    );
    register(json!({"email": "x@example.com", "password": "x@example.com", "name": "X"}))
        .await
        .assert_error(422, "weak_password");
    register(json!({"email": "x@example.com", "name": "X"}))
        .await
        .assert_error(422, "invalid_body");
    register(json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "role": "admin"}))
        .await
        .assert_error(422, "invalid_body");

    let raw = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let raw = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = "x".repeat(2 * 1024 * 1024);
    register(json!({"email": "x@example.com", "password": huge, "name": "X"}))
        .await
        .assert_error(413, "payload_too_large");

    app.register("taken@example.com").await;
    register(json!({"email": "TAKEN@example.com", "password": PASSWORD, "name": "Again"}))
        .await
        .assert_error(409, "email_taken");
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    // No grace window: the old token presented right after its use is reuse.
    let app = TestApp::start_with(|c| c.auth.refresh_reuse_grace_secs = 0).await;
    app.register("ada@example.com").await;
    let (access, refresh) = app.login("ada@example.com", PASSWORD).await;

    let rotated = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_refresh = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let new_access = rotated.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&new_access)).await.status,
        StatusCode::OK
    );

    // The old token again: theft suspected, the whole session ends.
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await
    .assert_error(401, "refresh_token_reused");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": new_refresh}),
    )
    .await
    .assert_error(401, "invalid_refresh_token");
    app.get("/api/v1/auth/me", Some(&new_access))
        .await
        .assert_error(401, "token_revoked");
    app.get("/api/v1/auth/me", Some(&access))
        .await
        .assert_error(401, "token_revoked");

    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_error(401, "invalid_refresh_token");

    let audit = confab_admin::SqlAuditLog::new(app.db.clone());
    let reuse = audit.recent(Some("auth.refresh_reuse"), 10).await.unwrap();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].outcome, "failure");
    app.stop().await;
}

#[tokio::test]
async fn cookie_refresh_needs_the_csrf_header() {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    // The client's cookie store now holds confab_refresh and confab_csrf.
    let refused = app
        .call(Method::POST, "/api/v1/auth/refresh", None, None)
        .await;
    refused.assert_error(403, "csrf_failed");

    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let csrf = login
        .cookies()
        .iter()
        .find_map(|c| {
            c.strip_prefix("confab_csrf=")
                .map(|v| v.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    let response = crate::common::Response::read(response).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    // A refresh by cookie is a browser's: the refresh token stays in the HttpOnly cookie,
    // out of reach of scripts, and is not repeated in the body.
    assert!(
        response.body["access_token"].is_string(),
        "{}",
        response.text
    );
    assert!(
        response.body.get("refresh_token").is_none(),
        "{}",
        response.text
    );
    assert!(
        response
            .cookies()
            .iter()
            .any(|c| c.starts_with("confab_refresh=")),
        "the cookie is rotated"
    );
    let wrong = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-csrf-token", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    let (access, refresh) = app.login("ada@example.com", PASSWORD).await;
    let (other_access, other_refresh) = app.login("ada@example.com", PASSWORD).await;

    let out = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    app.get("/api/v1/auth/me", Some(&access))
        .await
        .assert_error(401, "token_revoked");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await
    .assert_error(401, "invalid_refresh_token");
    // Other sessions are untouched; logging out by refresh token works too.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&other_access)).await.status,
        StatusCode::OK
    );
    let out = app
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/auth/me", Some(&other_access))
        .await
        .assert_error(401, "token_revoked");
    app.get("/api/v1/auth/me", None)
        .await
        .assert_error(401, "unauthorized");
    app.get("/api/v1/auth/me", Some("garbage"))
        .await
        .assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn profile_and_password_change() {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    let (access, _) = app.login("ada@example.com", PASSWORD).await;
    let (other_access, _) = app.login("ada@example.com", PASSWORD).await;

    let updated = app
        .call(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(&access),
            Some(json!({"name": "Ada L."})),
        )
        .await;
    assert_eq!(updated.body["name"], "Ada L.", "{}", updated.text);
    app.call(
        Method::PATCH,
        "/api/v1/auth/me",
        Some(&access),
        Some(json!({"name": ""})),
    )
    .await
    .assert_error(422, "invalid_name");

    let change = |current: &str, new: &str| {
        app.post(
            "/api/v1/auth/password",
            Some(&access),
            json!({"current_password": current, "new_password": new}),
        )
    };
    change("wrong password here", "a brand new secret")
        .await
        .assert_error(403, "wrong_password");
    change(PASSWORD, "short")
        .await
        .assert_error(422, "weak_password");
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&access),
            json!({"name": "laptop", "scopes": ["chat"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&key)).await.status,
        StatusCode::OK
    );
    let done = change(PASSWORD, "a brand new secret").await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
    // API keys end with the old password: whoever knew it may have made them.
    app.get("/api/v1/auth/me", Some(&key))
        .await
        .assert_error(401, "token_revoked");
    let keys = app.get("/api/v1/auth/api-keys", Some(&access)).await;
    assert_eq!(keys.body["items"], json!([]), "{}", keys.text);

    // This session stays; every other one ends.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&access)).await.status,
        StatusCode::OK
    );
    app.get("/api/v1/auth/me", Some(&other_access))
        .await
        .assert_error(401, "token_revoked");
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    app.login("ada@example.com", "a brand new secret").await;
    app.stop().await;
}

/// Sign-in from one address with a header naming it (the app trusts one proxy).
async fn login_from(
    app: &TestApp,
    ip: &str,
    email: &str,
    password: &str,
) -> crate::common::Response {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    crate::common::Response::read(response).await
}

/// Guessing wrong makes the guessing address wait, not the account: the user signs in from
/// another address meanwhile, an admin cannot be locked out by strangers, and an unknown
/// email is answered exactly like a real one at every step.
#[tokio::test]
async fn failed_sign_ins_slow_the_address_without_locking_the_account_or_naming_it() {
    let app = TestApp::start_with(|c| c.server.trust_proxy_headers = true).await;
    let admin = app.register("admin@example.com").await;
    let admin_id = admin["user"]["id"].as_str().unwrap().to_owned();
    const ATTACKER: &str = "203.0.113.66";

    let mut answers = Vec::new();
    for email in ["admin@example.com", "nobody@example.com"] {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let wrong = login_from(&app, ATTACKER, email, "not the password").await;
            seen.push((wrong.status, wrong.assert_error(401, "invalid_credentials")));
        }
        // Even the right password is not checked while the address waits.
        let waiting = login_from(&app, ATTACKER, email, PASSWORD).await;
        let message = waiting.assert_error(429, "login_throttled");
        let retry_after: u64 = waiting.header("retry-after").unwrap().parse().unwrap();
        assert!((25..=31).contains(&retry_after), "{retry_after}");
        seen.push((waiting.status, message));
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "a real and an unknown email answer alike"
    );

    // The admin, from their own address, is not locked out.
    let own = login_from(&app, "198.51.100.7", "admin@example.com", PASSWORD).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let admin_token = own.body["access_token"].as_str().unwrap().to_owned();

    let audit = confab_admin::SqlAuditLog::new(app.db.clone());
    let throttled = audit
        .recent(Some("auth.login_throttled"), 10)
        .await
        .unwrap();
    assert_eq!(throttled.len(), 2, "{throttled:?}");
    let failures = audit.recent(Some("auth.login"), 30).await.unwrap();
    assert!(
        failures
            .iter()
            .any(|e| e.target.as_deref() == Some("nobody@example.com"))
    );

    // An admin can end an address's wait early.
    let unlocked = app
        .post(
            &format!("/api/v1/auth/users/{admin_id}/unlock"),
            Some(&admin_token),
            json!({}),
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.text);
    let again = login_from(&app, ATTACKER, "admin@example.com", PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    app.stop().await;
}

#[tokio::test]
async fn auth_endpoints_are_throttled_per_ip() {
    let app = TestApp::start_with(|c| {
        c.auth.ip_rate_limit_per_minute = 1;
        c.auth.ip_rate_limit_burst = 3;
    })
    .await;
    for _ in 0..3 {
        let response = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "a@example.com", "password": "whatever it is"}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a@example.com", "password": "whatever it is"}),
        )
        .await;
    throttled.assert_error(429, "rate_limited");
    assert!(
        throttled
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Other routes are not throttled.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    let (ada, _) = app.login("ada@example.com", PASSWORD).await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;

    let created = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&ada),
            json!({"name": "laptop", "scopes": ["inference", "chat"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["api_key"]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cfk_"));
    assert!(key.starts_with(created.body["api_key"]["prefix"].as_str().unwrap()));
    assert_eq!(
        created.body["api_key"]["scopes"],
        json!(["chat", "inference"])
    );

    let listed = app.get("/api/v1/auth/api-keys", Some(&ada)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(&key), "the key is shown only once");

    let me = app.get("/api/v1/auth/me", Some(&key)).await;
    assert_eq!(me.body["email"], "ada@example.com", "{}", me.text);
    let listed = app.get("/api/v1/auth/api-keys", Some(&ada)).await;
    assert!(
        listed.body["items"][0]["last_used_at"].is_string(),
        "{}",
        listed.text
    );

    // A key cannot manage keys or the account.
    app.post(
        "/api/v1/auth/api-keys",
        Some(&key),
        json!({"name": "x", "scopes": ["chat"]}),
    )
    .await
    .assert_error(403, "session_required");
    app.call(
        Method::PATCH,
        "/api/v1/auth/me",
        Some(&key),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_error(403, "session_required");

    let bad = |body: serde_json::Value| app.post("/api/v1/auth/api-keys", Some(&ada), body);
    bad(json!({"name": "x", "scopes": []}))
        .await
        .assert_error(422, "invalid_scopes");
    bad(json!({"name": "x", "scopes": ["admin"]}))
        .await
        .assert_error(422, "invalid_scopes");
    bad(json!({"name": "x", "scopes": ["root"]}))
        .await
        .assert_error(422, "invalid_body");
    bad(json!({"name": "x", "scopes": ["chat"], "expires_at": "2001-01-01T00:00:00Z"}))
        .await
        .assert_error(422, "invalid_expiry");
    bad(json!({"name": "x", "scopes": ["chat"], "expires_at": "tomorrow"}))
        .await
        .assert_error(422, "invalid_body");
    let expiring =
        bad(json!({"name": "x", "scopes": ["chat"], "expires_at": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(
        expiring.body["api_key"]["expires_at"], "2999-01-01T00:00:00Z",
        "{}",
        expiring.text
    );

    // Another user's key id is simply not found.
    app.call(
        Method::DELETE,
        &format!("/api/v1/auth/api-keys/{key_id}"),
        Some(&bob),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/auth/me", Some(&key))
        .await
        .assert_error(401, "token_revoked");
    app.get("/api/v1/auth/me", Some("cfk_made_up"))
        .await
        .assert_error(401, "unauthorized");

    let audit = confab_admin::SqlAuditLog::new(app.db.clone());
    assert_eq!(
        audit
            .recent(Some("auth.api_key_created"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        audit
            .recent(Some("auth.api_key_revoked"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn approval_policy_keeps_new_users_pending() {
    let app = TestApp::start_with(|c| c.auth.registration = RegistrationPolicy::Approval).await;
    let admin = app.register("admin@example.com").await;
    assert_eq!(
        admin["user"]["status"], "active",
        "the first user is never pending"
    );
    let pending = app.register("ada@example.com").await;
    assert_eq!(pending["user"]["status"], "pending");
    assert!(pending.get("access_token").is_none(), "{pending}");
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(403, "account_pending");

    let (admin_token, _) = app.login("admin@example.com", PASSWORD).await;
    let listed = app
        .get("/api/v1/auth/users?status=pending", Some(&admin_token))
        .await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.text);
    let id = items[0]["id"].as_str().unwrap();
    let approved = app
        .post(
            &format!("/api/v1/auth/users/{id}/approve"),
            Some(&admin_token),
            json!({}),
        )
        .await;
    assert_eq!(approved.body["status"], "active", "{}", approved.text);
    app.login("ada@example.com", PASSWORD).await;
    app.stop().await;
}

#[tokio::test]
async fn closed_policy_refuses_registration() {
    let app = TestApp::start_with(|c| c.auth.registration = RegistrationPolicy::Closed).await;
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}),
    )
    .await
    .assert_error(403, "registration_closed");
    app.stop().await;
}

#[tokio::test]
async fn admins_manage_roles_status_and_groups() {
    let app = TestApp::start().await;
    let admin = app.register("admin@example.com").await;
    let admin_id = admin["user"]["id"].as_str().unwrap().to_owned();
    let ada = app.register("ada@example.com").await;
    let ada_id = ada["user"]["id"].as_str().unwrap().to_owned();
    let (token, _) = app.login("admin@example.com", PASSWORD).await;
    let (ada_token, _) = app.login("ada@example.com", PASSWORD).await;

    app.call(
        Method::PATCH,
        &format!("/api/v1/auth/users/{admin_id}"),
        Some(&token),
        Some(json!({"role": "user"})),
    )
    .await
    .assert_error(409, "last_admin");
    let promoted = app
        .call(
            Method::PATCH,
            &format!("/api/v1/auth/users/{ada_id}"),
            Some(&token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.body["role"], "admin");
    // The role applies at once to existing sessions.
    assert_eq!(
        app.get("/api/v1/auth/users", Some(&ada_token)).await.status,
        StatusCode::OK
    );
    let disabled = app
        .call(
            Method::PATCH,
            &format!("/api/v1/auth/users/{ada_id}"),
            Some(&token),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(disabled.body["status"], "disabled");
    app.get("/api/v1/auth/me", Some(&ada_token))
        .await
        .assert_error(401, "token_revoked");
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(403, "account_disabled");

    let group = app
        .post(
            "/api/v1/auth/groups",
            Some(&token),
            json!({"name": "research"}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    app.post(
        "/api/v1/auth/groups",
        Some(&token),
        json!({"name": "research"}),
    )
    .await
    .assert_error(409, "group_exists");
    let group_id = group.body["id"].as_str().unwrap();
    let added = app
        .call(
            Method::PUT,
            &format!("/api/v1/auth/groups/{group_id}/members/{admin_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.text);
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.body["groups"], json!(["research"]));
    let missing = uuid::Uuid::now_v7();
    app.call(
        Method::PUT,
        &format!("/api/v1/auth/groups/{group_id}/members/{missing}"),
        Some(&token),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let groups = app.get("/api/v1/auth/groups", Some(&token)).await;
    assert_eq!(groups.body["items"][0]["members"], json!([admin_id]));

    let users = app
        .get("/api/v1/auth/users?q=ADA&limit=1", Some(&token))
        .await;
    assert_eq!(
        users.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        users.text
    );
    assert!(users.body["next_cursor"].is_null());
    let page1 = app.get("/api/v1/auth/users?limit=1", Some(&token)).await;
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/api/v1/auth/users?limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_ne!(page1.body["items"][0]["id"], page2.body["items"][0]["id"]);
    app.get("/api/v1/auth/users?cursor=bogus", Some(&token))
        .await
        .assert_error(400, "invalid_cursor");
    app.get("/api/v1/auth/users?limit=0", Some(&token))
        .await
        .assert_error(400, "invalid_limit");
    app.stop().await;
}

#[tokio::test]
async fn tokens_verify_offline_with_the_jwks_and_survive_rotation() {
    let app = TestApp::start().await;
    let registered = app.register("ada@example.com").await;
    let old_token = registered["access_token"].as_str().unwrap().to_owned();

    let jwks: JwkSet =
        serde_json::from_value(app.get("/.well-known/jwks.json", None).await.body).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].alg, "EdDSA");
    let claims = KeySet::from_jwks(&jwks)
        .unwrap()
        .verify(&old_token, "confab")
        .unwrap();
    assert_eq!(claims.role, Role::Admin);
    assert_eq!(claims.exp - claims.iat, 900);
    let header = jsonwebtoken::decode_header(&old_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(jwks.keys[0].kid.as_str()));

    let new_kid = app.auth.keys().rotate().await.unwrap();
    let jwks: JwkSet =
        serde_json::from_value(app.get("/.well-known/jwks.json", None).await.body).unwrap();
    assert_eq!(jwks.keys.len(), 2, "the retired key is still published");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&old_token)).await.status,
        StatusCode::OK
    );
    let (new_token, _) = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token).unwrap().kid,
        Some(new_kid)
    );

    // An expired token (signed by us) is refused with its own code.
    let expired = app
        .auth
        .keys()
        .sign(&AccessClaims {
            exp: claims.iat - 100,
            iat: claims.iat - 1000,
            ..claims.clone()
        })
        .unwrap();
    app.get("/api/v1/auth/me", Some(&expired))
        .await
        .assert_error(401, "token_expired");
    // A token from another issuer's key is refused.
    let forged = confab_auth::keys::generate_key(0).unwrap();
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &forged.private_key,
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(jwks.keys[0].kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .unwrap();
    app.get("/api/v1/auth/me", Some(&forged))
        .await
        .assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn an_https_public_url_makes_cookies_secure_and_sends_hsts() {
    let app =
        TestApp::start_with(|c| c.server.public_url = Some("https://confab.example".into())).await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    for cookie in response.cookies() {
        assert!(cookie.contains("Secure"), "{cookie}");
    }
    assert!(response.header("strict-transport-security").is_some());
    app.stop().await;

    // Behind a trusted proxy, X-Forwarded-Proto decides.
    let app = TestApp::start_with(|c| c.server.trust_proxy_headers = true).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    let refresh = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("confab_refresh="))
        .unwrap();
    assert!(refresh.contains("Secure"), "{refresh}");
    app.stop().await;
}

/// Behind a proxy, the client is the hop the proxy appended, not the entries a client sent:
/// rotating made-up `X-Forwarded-For` entries neither escapes the per-IP throttle nor writes
/// a chosen address into the audit log.
#[tokio::test]
async fn forwarded_for_is_read_from_the_right() {
    let app = TestApp::start_with(|c| {
        c.server.trust_proxy_headers = true;
        // The test client connects from loopback: that is "our proxy".
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        c.auth.ip_rate_limit_per_minute = 1;
        c.auth.ip_rate_limit_burst = 3;
    })
    .await;
    let login = |spoofed: String| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header(
                "x-forwarded-for",
                format!("{spoofed}, 203.0.113.9, 127.0.0.1"),
            )
            .json(&json!({"email": "a@example.com", "password": "whatever it is"}))
            .send()
    };
    for i in 0..3 {
        let response = login(format!("198.51.100.{i}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = login("198.51.100.77".into()).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);

    let audit = confab_admin::SqlAuditLog::new(app.db.clone());
    let failures = audit.recent(Some("auth.login"), 10).await.unwrap();
    assert_eq!(failures.len(), 3);
    for entry in &failures {
        assert_eq!(entry.ip.as_deref(), Some("203.0.113.9"), "{entry:?}");
    }
    app.stop().await;
}

/// Browsers (their requests carry `Sec-Fetch-*`, which scripts cannot remove) get the refresh
/// token only as the HttpOnly cookie; clients without cookies still get it in the body. No
/// response carrying a credential may be cached.
#[tokio::test]
async fn browsers_get_no_refresh_token_in_the_body_and_credentials_are_not_cached() {
    let app = TestApp::start().await;
    let registered = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    let registered = crate::common::Response::read(registered).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    assert!(registered.body["access_token"].is_string());
    assert!(
        registered.body.get("refresh_token").is_none(),
        "{}",
        registered.text
    );
    assert!(
        registered
            .cookies()
            .iter()
            .any(|c| c.starts_with("confab_refresh="))
    );
    assert_eq!(registered.header("cache-control"), Some("no-store"));

    let browser_login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let browser_login = crate::common::Response::read(browser_login).await;
    assert_eq!(
        browser_login.status,
        StatusCode::OK,
        "{}",
        browser_login.text
    );
    assert!(
        browser_login.body.get("refresh_token").is_none(),
        "{}",
        browser_login.text
    );
    assert_eq!(browser_login.header("cache-control"), Some("no-store"));

    // A client without cookies: the token in the body, and still not cacheable.
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.header("cache-control"), Some("no-store"));
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert!(
        refreshed.body["refresh_token"].is_string(),
        "{}",
        refreshed.text
    );
    assert_eq!(refreshed.header("cache-control"), Some("no-store"));
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&access),
            json!({"name": "laptop", "scopes": ["chat"]}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    assert_eq!(key.header("cache-control"), Some("no-store"));
    let reset = app
        .post(
            &format!(
                "/api/v1/auth/users/{}/password-reset",
                registered.body["user"]["id"].as_str().unwrap()
            ),
            Some(&access),
            json!({}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(reset.header("cache-control"), Some("no-store"));
    // Errors too (they may name the account), while the public JWKS stays cacheable.
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@example.com", "password": "not it at all"}),
    )
    .await
    .headers
    .get("cache-control")
    .map(|v| assert_eq!(v, "no-store"))
    .expect("an error is not cacheable either");
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    app.stop().await;
}

/// Two tabs refreshing with the same cookie at once no longer sign the user out: within the
/// grace window the second refresh gets tokens of its own and both tabs go on working.
#[tokio::test]
async fn two_tabs_refreshing_at_once_keep_the_session() {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    let (_, refresh) = app.login("ada@example.com", PASSWORD).await;
    let body = json!({"refresh_token": refresh});
    let (first, second) = tokio::join!(
        app.post("/api/v1/auth/refresh", None, body.clone()),
        app.post("/api/v1/auth/refresh", None, body.clone()),
    );
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    for tab in [&first, &second] {
        let access = tab.body["access_token"].as_str().unwrap();
        assert_eq!(
            app.get("/api/v1/auth/me", Some(access)).await.status,
            StatusCode::OK
        );
        let next = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": tab.body["refresh_token"]}),
            )
            .await;
        assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    }
    // The first token, no longer the session's last used one, is reuse: the session ends.
    app.post("/api/v1/auth/refresh", None, body)
        .await
        .assert_error(401, "refresh_token_reused");
    app.stop().await;
}

/// Service tokens (`cfs_`, minted by Confab's services for each other) never open admin
/// routes, and stop working for a user who was locked since they were minted.
#[tokio::test]
async fn service_tokens_are_refused_on_admin_routes_and_for_locked_users() {
    use confab_core::auth::{Credential, Principal, Scope, ServiceTokens};
    const SECRET: &str = "split-mode-secret-0123456789abcdef";
    let app = TestApp::start_with(|c| {
        c.services.token = Some(confab_core::config::Secret::new(SECRET));
    })
    .await;
    let admin_id: uuid::Uuid = app.register("admin@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let bob_id: uuid::Uuid = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tokens = ServiceTokens::new(SECRET.as_bytes()).unwrap();
    let mint = |user_id, role, scopes: &[Scope]| {
        let principal = Principal {
            user_id,
            role,
            credential: Credential::Session {
                session_id: uuid::Uuid::now_v7(),
            },
        };
        tokens.mint(&principal, scopes).unwrap()
    };

    let as_admin = mint(admin_id, Role::Admin, &[Scope::Admin, Scope::Chat]);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&as_admin)).await.status,
        StatusCode::OK
    );
    app.get("/api/v1/auth/users", Some(&as_admin))
        .await
        .assert_error(403, "service_token_not_allowed");
    app.get("/api/v1/admin/audit", Some(&as_admin))
        .await
        .assert_error(403, "service_token_not_allowed");

    let as_bob = mint(bob_id, Role::User, &[Scope::Chat]);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&as_bob)).await.status,
        StatusCode::OK
    );
    let locked = app
        .post(
            &format!("/api/v1/auth/users/{bob_id}/lock"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    app.get("/api/v1/auth/me", Some(&as_bob))
        .await
        .assert_error(401, "token_revoked");
    app.stop().await;
}
