//! What each kind of client gets over a real socket: secure cookies and HSTS behind an HTTPS
//! public URL, `X-Forwarded-For` read from the right, browsers kept from refresh tokens in
//! bodies and from caches, two tabs refreshing at once, and service tokens refused on admin
//! routes and for locked users.

use confab_core::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

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
