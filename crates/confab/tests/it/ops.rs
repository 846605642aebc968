//! Operability: health, readiness, metrics, request ids, the error envelope for every kind of
//! failure, security headers, CORS, the OpenAPI document and docs page, graceful shutdown.

use std::time::Duration;

use axum::routing::get;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, test_config};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::start().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.body, json!({"status": "ok"}));
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body, json!({"status": "ready"}));

    app.register("ada@example.com").await;
    let key_path = format!("/api/v1/auth/api-keys/{}", uuid::Uuid::now_v7());
    let token = app
        .login("ada@example.com", crate::common::PASSWORD)
        .await
        .0;
    app.call(Method::DELETE, &key_path, Some(&token), None)
        .await
        .assert_error(404, "not_found");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"confab_http_requests_total{method="POST",route="/api/v1/auth/register",status="201"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"confab_http_requests_total{method="DELETE",route="/api/v1/auth/api-keys/{id}",status="404"} 1"#),
        "route templates, not raw paths: {metrics}"
    );
    assert!(
        metrics.contains("confab_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"confab_db_pool_connections{state="max"} 8"#),
        "{metrics}"
    );

    // Readiness follows the database.
    app.db.close().await;
    app.get("/readyz", None)
        .await
        .assert_error(503, "not_ready");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn request_ids_errors_and_security_headers() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc.123");
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(response.headers()[name], value);
    }
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );

    app.get("/api/v1/no/such/route", None)
        .await
        .assert_error(404, "not_found");
    app.call(Method::PUT, "/api/v1/auth/login", None, None)
        .await
        .assert_error(405, "method_not_allowed");
    let bad_path = app
        .call(
            Method::DELETE,
            "/api/v1/auth/api-keys/not-a-uuid",
            Some("x"),
            None,
        )
        .await;
    assert!(bad_path.status.is_client_error());
    assert!(
        bad_path.body["error"]["code"].is_string(),
        "{}",
        bad_path.text
    );
    let bad_query = app.get("/api/v1/auth/users?limit=many", None).await;
    assert!(
        bad_query.body["error"]["message"].is_string(),
        "{}",
        bad_query.text
    );
    // Exact body of an error, pinned: it is a contract.
    let missing = app.get("/api/v1/auth/me", None).await;
    let request_id = missing.header("x-request-id").unwrap().to_owned();
    assert_eq!(
        missing.body,
        json!({"error": {
            "code": "unauthorized",
            "message": "sign in: send `Authorization: Bearer <token or API key>`",
            "request_id": request_id,
        }})
    );
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    app.stop().await;
}

#[tokio::test]
async fn cors_is_same_origin_unless_configured() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    app.stop().await;

    let app =
        TestApp::start_with(|c| c.server.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let other = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let app = TestApp::start().await;
    let doc = app.get("/api/openapi.json", None).await;
    assert!(
        doc.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc.body["openapi"]
    );
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/api-keys/{id}",
        "/.well-known/jwks.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());

    let page = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/auth/login") && html.contains("TokenResponse"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "loads nothing external"
    );
    let css = app
        .client
        .get(app.url("/api/docs.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_refuses_new_ones() {
    let (config, db) = test_config().await;
    let mut app = confab::app::build(&config).await.unwrap();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(entered_tx)));
    app.router = app.router.route(
        "/test/slow",
        get(move || {
            let entered_tx = entered_tx.clone();
            async move {
                if let Some(tx) = entered_tx.lock().await.take() {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                "finished"
            }
        }),
    );
    let app = TestApp::serve(app, config, db).await;
    let client = app.client.clone();
    let url = app.url("/test/slow");
    let in_flight =
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() });
    entered_rx.await.unwrap();
    let addr = app.addr;
    app.stop().await;
    assert_eq!(in_flight.await.unwrap(), "finished");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

/// The web UI is served at `/` and at the app's own paths (client-side routes get
/// `index.html`); API paths keep their JSON 404s; a missing asset is a 404, not the app. A
/// binary built without the UI says how to build it.
#[tokio::test]
async fn the_web_ui_is_served_outside_the_api() {
    let app = TestApp::start().await;
    for path in ["/", "/settings", "/c/some-conversation"] {
        let page = app.get(path, None).await;
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}: {:?}",
            page.headers
        );
        if confab::web::available() {
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(page.text.contains("id=\"root\""), "{}", page.text);
            let csp = page.header("content-security-policy").unwrap();
            assert!(csp.contains("script-src 'self'"), "{csp}");
            assert_eq!(page.header("cache-control"), Some("no-cache"));
        } else {
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(
                page.text.contains("npm --prefix web run build"),
                "{}",
                page.text
            );
        }
    }
    app.get("/assets/no-such-file.js", None)
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/nothing-here", None)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/nothing-here", None)
        .await
        .assert_error(404, "not_found");
    app.post("/settings", None, serde_json::json!({}))
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

