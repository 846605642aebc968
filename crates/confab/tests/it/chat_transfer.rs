//! Conversations leaving and entering Confab over a real socket: export and import back whole,
//! ChatGPT's export, the bounds on imports, and share links (a snapshot for anyone until
//! revoked, stopped while their owner is locked).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat::{create, done, path, send, start};
use crate::common::{PASSWORD, TestApp};

#[tokio::test]
async fn conversations_export_and_import_back_whole() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({"title": "Branchy", "tags": ["keep"]})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = send(&app, &token, &id, json!({"content": "first"})).await;
    let a1 = done(&first)["id"].as_str().unwrap().to_owned();
    send(&app, &token, &id, json!({"content": "second"})).await;
    send(
        &app,
        &token,
        &id,
        json!({"content": "second, edited", "parent_id": a1}),
    )
    .await;

    let exported = app
        .client
        .get(app.url(&format!("/api/v1/conversations/{id}/export")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), StatusCode::OK);
    assert!(
        exported.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let file = exported.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(parsed["format"], "confab.conversations");
    assert_eq!(
        parsed["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let markdown = app
        .client
        .get(app.url(&format!(
            "/api/v1/conversations/{id}/export?format=markdown"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(markdown.starts_with("# Branchy\n"), "{markdown}");
    assert!(markdown.contains("## You\n\nsecond, edited"), "{markdown}");
    assert!(
        !markdown.contains("## You\n\nsecond\n"),
        "only the active branch: {markdown}"
    );

    // Another user imports the file: the same tree under new ids, the same active branch.
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let imported = app
        .client
        .post(app.url("/api/v1/conversations/import"))
        .bearer_auth(&bob)
        .header("content-type", "application/json")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::CREATED);
    let result: Value = imported.json().await.unwrap();
    assert_eq!(result["imported"], 1);
    let copy = result["conversation_ids"][0].as_str().unwrap();
    assert_ne!(copy, id);
    let original = path(&app, &token, &id).await;
    let copied = path(&app, &bob, copy).await;
    let texts = |p: &[Value]| -> Vec<(String, String, u64)> {
        p.iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_owned(),
                    m["content"].as_str().unwrap().to_owned(),
                    m["branches"]["index"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(texts(&copied), texts(&original));
    let got = app
        .get(&format!("/api/v1/conversations/{copy}"), Some(&bob))
        .await;
    assert_eq!(got.body["title"], "Branchy");
    assert_eq!(got.body["tags"], json!(["keep"]));

    // Exporting everything includes it; the owner can import their own export again.
    let all = app.get("/api/v1/conversations/export", Some(&bob)).await;
    assert_eq!(all.body["conversations"].as_array().unwrap().len(), 1);
    let again = app
        .client
        .post(app.url("/api/v1/conversations/import"))
        .bearer_auth(&token)
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn chatgpt_exports_import_and_bad_files_change_nothing() {
    let (app, token) = start().await;
    let chatgpt = json!([{
        "title": "Fox facts", "create_time": 1700000000.0, "update_time": 1700000100.0,
        "current_node": "a1",
        "mapping": {
            "root": {"id": "root", "message": null, "parent": null, "children": ["u1"]},
            "u1": {"id": "u1", "message": {"author": {"role": "user"}, "create_time": 1700000001.0,
                   "content": {"content_type": "text", "parts": ["Tell me about foxes"]}}, "parent": "root", "children": ["a1"]},
            "a1": {"id": "a1", "message": {"author": {"role": "assistant"}, "create_time": 1700000002.0,
                   "content": {"content_type": "text", "parts": ["Foxes are canids."]}}, "parent": "u1", "children": []}
        }
    }]);
    let imported = app
        .post("/api/v1/conversations/import", Some(&token), chatgpt)
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let id = imported.body["conversation_ids"][0].as_str().unwrap();
    let messages = path(&app, &token, id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], "Foxes are canids.");
    // Imported text is searchable.
    let found = app.get("/api/v1/search?q=canids", Some(&token)).await;
    assert_eq!(found.body["items"][0]["conversation_id"], id);

    // A file with a good conversation and a broken one is refused whole, with the place.
    let broken = json!([
        {"title": "ok", "mapping": {"u": {"id": "u", "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}}, "parent": null, "children": []}}},
        {"title": "bad"}
    ]);
    let refused = app
        .post("/api/v1/conversations/import", Some(&token), broken)
        .await;
    let message = refused.assert_error(422, "invalid_import");
    assert!(message.contains("[1].mapping"), "{message}");
    let listed = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );
    app.post(
        "/api/v1/conversations/import",
        Some(&token),
        json!({"hello": 1}),
    )
    .await
    .assert_error(422, "invalid_import");
    app.stop().await;
}

#[tokio::test]
async fn share_links_show_a_snapshot_to_anyone_until_revoked() {
    let (app, token) = start().await;
    let id = create(
        &app,
        &token,
        json!({"title": "Shared <b>chat</b>", "system_prompt": "secret"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/conversations/{id}/shares"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_error(422, "nothing_to_share");
    send(&app, &token, &id, json!({"content": "hello <script>"})).await;
    let link = app
        .post(
            &format!("/api/v1/conversations/{id}/shares"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let share = link.body["token"].as_str().unwrap().to_owned();
    assert_eq!(link.body["url"], format!("/s/{share}"));

    // Anyone (no sign-in) reads the snapshot, and nothing else of the owner's.
    let public = app.get(&format!("/api/v1/shared/{share}"), None).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert_eq!(public.body["title"], "Shared <b>chat</b>");
    assert_eq!(public.body["messages"].as_array().unwrap().len(), 2);
    assert!(!public.text.contains("secret") && !public.text.contains("ada@"));
    let page = app
        .client
        .get(app.url(&format!("/s/{share}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Shared &lt;b&gt;chat&lt;/b&gt;") && html.contains("hello &lt;script&gt;")
    );

    // Later messages are not in the snapshot.
    send(&app, &token, &id, json!({"content": "not shared"})).await;
    let again = app.get(&format!("/api/v1/shared/{share}"), None).await;
    assert!(!again.text.contains("not shared"));

    let listed = app
        .get(&format!("/api/v1/conversations/{id}/shares"), Some(&token))
        .await;
    assert_eq!(listed.body["items"][0]["revoked"], false);
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    app.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/shares/{share}"),
        Some(&bob),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let revoked = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/shares/{share}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/shared/{share}"), None)
        .await
        .assert_error(404, "not_found");
    // Both are in the audit log, without the link's secret.
    let logged: Vec<(String, String)> = confab_store::sqlx::query_as(
        "SELECT action, details FROM audit_log WHERE action LIKE 'chat.share%' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = logged.iter().map(|(a, _)| a.as_str()).collect();
    assert!(
        actions.ends_with(&["chat.share_created", "chat.share_revoked"]),
        "{logged:?}"
    );
    assert!(
        logged.iter().all(|(_, d)| !d.contains(&share)),
        "{logged:?}"
    );
    app.stop().await;
}

/// A response read whole, for its checks.
async fn response(response: reqwest::Response) -> crate::common::Response {
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    crate::common::Response {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Security review (issue 13 §6): imports are read off the request threads with bounds, and
/// every way in keeps the same field limits.
#[tokio::test]
async fn imports_and_tags_are_bounded_before_the_work() {
    let app = TestApp::start_with(|c| c.chat.import_limit_bytes = 4 * 1024 * 1024).await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let import = |body: String| {
        let request = app
            .client
            .post(app.url("/api/v1/conversations/import"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        async move { response(request.send().await.unwrap()).await }
    };
    // A ChatGPT conversation over 20,000 nodes is refused while it is read.
    let nodes: Vec<String> = (0..20_001)
        .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
        .collect();
    let big = format!(
        r#"[{{"title": "big", "mapping": {{{}}}}}]"#,
        nodes.join(",")
    );
    let message = import(big).await.assert_error(422, "import_too_large");
    assert!(message.contains("at most 20000"), "{message}");
    // Over the route's (configured) body limit.
    let huge = format!(r#"[{{"title": "{}"}}]"#, "x".repeat(4 * 1024 * 1024));
    assert_eq!(import(huge).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A Confab file keeps the limits of the API: these were stored before.
    let export = json!({
        "format": "confab.conversations", "version": 1, "exported_at": "2026-01-01T00:00:00Z",
        "conversations": [{
            "id": "0190f6a0-0000-7000-8000-000000000001", "title": "t",
            "model": "m".repeat(5_000), "system_prompt": "s".repeat(100_000),
            "folder": "f".repeat(10_000), "active_leaf_id": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "messages": []
        }]
    });
    let refused = import(export.to_string()).await;
    refused.assert_error(422, "invalid_import");
    let details = refused.body["error"]["details"].to_string();
    for field in [
        "model is 5000",
        "system_prompt is 100000",
        "folder is 10000",
    ] {
        assert!(details.contains(field), "{field}: {details}");
    }
    let listed = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was stored");

    // 80,000 tags: refused by their count, on create and on change.
    let tags = vec![""; 80_000];
    let message = app
        .post("/api/v1/conversations", Some(&token), json!({"tags": tags}))
        .await
        .assert_error(422, "invalid_body");
    assert_eq!(message, "at most 20 tags, got 80000");
    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(&token),
            Some(json!({"tags": tags})),
        )
        .await
        .assert_error(422, "invalid_body");
    assert_eq!(message, "at most 20 tags, got 80000");
    app.stop().await;
}

/// Security review: any number of imports were parsed at once (about 1.1 GB each for a
/// 63 MiB file). Past `chat.import_concurrency`, an import is refused at once with a time to
/// retry.
#[tokio::test]
async fn imports_past_the_concurrency_cap_are_refused_with_retry_after() {
    let app = TestApp::start_with(|c| c.chat.import_concurrency = 1).await;
    if app.db.backend() != confab_store::Backend::Sqlite {
        // The held writer below makes an import wait only on SQLite (one writer connection).
        app.stop().await;
        return;
    }
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let file = r#"[{"title": "t", "mapping": {"u": {"message": {"author": {"role": "user"},
        "content": {"parts": ["hello"]}}, "parent": null}}}]"#;
    let import = || {
        let request = app
            .client
            .post(app.url("/api/v1/conversations/import"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(file);
        async move { response(request.send().await.unwrap()).await }
    };
    // With the only writer connection held, the import holding the one permit waits to store
    // its conversations; the other is refused without waiting.
    let held = app.db.writer().acquire().await.unwrap();
    let (refused, other) =
        match futures::future::select(Box::pin(import()), Box::pin(import())).await {
            futures::future::Either::Left(done) | futures::future::Either::Right(done) => done,
        };
    refused.assert_error(503, "imports_busy");
    assert_eq!(refused.header("retry-after"), Some("5"));
    drop(held);
    let stored = other.await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    // The permit came back.
    assert_eq!(import().await.status, StatusCode::CREATED);
    app.stop().await;
}

/// Security review: share links kept working while their owner was locked, and share pages
/// could be kept by caches.
#[tokio::test]
async fn share_links_stop_while_their_owner_is_locked_and_are_never_cached() {
    let (app, ada) = start().await;
    let bob_id = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let id = create(&app, &bob, json!({"title": "Bob's"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, &bob, &id, json!({"content": "hello"})).await;
    let link = app
        .post(
            &format!("/api/v1/conversations/{id}/shares"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let share = link.body["token"].as_str().unwrap().to_owned();
    let (api, page) = (format!("/api/v1/shared/{share}"), format!("/s/{share}"));
    for path in [&api, &page] {
        let shown = app.get(path, None).await;
        assert_eq!(shown.status, StatusCode::OK, "{path}: {}", shown.text);
        assert_eq!(shown.header("cache-control"), Some("no-store"), "{path}");
    }
    let lock = |action: &'static str| {
        let path = format!("/api/v1/auth/users/{bob_id}/{action}");
        let (app, ada) = (&app, &ada);
        async move {
            let done = app.post(&path, Some(ada), json!({})).await;
            assert_eq!(done.status, StatusCode::OK, "{}", done.text);
        }
    };
    lock("lock").await;
    for path in [&api, &page] {
        let gone = app.get(path, None).await;
        gone.assert_error(404, "not_found");
        assert_eq!(gone.header("cache-control"), Some("no-store"), "{path}");
    }
    lock("unlock").await;
    for path in [&api, &page] {
        assert_eq!(app.get(path, None).await.status, StatusCode::OK, "{path}");
    }
    app.stop().await;
}
