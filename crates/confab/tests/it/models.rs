//! The explore side of inference: the catalog, model pulls as background jobs (with progress,
//! events, checksums, resumption after an interruption and after a restart), what a pull may
//! fetch (the SSRF guard, local paths), the model listing's paths and scopes, and deleting
//! local models.
//!
//! Long (about 700 lines) because pulls need fake upstream servers (plain files, a fake
//! Ollama, a counting server), written here next to the cases that use them; the cases of what
//! a pull may fetch (the SSRF guard, local paths) are the next cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use confab_inference::models::{ModelStore, Source};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, test_config};

/// The test file servers listen on loopback, an internal address that pulls refuse unless
/// the configuration lists it (and plain http unless allowed).
fn allow_test_servers(config: &mut confab_core::config::Config) {
    config.inference.pull_allow_private = vec!["127.0.0.1/32".into()];
    config.inference.pull_allow_http = true;
}

async fn admin(app: &TestApp) -> String {
    app.register("admin@example.com").await;
    app.login("admin@example.com", PASSWORD).await.0
}

/// Polls a pull until it ends (bounded).
async fn wait_for(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        let status = app
            .get(&format!("/api/v1/models/pulls/{id}"), Some(token))
            .await;
        let state = status.body["state"].as_str().unwrap_or_default().to_owned();
        if ["completed", "failed", "cancelled"].contains(&state.as_str()) {
            return status.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the pull did not finish");
}

#[tokio::test]
async fn the_catalog_is_searchable() {
    let app = TestApp::start().await;
    let token = admin(&app).await;
    let all = app.get("/api/v1/models/catalog", Some(&token)).await;
    assert!(all.body["version"].as_u64().unwrap() >= 1);
    let small = app
        .get(
            "/api/v1/models/catalog?q=smollm2&capability=chat&max_size=200000000",
            Some(&token),
        )
        .await;
    let items = small.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", small.text);
    assert_eq!(items[0]["name"], "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(items[0]["quantization"], "Q4_1");
    app.stop().await;
}

#[tokio::test]
async fn admins_pull_models_in_the_background_and_delete_them() {
    let files = tempfile::tempdir().unwrap();
    let gguf = confab_testkit::tiny_gguf("tiny", 64 * 1024);
    std::fs::write(files.path().join("tiny-model.gguf"), &gguf).unwrap();
    std::fs::write(files.path().join("not-a-model.gguf"), b"<html>login</html>").unwrap();
    let (addr, _server) = confab_testkit::serve_dir(files.path()).await.unwrap();
    let app = TestApp::start_with(allow_test_servers).await;
    let token = admin(&app).await;

    let started = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": format!("http://{addr}/tiny-model.gguf")}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(started.body["model"], "tiny-model");
    let id = started.body["id"].as_str().unwrap().to_owned();
    let done = wait_for(&app, &token, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["bytes"], gguf.len());
    assert_eq!(done["percent"], 100.0);

    // Subscribers of a finished pull get its final state.
    let events = app
        .client
        .get(app.url(&format!("/api/v1/models/pulls/{id}/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains(r#""state":"completed""#), "{events}");

    let installed = app.get("/api/v1/models", Some(&token)).await;
    let local = installed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "tiny-model")
        .cloned()
        .unwrap();
    assert_eq!(local["local"]["architecture"], "llama");
    assert_eq!(local["local"]["display_name"], "tiny");
    assert_eq!(local["local"]["sha256"].as_str().map(str::len), Some(64));

    // A wrong checksum and a file that is no GGUF both fail, leaving nothing half-made.
    let wrong = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": format!("http://{addr}/tiny-model.gguf"), "sha256": "0".repeat(64)}),
        )
        .await;
    let failed = wait_for(&app, &token, wrong.body["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("sha256"),
        "{failed}"
    );
    let html = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": format!("http://{addr}/not-a-model.gguf")}),
        )
        .await;
    let failed = wait_for(&app, &token, html.body["id"].as_str().unwrap()).await;
    assert!(
        failed["error"].as_str().unwrap().contains("not a GGUF"),
        "{failed}"
    );
    app.post(
        "/api/v1/models/pulls",
        Some(&token),
        json!({"source": "nonsense"}),
    )
    .await
    .assert_error(422, "invalid_source");
    app.post(
        "/api/v1/models/pulls",
        Some(&token),
        json!({"source": "a/b/c.gguf", "sha256": "xyz"}),
    )
    .await
    .assert_error(422, "invalid_sha256");
    let listed = app.get("/api/v1/models/pulls", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);

    let deleted = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/models/tiny-model",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.call(
        reqwest::Method::DELETE,
        "/api/v1/models/tiny-model",
        Some(&token),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let audit = confab_admin::SqlAuditLog::new(app.db.clone());
    assert_eq!(
        audit
            .recent(Some("model.pull_started"), 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        audit.recent(Some("model.deleted"), 10).await.unwrap().len(),
        1
    );
    let completed = audit
        .recent(Some("model.pull_completed"), 10)
        .await
        .unwrap();
    assert!(
        completed
            .iter()
            .any(|e| e.target.as_deref() == Some("tiny-model")),
        "{completed:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let files = tempfile::tempdir().unwrap();
    let gguf = confab_testkit::tiny_gguf("resumable", 256 * 1024);
    std::fs::write(files.path().join("resumable.gguf"), &gguf).unwrap();
    let (addr, _server) = confab_testkit::serve_dir(files.path()).await.unwrap();
    let models = tempfile::tempdir().unwrap();
    // The first half arrived before the connection broke.
    std::fs::create_dir_all(models.path().join(".partial")).unwrap();
    std::fs::write(
        models.path().join(".partial/resumable.gguf.partial"),
        &gguf[..gguf.len() / 2],
    )
    .unwrap();
    let mut config = confab_core::config::Config::default();
    allow_test_servers(&mut config);
    let store = ModelStore::from_config(models.path(), &config.inference).unwrap();
    assert!(
        store.list().unwrap().is_empty(),
        "a partial file is never listed"
    );
    let mut first_progress = None;
    let model = store
        .pull(
            &Source::Url(format!("http://{addr}/resumable.gguf")),
            None,
            |p| {
                first_progress.get_or_insert(p.bytes);
            },
        )
        .await
        .unwrap();
    assert!(
        first_progress.unwrap() > (gguf.len() / 2) as u64,
        "it continued from the half"
    );
    assert_eq!(std::fs::read(&model.path).unwrap(), gguf);
}

#[tokio::test]
async fn pulls_running_at_a_restart_are_resumed() {
    let files = tempfile::tempdir().unwrap();
    let gguf = confab_testkit::tiny_gguf("after-restart", 1024);
    std::fs::write(files.path().join("after-restart.gguf"), &gguf).unwrap();
    let (addr, _server) = confab_testkit::serve_dir(files.path()).await.unwrap();
    let (mut config, db) = test_config().await;
    allow_test_servers(&mut config);
    // The first process recorded a running pull, then died.
    let first = confab::app::build(&config).await.unwrap();
    let id = uuid::Uuid::now_v7();
    confab_store::sqlx::query(
        "INSERT INTO model_pulls (id, source, model, state, created_at, updated_at) VALUES ($1, $2, $3, 'running', 1, 1)",
    )
    .bind(id.to_string())
    .bind(format!("http://{addr}/after-restart.gguf"))
    .bind("after-restart")
    .execute(first.db.pool())
    .await
    .unwrap();
    drop(first);
    let app = TestApp::serve(confab::app::build(&config).await.unwrap(), config, db).await;
    let token = admin(&app).await;
    let done = wait_for(&app, &token, &id.to_string()).await;
    assert_eq!(done["state"], "completed", "{done}");
    app.stop().await;
}

/// A fake Ollama server for pulls and deletions: `/api/pull` streams NDJSON progress for two
/// layers then `success` (or an error line for `broken`); `/api/delete` knows one model.
async fn fake_ollama() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::{delete, post};
    async fn pull(axum::Json(body): axum::Json<Value>) -> axum::response::Response {
        let model = body["model"].as_str().unwrap_or_default();
        let lines: Vec<Value> = if model == "broken" {
            vec![
                json!({"status": "pulling manifest"}),
                json!({"error": "pull model manifest: file does not exist"}),
            ]
        } else {
            vec![
                json!({"status": "pulling manifest"}),
                json!({"status": "pulling aaa", "digest": "sha256:aaa", "total": 1000, "completed": 0}),
                json!({"status": "pulling aaa", "digest": "sha256:aaa", "total": 1000, "completed": 1000}),
                json!({"status": "pulling bbb", "digest": "sha256:bbb", "total": 50, "completed": 50}),
                json!({"status": "verifying sha256 digest"}),
                json!({"status": "writing manifest"}),
                json!({"status": "success"}),
            ]
        };
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        axum::response::Response::builder()
            .header("content-type", "application/x-ndjson")
            .body(axum::body::Body::from(body))
            .unwrap()
    }
    async fn remove(axum::Json(body): axum::Json<Value>) -> axum::response::Response {
        let status = if body["model"] == "llama3.2" {
            200
        } else {
            404
        };
        let text = if status == 200 {
            String::new()
        } else {
            json!({"error": format!("model '{}' not found", body["model"].as_str().unwrap_or(""))})
                .to_string()
        };
        axum::response::Response::builder()
            .status(status)
            .body(axum::body::Body::from(text))
            .unwrap()
    }
    async fn embed(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
        let inputs = body["input"].as_array().cloned().unwrap_or_default();
        let vectors: Vec<Value> = inputs
            .iter()
            .map(|t| json!([t.as_str().unwrap_or("").len() as f64, 1.0]))
            .collect();
        axum::Json(json!({"model": body["model"], "embeddings": vectors, "prompt_eval_count": 5}))
    }
    let app = axum::Router::new()
        .route("/api/embed", post(embed))
        .route("/api/pull", post(pull))
        .route("/api/delete", delete(remove));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

#[tokio::test]
async fn ollama_models_are_pulled_and_deleted_through_the_explore_api() {
    use confab_core::config::{ProviderConfig, ProviderKind};
    let (base_url, _server) = fake_ollama().await;
    let app = TestApp::start_with(|c| {
        let mut provider = ProviderConfig::new("lab", ProviderKind::Ollama, &["llama3.2"]);
        provider.base_url = Some(base_url.clone());
        c.inference.providers.push(provider);
    })
    .await;
    let token = admin(&app).await;

    let started = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": "ollama:lab/llama3.2"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(started.body["model"], "ollama:lab/llama3.2");
    let done = wait_for(&app, &token, started.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["percent"], 100.0);

    // Ollama's own error line fails the pull with its words.
    let broken = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": "ollama:lab/broken"}),
        )
        .await;
    let failed = wait_for(&app, &token, broken.body["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("file does not exist"),
        "{failed}"
    );

    // An unknown provider is refused before anything starts, naming the configured ones.
    let unknown = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": "ollama:elsewhere/llama3.2"}),
        )
        .await;
    let message = unknown.assert_error(422, "invalid_source");
    assert!(message.contains("lab"), "{message}");

    // Embeddings of an Ollama model come from Ollama's /api/embed.
    let embedded = app
        .post(
            "/v1/embeddings",
            Some(&token),
            json!({"model": "llama3.2", "input": ["abc", "hello"], "encoding_format": "float"}),
        )
        .await;
    assert_eq!(embedded.status, StatusCode::OK, "{}", embedded.text);
    assert_eq!(embedded.body["data"][1]["embedding"], json!([5.0, 1.0]));
    assert_eq!(embedded.body["usage"]["prompt_tokens"], 5);

    let deleted = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/models/ollama:lab%2Fllama3.2",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let missing = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/models/ollama:lab%2Fmistral",
            Some(&token),
            None,
        )
        .await;
    missing.assert_error(404, "not_found");
    app.stop().await;
}

/// A file server on `ip` that counts its requests: `/model.gguf` (a tiny GGUF) and
/// `/redirect?to=<url>` (a 302 there).
async fn counting_server(ip: &str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use axum::extract::{Query, Request, State};
    let hits = Arc::new(AtomicUsize::new(0));
    let gguf = confab_testkit::tiny_gguf("counted", 1024);
    let app = axum::Router::new()
        .route(
            "/model.gguf",
            axum::routing::get(move || {
                let gguf = gguf.clone();
                async move { gguf }
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(|Query(q): Query<Vec<(String, String)>>| async move {
                let to = q.into_iter().find(|(k, _)| k == "to").unwrap().1;
                axum::response::Redirect::to(&to)
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            hits.clone(),
            |State(hits): State<Arc<AtomicUsize>>,
             request: Request,
             next: axum::middleware::Next| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            },
        ));
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

#[tokio::test]
async fn pulls_of_internal_or_plain_http_targets_are_refused() {
    let (addr, hits) = counting_server("127.0.0.1").await;
    let port = addr.port();
    let app = TestApp::start().await;
    let token = admin(&app).await;
    for (url, class) in [
        (format!("https://127.0.0.1:{port}/model.gguf"), "loopback"),
        (format!("https://localhost:{port}/model.gguf"), "loopback"),
        (format!("https://[::1]:{port}/model.gguf"), "loopback"),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/model.gguf"),
            "loopback",
        ),
        ("https://2130706433/model.gguf".to_owned(), "loopback"),
        (
            "https://169.254.169.254/latest/model.gguf".to_owned(),
            "cloud metadata",
        ),
        ("https://10.0.0.1/model.gguf".to_owned(), "private"),
        ("https://192.168.1.1/model.gguf".to_owned(), "private"),
        ("https://[fd00::1]/model.gguf".to_owned(), "unique-local"),
        ("https://[fe80::1]/model.gguf".to_owned(), "link-local"),
        ("https://100.64.0.1/model.gguf".to_owned(), "shared (CGNAT)"),
        ("https://0.0.0.0/model.gguf".to_owned(), "unspecified"),
    ] {
        let refused = app
            .post("/api/v1/models/pulls", Some(&token), json!({"source": url}))
            .await;
        let message = refused.assert_error(422, "pull_target_forbidden");
        assert!(
            message.contains(&format!("internal address ({class})"))
                && message.contains("inference.pull_allow_private"),
            "{url}: {message}"
        );
        // What a name resolved to is not told.
        if url.contains("localhost") {
            assert!(
                !message.contains("127.0.0.1") && !message.contains("::1"),
                "{message}"
            );
        }
    }
    let http = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": format!("http://{addr}/model.gguf")}),
        )
        .await;
    let message = http.assert_error(422, "pull_target_forbidden");
    assert!(message.contains("inference.pull_allow_http"), "{message}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request reached the server"
    );
    let listed = app.get("/api/v1/models/pulls", Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was started");
    app.stop().await;
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_fails_the_pull_at_once() {
    let (allowed, allowed_hits) = counting_server("127.0.0.1").await;
    // Another loopback address, not listed.
    let (internal, internal_hits) = counting_server("127.0.0.2").await;
    let app = TestApp::start_with(allow_test_servers).await;
    let token = admin(&app).await;
    let started = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": format!("http://{allowed}/redirect?to=http://{internal}/model.gguf")}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    let failed = wait_for(&app, &token, started.body["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("refused")
            && error.contains("loopback")
            && error.contains("inference.pull_allow_private"),
        "{error}"
    );
    assert_eq!(
        internal_hits.load(Ordering::SeqCst),
        0,
        "the hop was not followed"
    );
    assert_eq!(
        allowed_hits.load(Ordering::SeqCst),
        1,
        "a refused target is not tried again"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_api_refuses_server_paths_without_an_import_dir() {
    let app = TestApp::start().await;
    let token = admin(&app).await;
    let existing = std::env::current_exe().unwrap();
    let mut messages = Vec::new();
    for path in [
        "/etc/passwd",
        "/dev/zero",
        existing.to_str().unwrap(),
        "/no/such/file.gguf",
        "./model.gguf",
    ] {
        let refused = app
            .post(
                "/api/v1/models/pulls",
                Some(&token),
                json!({"source": path}),
            )
            .await;
        let message = refused.assert_error(422, "local_path_forbidden");
        assert!(message.contains("inference.import_dir"), "{message}");
        messages.push(message.replace(path, "<path>"));
    }
    // The same answer for files that exist and files that do not: no existence oracle.
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
    let listed = app.get("/api/v1/models/pulls", Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn the_api_imports_regular_files_from_the_import_dir_only() {
    let root = tempfile::tempdir().unwrap();
    let import = root.path().join("import");
    std::fs::create_dir_all(&import).unwrap();
    let gguf = confab_testkit::tiny_gguf("imported", 1024);
    std::fs::write(import.join("imported.gguf"), &gguf).unwrap();
    std::fs::write(root.path().join("outside.gguf"), &gguf).unwrap();
    std::os::unix::fs::symlink(root.path().join("outside.gguf"), import.join("link.gguf")).unwrap();
    let dir = import.clone();
    let app = TestApp::start_with(move |c| c.inference.import_dir = Some(dir)).await;
    let token = admin(&app).await;

    let started = app
        .post(
            "/api/v1/models/pulls",
            Some(&token),
            json!({"source": "imported.gguf"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    let done = wait_for(&app, &token, started.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["bytes"], gguf.len());

    let outside = root.path().join("outside.gguf");
    let mut messages = Vec::new();
    for path in [
        "link.gguf",
        "../outside.gguf",
        outside.to_str().unwrap(),
        "missing.gguf",
        "/etc/passwd",
        "/dev/zero",
    ] {
        let refused = app
            .post(
                "/api/v1/models/pulls",
                Some(&token),
                json!({"source": path}),
            )
            .await;
        let message = refused.assert_error(422, "local_path_forbidden");
        messages.push(message.replace(path, "<path>"));
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
    app.stop().await;
}

#[tokio::test]
async fn model_paths_are_for_admins_and_keys_need_a_model_scope() {
    let models = tempfile::tempdir().unwrap();
    std::fs::write(
        models.path().join("tiny.gguf"),
        confab_testkit::tiny_gguf("tiny", 0),
    )
    .unwrap();
    let dir = models.path().to_owned();
    let app = TestApp::start_with(move |c| c.inference.models_dir = Some(dir)).await;
    let admin = admin(&app).await;
    app.register("user@example.com").await;
    let (user, _) = app.login("user@example.com", PASSWORD).await;
    let tiny = |listing: &Value| {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "tiny")
            .cloned()
            .unwrap()
    };

    let seen_by_user = app.get("/api/v1/models", Some(&user)).await;
    assert_eq!(seen_by_user.status, StatusCode::OK, "{}", seen_by_user.text);
    let local = tiny(&seen_by_user.body)["local"].clone();
    assert_eq!(local["path"], Value::Null, "{local}");
    assert!(
        !seen_by_user.text.contains(models.path().to_str().unwrap()),
        "{}",
        seen_by_user.text
    );
    assert_eq!(local["display_name"], "tiny");
    assert!(local["size_bytes"].as_u64().unwrap() > 0);
    let seen_by_admin = app.get("/api/v1/models", Some(&admin)).await;
    let path = tiny(&seen_by_admin.body)["local"]["path"].clone();
    assert!(
        path.as_str().unwrap().ends_with("tiny.gguf"),
        "{}",
        seen_by_admin.text
    );

    let key = |scopes: Value| {
        let app = &app;
        let user = user.clone();
        async move {
            let created = app
                .post(
                    "/api/v1/auth/api-keys",
                    Some(&user),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
            created.body["key"].as_str().unwrap().to_owned()
        }
    };
    let files_only = key(json!(["files"])).await;
    let message = app
        .get("/api/v1/models", Some(&files_only))
        .await
        .assert_error(403, "insufficient_scope");
    assert!(message.contains("`inference` or `chat`"), "{message}");
    for scopes in [json!(["chat"]), json!(["inference"])] {
        let key = key(scopes.clone()).await;
        let listed = app.get("/api/v1/models", Some(&key)).await;
        assert_eq!(listed.status, StatusCode::OK, "{scopes}: {}", listed.text);
        assert_eq!(tiny(&listed.body)["local"]["path"], Value::Null);
    }
    app.stop().await;
}
