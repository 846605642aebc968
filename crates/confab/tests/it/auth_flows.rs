//! Auth flows over a real socket: registration, login, refresh rotation and reuse detection,
//! cookies and CSRF, logout, profile, password change, lockout and throttling. API keys,
//! policies and key rotation are in `auth_accounts`; what each kind of client gets in
//! `auth_clients`.

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
