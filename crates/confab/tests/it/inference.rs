//! The OpenAI-compatible API over a real socket, on the deterministic scripted provider:
//! the exact wire format of answers and SSE streams, and every error in OpenAI's shape.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp, sse_data};

async fn app_with_key(scopes: &[&str]) -> (TestApp, String) {
    let app = TestApp::start().await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&token),
            json!({"name": "sdk", "scopes": scopes}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    (app, key)
}

fn chat(content: &str) -> Value {
    json!({"model": SCRIPTED_MODEL, "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": content}]})
}

#[tokio::test]
async fn non_streamed_answers_have_the_openai_shape() {
    let (app, key) = app_with_key(&["inference"]).await;
    let response = app
        .post("/v1/chat/completions", Some(&key), chat("hello there"))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let body = &response.body;
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], SCRIPTED_MODEL);
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "You said: hello there"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8})
    );

    let limited = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "a b c"}], "max_completion_tokens": 2}),
        )
        .await;
    assert_eq!(
        limited.body["choices"][0]["message"]["content"],
        "You said: "
    );
    assert_eq!(limited.body["choices"][0]["finish_reason"], "length");
    // Content given as parts.
    let parts = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "in parts"}]}]}),
        )
        .await;
    assert_eq!(
        parts.body["choices"][0]["message"]["content"],
        "You said: in parts"
    );
    app.stop().await;
}

#[tokio::test]
async fn streams_follow_the_openai_sse_format() {
    let (app, key) = app_with_key(&["inference"]).await;
    let mut body = chat("one two");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "You said: one two");
    let id = chunks[0]["id"].clone();
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk")
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(finish["usage"].is_null());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );

    // Without include_usage there is no usage chunk.
    body["stream_options"] = json!(null);
    let text = app.chat_text(&key, &body).await;
    let data = sse_data(&text);
    let last_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "stop");
    app.stop().await;
}

#[tokio::test]
async fn errors_have_the_openai_shape_and_status() {
    let (app, key) = app_with_key(&["inference"]).await;
    let error = |r: &crate::common::Response| {
        (
            r.status.as_u16(),
            r.body["error"]["code"].clone(),
            r.body["error"]["type"].clone(),
        )
    };

    let unknown = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(
        error(&unknown),
        (404, json!("model_not_found"), json!("not_found_error"))
    );
    assert_eq!(unknown.body["error"]["param"], "model");
    for (body, param) in [
        (json!({"model": SCRIPTED_MODEL, "messages": []}), "messages"),
        (
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "robot", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}], "n": 2}),
            "n",
        ),
        (
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}),
            "stop",
        ),
    ] {
        let response = app
            .post("/v1/chat/completions", Some(&key), body.clone())
            .await;
        assert_eq!(
            error(&response),
            (
                400,
                json!("invalid_request"),
                json!("invalid_request_error")
            ),
            "{body}"
        );
        assert_eq!(response.body["error"]["param"], param, "{body}");
    }
    let image = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
        )
        .await;
    assert_eq!(error(&image).0, 400);
    // Images are data: URLs of an image type, never fetched from a URL.
    for (url, why) in [
        ("http://127.0.0.1/cat.png", "not a data: URL"),
        ("data:text/html;base64,PGI+", "has the type `text/html`"),
        ("data:image/png;base64,not base64!", "not valid base64"),
    ] {
        let refused = app
            .post(
                "/v1/chat/completions",
                Some(&key),
                json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}}]}]}),
            )
            .await;
        assert_eq!(error(&refused).0, 400, "{url}");
        let message = refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(why), "{url}: {message}");
    }
    let json_mode = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
        )
        .await;
    assert_eq!(
        error(&json_mode),
        (400, json!("unsupported"), json!("invalid_request_error"))
    );
    let malformed = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let malformed: Value = malformed.json().await.unwrap();
    assert!(
        malformed["error"]["message"].is_string() && malformed["error"]["type"].is_string(),
        "{malformed}"
    );

    let bad_key = app
        .post("/v1/chat/completions", Some("cfk_wrong"), chat("x"))
        .await;
    assert_eq!(error(&bad_key).0, 401);
    assert_eq!(bad_key.body["error"]["type"], "authentication_error");
    let anonymous = app.post("/v1/chat/completions", None, chat("x")).await;
    assert_eq!(error(&anonymous).0, 401);
    app.stop().await;
}

#[tokio::test]
async fn keys_need_the_inference_scope() {
    let (app, chat_only) = app_with_key(&["chat"]).await;
    let refused = app
        .post("/v1/chat/completions", Some(&chat_only), chat("x"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"]["code"], "insufficient_scope");
    assert_eq!(refused.body["error"]["type"], "permission_error");
    let models = app.get("/v1/models", Some(&chat_only)).await;
    assert_eq!(models.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn models_are_listed() {
    let (app, key) = app_with_key(&["inference"]).await;
    let models = app.get("/v1/models", Some(&key)).await;
    assert_eq!(models.body["object"], "list");
    assert_eq!(
        models.body["data"],
        json!([{"id": SCRIPTED_MODEL, "object": "model", "created": 0, "owned_by": "scripted"}])
    );
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let installed = app
        .call(Method::GET, "/api/v1/models", Some(&token), None)
        .await;
    assert_eq!(installed.body["items"][0]["id"], SCRIPTED_MODEL);
    assert_eq!(installed.body["items"][0]["default"], true);
    assert!(installed.body["items"][0]["local"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn embedding_requests_are_validated() {
    let (app, key) = app_with_key(&["inference"]).await;
    let error = |r: &crate::common::Response| (r.status.as_u16(), r.body["error"]["param"].clone());
    for (body, param) in [
        (json!({"model": "m", "input": []}), "input"),
        (json!({"model": "m", "input": ["ok", ""]}), "input"),
        (
            json!({"model": "m", "input": "x", "encoding_format": "hex"}),
            "encoding_format",
        ),
    ] {
        let response = app.post("/v1/embeddings", Some(&key), body.clone()).await;
        assert_eq!(
            error(&response),
            (400, json!(param)),
            "{body}: {}",
            response.text
        );
    }
    let tokens = app
        .post(
            "/v1/embeddings",
            Some(&key),
            json!({"model": "m", "input": [[1, 2, 3]]}),
        )
        .await;
    assert_eq!(tokens.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .post(
            "/v1/embeddings",
            Some(&key),
            json!({"model": "m", "input": "x"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["error"]["code"], "model_not_found");
    app.stop().await;
}
