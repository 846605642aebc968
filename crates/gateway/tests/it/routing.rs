//! The routing table over real sockets: each prefix reaches its service, unknown API paths and
//! `/internal` answer 404 without reaching anyone, other paths reach the web UI, and
//! anonymous callers reach only the public routes.

use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn prefixes_reach_their_services_and_nothing_else_is_forwarded() {
    let auth = Fake::start("auth").await;
    let chat = Fake::start("chat").await;
    let inference = Fake::start("inference").await;
    let admin = Fake::start("admin").await;
    let seo = Fake::start("seo").await;
    let gw = start_gateway(&config(&[
        ("auth", vec![auth.url()]),
        ("chat", vec![chat.url()]),
        ("inference", vec![inference.url()]),
        ("admin", vec![admin.url()]),
        ("seo", vec![seo.url()]),
    ]))
    .await;
    let user = jwt(Uuid::now_v7());
    for (path, instance) in [
        ("/api/v1/auth/me", "auth"),
        ("/v1/models", "inference"),
        ("/api/v1/models/catalog", "inference"),
        ("/api/v1/conversations/1", "chat"),
        ("/api/v1/search?q=x", "chat"),
        ("/api/v1/presets", "chat"),
        ("/api/v1/shares", "chat"),
        ("/api/v1/seo/projects", "seo"),
        ("/api/v1/admin/audit", "admin"),
        ("/api/v1/usage", "admin"),
    ] {
        let (status, _, body) = get_json(&gw.url(path), Some(&user)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["instance"], instance, "{path}");
        assert_eq!(
            body["uri"], path,
            "{path}: path and query reach the service unchanged"
        );
    }
    let before = [&auth, &chat, &inference, &admin, &seo].map(|f| f.hits());
    // Unknown API paths: 404 in the envelope, or OpenAI's shape under /v1 when no service
    // is deployed for it; `/internal` never leaves the gateway.
    let (status, _, body) = get_json(&gw.url("/api/v2/anything"), Some(&user)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["request_id"].is_string());
    for path in ["/internal/users", "/api/v1/auth/%2e%2e/%2e%2e/internal/x"] {
        let (status, _, _) = get_json(&gw.url(path), Some(&user)).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        before,
        [&auth, &chat, &inference, &admin, &seo].map(|f| f.hits())
    );
    // The web UI answers everything else.
    let page = client().get(gw.url("/c/123")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "the web UI");
    // The gateway's own ops routes.
    let ready = client().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_service_not_deployed_answers_404_in_its_routes_shape() {
    let chat = Fake::start("chat").await;
    let gw = start_gateway(&config(&[("chat", vec![chat.url()])])).await;
    let user = jwt(Uuid::now_v7());
    let (status, _, body) = get_json(&gw.url("/v1/models"), Some(&user)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn anonymous_callers_reach_only_public_routes() {
    let auth = Fake::start("auth").await;
    let chat = Fake::start("chat").await;
    let inference = Fake::start("inference").await;
    let seo = Fake::start("seo").await;
    let gw = start_gateway(&config(&[
        ("auth", vec![auth.url()]),
        ("chat", vec![chat.url()]),
        ("inference", vec![inference.url()]),
        ("seo", vec![seo.url()]),
    ]))
    .await;
    for path in [
        "/api/v1/conversations",
        "/api/v1/auth/me",
        "/api/v1/seo/projects",
        "/api/v1/ws",
    ] {
        let (status, headers, body) = get_json(&gw.url(path), None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    // An invalid credential is refused at the edge too; under /v1 in OpenAI's shape.
    let (status, _, body) = get_json(&gw.url("/v1/models"), Some("Bearer nonsense")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(
        chat.hits() + inference.hits() + seo.hits(),
        0,
        "nothing reached a service"
    );

    let anonymous = client();
    for (path, post) in [
        ("/api/v1/auth/login", true),
        ("/api/v1/auth/register", true),
        ("/api/v1/auth/refresh", true),
        ("/api/v1/auth/password/reset", true),
        ("/.well-known/jwks.json", false),
        ("/api/v1/shared/tok", false),
        ("/s/tok", false),
        ("/api/v1/seo/channel/callback?state=x&code=y", false),
    ] {
        let request = if post {
            anonymous.post(gw.url(path)).body("{}")
        } else {
            anonymous.get(gw.url(path))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
