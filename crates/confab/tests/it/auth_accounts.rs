//! Accounts over a real socket: API keys (shown once, scoped, revocable), the approval and
//! closed registration policies, admins managing roles, status and groups, and access tokens
//! verified offline with the JWKS across a key rotation.

use confab_core::auth::{AccessClaims, JwkSet, KeySet, Role};
use confab_core::config::RegistrationPolicy;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, TestApp};

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
