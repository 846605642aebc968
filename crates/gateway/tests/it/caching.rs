//! The response cache (public GETs only, strong ETags, 304s) and the merged OpenAPI document
//! with the deprecation headers it drives.

use serde_json::json;
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn public_answers_are_cached_with_etags_and_authenticated_ones_never() {
    let auth = Fake::start("auth").await;
    let chat = Fake::start("chat").await;
    let gw = start_gateway(&config(&[
        ("auth", vec![auth.url()]),
        ("chat", vec![chat.url()]),
    ]))
    .await;
    let first = client()
        .get(gw.url("/api/v1/shared/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(first.headers()["cache-control"], "public, max-age=60");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let text = first.text().await.unwrap();
    let second = client()
        .get(gw.url("/api/v1/shared/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.headers()["x-cache"], "hit");
    assert_eq!(second.headers()["etag"], etag.as_str());
    assert_eq!(second.text().await.unwrap(), text);
    let revalidated = client()
        .get(gw.url("/api/v1/shared/abc"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(chat.hits(), 1, "one answer served three times");

    // With a credential: always the service's own answer, never stored.
    for _ in 0..2 {
        let response = client()
            .get(gw.url("/api/v1/shared/other"))
            .header("authorization", jwt(Uuid::now_v7()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("x-cache"));
    }
    assert_eq!(chat.hits(), 3);
    let anonymous = client()
        .get(gw.url("/api/v1/shared/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["x-cache"],
        "miss",
        "the credentialed answers were not kept"
    );

    // The JWKS is cached whatever it says.
    for _ in 0..3 {
        let response = client()
            .get(gw.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(auth.hits(), 1);
}

#[tokio::test]
async fn one_merged_openapi_document_and_deprecation_headers() {
    let auth = Fake::start("auth").await;
    let chat = Fake::start("chat").await;
    *chat.state.openapi.lock() = json!({
        "openapi": "3.1.0",
        "info": {"title": "chat"},
        "paths": {
            "/api/v1/conversations/{id}/legacy": {"get": {
                "deprecated": true,
                "x-deprecated-at": "Fri, 01 Jan 2027 00:00:00 GMT",
                "x-sunset": "Sat, 01 Jan 2028 00:00:00 GMT",
                "x-replacement": "/api/v1/conversations/{id}"
            }},
            "/api/v1/conversations": {"get": {}}
        },
        "components": {"schemas": {"Conversation": {"type": "object"}}},
        "tags": [{"name": "chat"}]
    });
    let gw = start_gateway(&config(&[
        ("auth", vec![auth.url()]),
        ("chat", vec![chat.url()]),
    ]))
    .await;
    assert_eq!(gw.gateway.refresh_openapi().await, 2);
    let (status, _, doc) = get_json(&gw.url("/api/openapi.json"), None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/auth/x"), "{doc}");
    assert!(paths.contains_key("/api/v1/conversations/{id}/legacy"));
    assert!(doc["components"]["schemas"]["Conversation"].is_object());
    assert_eq!(doc["tags"].as_array().unwrap().len(), 2);

    let user = jwt(Uuid::now_v7());
    let (status, headers, _) =
        get_json(&gw.url("/api/v1/conversations/42/legacy"), Some(&user)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["deprecation"], "@1798761600");
    assert_eq!(headers["sunset"], "Sat, 01 Jan 2028 00:00:00 GMT");
    assert_eq!(
        headers["link"],
        "</api/v1/conversations/{id}>; rel=\"successor-version\""
    );
    let (_, headers, _) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
    assert!(!headers.contains_key("deprecation"));
}
