//! The edge: credentials (a JWT forwarded unchanged, an API key exchanged for a service token
//! the services accept), the headers of a proxy hop, and rate limits shared by two gateways.

use std::sync::Arc;

use confab_core::auth::{Credential, Scope, ServiceTokens};
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn a_jwt_passes_unchanged_and_an_api_key_becomes_a_service_token() {
    let chat = Fake::start("chat").await;
    let gw = start_gateway(&config(&[("chat", vec![chat.url()])])).await;
    let user = Uuid::now_v7();
    let (status, _, body) = get_json(&gw.url("/api/v1/conversations"), Some(&jwt(user))).await;
    assert_eq!(status, 200);
    assert_eq!(body["headers"]["authorization"], jwt(user));

    let key = format!("Bearer cfk_{user}");
    let (status, _, body) = get_json(&gw.url("/api/v1/conversations"), Some(&key)).await;
    assert_eq!(status, 200);
    let forwarded = body["headers"]["authorization"].as_str().unwrap();
    let token = forwarded.strip_prefix("Bearer ").unwrap();
    assert!(token.starts_with("cfs_"), "{forwarded}");
    let vouched = ServiceTokens::new(&SECRET).unwrap().verify(token).unwrap();
    assert_eq!(vouched.user_id, user);
    assert_eq!(
        vouched.credential,
        Credential::Service {
            key_id: Some(user),
            scopes: vec![Scope::Chat, Scope::Inference],
        },
        "the key's own scopes, and the key for its limits and usage"
    );
}

#[tokio::test]
async fn hop_headers_request_ids_and_traceparent_are_handled() {
    let chat = Fake::start("chat").await;
    let gw = start_gateway(&config(&[("chat", vec![chat.url()])])).await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = client()
        .get(gw.url("/api/v1/conversations"))
        .header("authorization", jwt(Uuid::now_v7()))
        .header("x-request-id", "req-123")
        .header("traceparent", trace)
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("te", "trailers")
        .header("host", "chat.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-123");
    assert!(
        !response.headers().contains_key("keep-alive"),
        "the service's hop-by-hop headers stay behind"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    let headers = &body["headers"];
    assert_eq!(headers["x-request-id"], "req-123");
    let next = headers["traceparent"].as_str().unwrap();
    assert!(
        next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{next}"
    );
    assert!(
        !next.contains("00f067aa0ba902b7"),
        "a new span id for this hop"
    );
    assert!(headers.get("x-hop").is_none(), "{headers}");
    assert!(headers.get("te").is_none(), "{headers}");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "chat.example");

    // No id or trace given: the gateway makes both.
    let (_, response_headers, body) =
        get_json(&gw.url("/api/v1/conversations"), Some(&jwt(Uuid::now_v7()))).await;
    let id = response_headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["headers"]["x-request-id"], id);
    assert_eq!(
        body["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .split('-')
            .count(),
        4
    );
}

#[tokio::test]
async fn rate_limits_are_the_same_whichever_gateway_is_used() {
    let chat = Fake::start("chat").await;
    let mut settings = config(&[("chat", vec![chat.url()])]);
    settings.ip_per_minute = 60;
    settings.ip_burst = 3;
    let limiter: Arc<CountingLimiter> = Arc::new(CountingLimiter::default());
    let one = start_with(&settings, limiter.clone()).await;
    let two = start_with(&settings, limiter).await;
    let user = jwt(Uuid::now_v7());
    let mut remaining = Vec::new();
    for gw in [&one, &two, &one] {
        let (status, headers, _) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert!(headers.contains_key("x-ratelimit-reset"));
        remaining.push(
            headers["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    for gw in [&two, &one] {
        let (status, headers, body) = get_json(&gw.url("/api/v1/conversations"), Some(&user)).await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limited");
        assert_eq!(headers["retry-after"], "20");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
    }
    assert_eq!(chat.hits(), 3);
}
