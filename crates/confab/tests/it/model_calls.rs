//! The one way to call models, seen from outside: the policy chain that every caller goes
//! through (a user's concurrency cap on the OpenAI-compatible API and in chat alike), metric
//! labels and usage rows that request bodies cannot invent, and failed answers that keep the
//! platform's insides out of what users see.

use std::time::Duration;

use confab_core::config::{ProviderConfig, ProviderKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

/// A model that answers 20 words, 50 ms apart: a second to hold a request open.
const SLOW_MODEL: &str = "scripted-slow";

async fn app_with_slow_model(user_requests: u32) -> TestApp {
    TestApp::start_with(|c| {
        let mut slow = ProviderConfig::new("slow", ProviderKind::Scripted, &[SLOW_MODEL]);
        slow.reply = Some("w ".repeat(20));
        slow.delay_ms = 50;
        c.inference.providers.push(slow);
        c.inference.concurrency.user_requests = user_requests;
    })
    .await
}

async fn key_of(app: &TestApp, email: &str) -> String {
    app.register(email).await;
    let (token, _) = app.login(email, PASSWORD).await;
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&token),
            json!({"name": "k", "scopes": ["inference", "chat"]}),
        )
        .await;
    key.body["key"].as_str().unwrap().to_owned()
}

/// Starts a streamed answer and returns once its headers arrived (the request holds its
/// place until the response is dropped).
async fn open_stream(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": SLOW_MODEL, "stream": true, "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_user_cannot_hold_more_than_their_share_of_the_models() {
    let app = app_with_slow_model(2).await;
    let ada = key_of(&app, "ada@example.com").await;
    let bob = key_of(&app, "bob@example.com").await;
    let first = open_stream(&app, &ada).await;
    let second = open_stream(&app, &ada).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );

    // A third at once is refused with OpenAI's shape, a stable code and a time to retry.
    let third = open_stream(&app, &ada).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "concurrency_exceeded");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // Embeddings count too.
    let embed = app
        .post(
            "/v1/embeddings",
            Some(&ada),
            json!({"model": "any", "input": "x"}),
        )
        .await;
    assert_eq!(
        embed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        embed.text
    );

    // Another user is not affected.
    let other = open_stream(&app, &bob).await;
    assert_eq!(other.status(), StatusCode::OK);

    // Leaving frees the places: the server notices at its next word.
    drop((first, second));
    let mut freed = false;
    for _ in 0..100 {
        let again = open_stream(&app, &ada).await;
        if again.status() == StatusCode::OK {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the places of the closed requests came back");
    app.stop().await;
}

#[tokio::test]
async fn invented_model_names_never_become_metric_labels_or_usage_rows() {
    let app = TestApp::start().await;
    let key = key_of(&app, "ada@example.com").await;
    for n in 0..3 {
        let name = format!("invented-{n}-{}", "x".repeat(200));
        let refused = app
            .post(
                "/v1/chat/completions",
                Some(&key),
                json!({"model": name, "messages": [{"role": "user", "content": "x"}]}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
        let refused = app
            .post(
                "/v1/embeddings",
                Some(&key),
                json!({"model": name, "input": "x"}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
    }
    let answered = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("invented-"), "{metrics}");
    assert!(
        metrics.contains(r#"model="unknown""#),
        "failed requests are still counted: {metrics}"
    );
    assert!(metrics.contains(&format!(r#"model="{SCRIPTED_MODEL}""#)));

    // The usage rows say the same (the admin's usage view, grouped by model).
    let (admin, _) = app.login("ada@example.com", PASSWORD).await;
    let mut models = Vec::new();
    for _ in 0..100 {
        let usage = app
            .get("/api/v1/admin/usage?group_by=model", Some(&admin))
            .await;
        assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
        models = usage.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["key"].as_str().unwrap_or_default().to_owned())
            .collect();
        if models.iter().any(|m| m == SCRIPTED_MODEL) && models.iter().any(|m| m == "unknown") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(models.iter().any(|m| m == "unknown"), "{models:?}");
    assert!(
        !models.iter().any(|m| m.starts_with("invented-")),
        "{models:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failed_answer_tells_the_user_what_happened_without_the_platforms_insides() {
    // A remote backend nobody listens on: port 9 (discard) on loopback refuses connections.
    let app = TestApp::start_with(|c| {
        let mut gone = ProviderConfig::new("gone", ProviderKind::Openai, &["gone-model"]);
        gone.base_url = Some("http://127.0.0.1:9/v1".into());
        gone.api_key = Some(confab_core::config::Secret::new("sk-secret-value"));
        c.inference.providers.push(gone);
        c.inference.router.retries = 0;
    })
    .await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let conversation = app
        .post(
            "/api/v1/conversations",
            Some(&token),
            json!({"title": "t", "model": "gone-model"}),
        )
        .await;
    assert_eq!(
        conversation.status,
        StatusCode::CREATED,
        "{}",
        conversation.text
    );
    let id = conversation.body["id"].as_str().unwrap();
    let sent = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&token)
        .json(&json!({"content": "hello"}))
        .send()
        .await
        .unwrap();
    let text = sent.text().await.unwrap();
    let messages = app
        .get(
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&token),
        )
        .await;
    let answer = messages.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap_or_else(|| panic!("no answer stored: {}", messages.text));
    assert_eq!(answer["status"], "error", "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(!error.is_empty());
    for secret in [
        "127.0.0.1",
        ":9",
        "sk-secret",
        "Connection refused",
        "error sending request",
    ] {
        assert!(
            !error.contains(secret),
            "{secret} in the stored error: {error}"
        );
        assert!(!text.contains(secret), "{secret} in the stream: {text}");
    }
    app.stop().await;
}