/// With `server.metrics_token`, `/metrics` answers only the scraper that sends it.
#[tokio::test]
async fn metrics_can_require_a_token() {
    const TOKEN: &str = "scraper-token-0123456789";
    let app = TestApp::start_with(|c| {
        c.server.metrics_token = Some(confab_core::config::Secret::new(TOKEN));
    })
    .await;
    let refused = app.get("/metrics", None).await;
    refused.assert_error(401, "unauthorized");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"metrics\"")
    );
    app.get("/metrics", Some("scraper-token-0123456788"))
        .await
        .assert_error(401, "unauthorized");
    let scraped = app.get("/metrics", Some(TOKEN)).await;
    assert_eq!(scraped.status, StatusCode::OK, "{}", scraped.text);
    assert!(
        scraped.text.contains("confab_http_requests_total"),
        "{}",
        scraped.text
    );
    // Health and readiness stay open for the orchestrator.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    app.stop().await;
}

/// Every `$ref` in `value`, depth first.
fn references<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(|r| r.as_str()) {
                out.push(reference);
            }
            map.values().for_each(|v| references(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// The document is the contract the schemathesis run (scripts/api-contract.sh) checks the live
/// server against; this pins its shape without a server: every status the shared extractors and
/// middleware answer is declared where they apply, with the error schema of the route's API,
/// and every reference resolves.
#[tokio::test]
async fn openapi_declares_every_shared_error_status_with_its_schema() {
    let app = TestApp::start().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    app.stop().await;

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    for reference in refs {
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "unresolvable {reference}");
    }
    // An audit entry without details stores `null`.
    let details = &schemas["AuditEntry"]["properties"]["details"];
    assert!(
        details.to_string().contains("\"null\""),
        "AuditEntry.details must allow null: {details}"
    );

    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let located = |place: &str| params.iter().any(|p| p["in"] == place);
            let mut expected: Vec<&str> = Vec::new();
            let bearer = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if bearer {
                expected.push("401");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                // The import reads the raw bytes (a Confab export or ChatGPT's file) and judges
                // them itself: any content type, malformed JSON is its own 422.
                if path == "/api/v1/conversations/import" {
                    expected.extend(["413", "422"]);
                } else {
                    expected.extend(["400", "413", "415", "422"]);
                }
            }
            if located("path") {
                expected.extend(["400", "404"]);
            }
            if located("query") && path.starts_with("/api/v1/") {
                expected.push("400");
            }
            for status in expected {
                if !responses.contains_key(status) {
                    problems.push(format!("{method} {path}: {status} not declared"));
                }
            }
            let schema = if path.starts_with("/v1/") {
                "#/components/schemas/OpenAiErrorBody"
            } else {
                "#/components/schemas/ErrorEnvelope"
            };
            for (status, response) in responses {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let declared = &response["content"]["application/json"]["schema"]["$ref"];
                if declared != schema {
                    problems.push(format!("{method} {path}: {status} is not {schema}"));
                }
            }
        }
    }
    // Answers that are not JSON say what they are.
    for (method, path, types) in [
        (
            "post",
            "/v1/chat/completions",
            &["application/json", "text/event-stream"][..],
        ),
        (
            "get",
            "/api/v1/conversations/{id}/export",
            &["application/json", "text/markdown"],
        ),
        (
            "get",
            "/api/v1/conversations/export",
            &["application/json", "text/markdown"],
        ),
        (
            "get",
            "/api/v1/admin/audit/export",
            &["application/x-ndjson", "text/csv"],
        ),
        ("get", "/api/v1/admin/usage/export", &["text/csv"]),
        ("get", "/api/v1/admin/jobs/events", &["text/event-stream"]),
        (
            "get",
            "/api/v1/models/pulls/{id}/events",
            &["text/event-stream"],
        ),
        (
            "get",
            "/api/v1/conversations/{id}/messages/{mid}/stream",
            &["text/event-stream"],
        ),
        ("get", "/s/{token}", &["text/html"]),
    ] {
        let content = &doc["paths"][path][method]["responses"]["200"]["content"];
        for content_type in types {
            if !content[content_type].is_object() {
                problems.push(format!(
                    "{method} {path}: 200 does not declare {content_type}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every operation has its own `operationId`: clients generated from the document, the web
/// UI's types among them, name their functions after it.
#[tokio::test]
async fn operation_ids_are_unique() {
    let (config, _db) = crate::common::test_config().await;
    let app = confab::app::build(&config).await.unwrap();
    let doc = serde_json::to_value(&app.openapi).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(id) = operation["operationId"].as_str()
                && let Some(earlier) = seen.insert(id.to_owned(), format!("{method} {path}"))
            {
                panic!("operationId `{id}` is both {earlier} and {method} {path}");
            }
        }
    }
    assert!(seen.len() > 100, "{} operations", seen.len());
}
