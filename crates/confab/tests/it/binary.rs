//! The real binary: serve on port 0, shut down on SIGTERM (also mid-generation on the
//! embedded engine), refuse bad configuration, print the configuration redacted, migrate
//! explicitly, manage users from the command line, and print the OpenAPI document the web
//! UI's types are generated from.
//!
//! Long (about 730 lines) because each case spawns the real binary and drives it through
//! its whole life (start, kill, restart); the cases of a killed server are the next cut.

use std::path::Path;
use std::process::Stdio;

use confab_testkit::{ConfabProcess, TestDb};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::common::{PASSWORD, TestApp};

pub(crate) fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_confab"))
}

/// Writes `toml` as the test's `confab.toml` and returns its path (for `CONFAB_CONFIG`).
pub(crate) fn write_config(db: &TestDb, toml: &str) -> String {
    let path = db.dir.path().join("confab.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs a `confab` subcommand against `db`; returns (exit code, stdout, stderr).
pub(crate) async fn confab(
    db: &TestDb,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut command = Command::new(bin());
    command
        .args(args)
        .arg("--data-dir")
        .arg(db.dir.path())
        .current_dir(db.dir.path())
        .env("CONFAB_DATABASE__URL", &db.url)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn serves_then_stops_cleanly_on_sigterm() {
    let db = TestDb::new().await.unwrap();
    let server = ConfabProcess::spawn(
        bin(),
        db.dir.path(),
        &[("CONFAB_DATABASE__URL", db.url.as_str())],
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let registered = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let token = registered.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = client
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let (status, mut logs) = server.terminate_with_logs().await.unwrap();
    assert!(status.success(), "{status:?}");
    // The process has exited; its last lines may still be on their way through the pipe:
    // read until the reader sees the end of it.
    let mut lines = Vec::new();
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), logs.recv()).await
    {
        lines.push(line);
    }
    let text = lines.join("\n");
    assert!(text.contains("\"stopped\""), "{text}");
    // Every line is JSON, and the request's lines carry its id.
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if value["span"]["name"] == "request" {
            assert!(value["span"]["request_id"].is_string(), "{line}");
        }
    }
}

/// SIGTERM while the embedded engine streams an answer: the process stops the engine in order
/// (the generation cancelled at its next token, the worker threads joined) and exits with
/// success, instead of dying of a signal in llama.cpp's teardown.
#[tokio::test]
async fn sigterm_mid_generation_stops_the_engine_and_exits_cleanly() {
    use futures::StreamExt;
    // The model does the same work on either database; one run is enough.
    if confab_testkit::backend() == confab_testkit::TestBackend::Postgres {
        return;
    }
    let models = confab_testkit::test_models_dir().unwrap();
    let db = TestDb::new().await.unwrap();
    let env = [
        ("CONFAB_DATABASE__URL", db.url.as_str()),
        ("CONFAB_INFERENCE__MODELS_DIR", models.to_str().unwrap()),
        ("CONFAB_INFERENCE__ENGINE__THREADS", "1"),
        // In-flight requests are cut off after a second, so the answer is still being
        // generated when the engine stops.
        ("CONFAB_SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
    ];
    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let registered: serde_json::Value = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["access_token"].as_str().unwrap();
    let response = client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(token)
        // Sampling this hot, the small model rambles on rather than ending its answer.
        .json(&json!({
            "model": confab_testkit::SMOLLM2,
            "stream": true,
            "temperature": 2.0,
            "seed": 7,
            "max_tokens": 3000,
            "messages": [{"role": "user", "content": "Tell me a long story about a dragon."}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Wait until tokens flow: the engine is generating.
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"content\"") {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let reader = tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    });

    let (status, mut logs) = server.terminate_with_logs().await.unwrap();
    assert!(status.success(), "{status:?}");
    // The answer was still being generated when the engine stopped: it never finished.
    let seen = reader.await.unwrap();
    assert!(!seen.contains("\"finish_reason\":\""), "{seen}");
    let mut lines = Vec::new();
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), logs.recv()).await
    {
        lines.push(line);
    }
    let text = lines.join("\n");
    assert!(text.contains("\"stopped\""), "{text}");
    assert!(!text.contains("did not stop in time"), "{text}");
}

#[tokio::test]
async fn unknown_configuration_keys_stop_the_start() {
    let db = TestDb::new().await.unwrap();
    let (code, _, stderr) = confab(
        &db,
        &["serve"],
        &[("CONFAB_AUTH__LOCKOUT_TRESHOLD", "3")],
        None,
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("lockout_treshold"), "{stderr}");

    std::fs::write(db.dir.path().join("confab.toml"), "[server]\nport = 1\n").unwrap();
    let (code, _, stderr) = confab(&db, &["config"], &[], None).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("port"), "{stderr}");
}

#[tokio::test]
async fn config_prints_the_effective_values_redacted() {
    let db = TestDb::new().await.unwrap();
    std::fs::write(
        db.dir.path().join("confab.toml"),
        "[auth]\nlockout_threshold = 7\n",
    )
    .unwrap();
    let (code, stdout, stderr) = confab(
        &db,
        &["config", "--listen", "127.0.0.1:9999"],
        &[
            ("DATABASE_URL", "postgres://u:hunter2@db/confab"),
            ("CONFAB_AUTH__ISSUER", "env"),
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("lockout_threshold = 7"), "{stdout}");
    assert!(stdout.contains("issuer = \"env\""), "{stdout}");
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
}

/// Every `$ref` in `value` that names nothing in `doc` (openapi-typescript refuses such a
/// document, so the web UI's types could not be generated).
fn dangling_refs(doc: &serde_json::Value, value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                let pointer = target.trim_start_matches('#');
                if doc.pointer(pointer).is_none() {
                    found.push(target.to_owned());
                }
            }
            map.values().for_each(|v| dangling_refs(doc, v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_prints_the_served_document_without_configuration() {
    let app = TestApp::start().await;
    let served = app.get("/api/openapi.json", None).await.body;
    app.stop().await;
    // The local configuration plays no part: even a broken one does not stop it.
    let db = TestDb::new().await.unwrap();
    std::fs::write(db.dir.path().join("confab.toml"), "[server]\nport = 1\n").unwrap();
    let (code, stdout, stderr) = confab(&db, &["openapi"], &[], None).await;
    assert_eq!(code, 0, "{stderr}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed, served);
    let mut dangling = Vec::new();
    dangling_refs(&printed, &printed, &mut dangling);
    assert!(dangling.is_empty(), "$ref to nothing: {dangling:?}");
}

#[tokio::test]
async fn migrate_explicitly_when_auto_migrate_is_off() {
    let db = TestDb::new().await.unwrap();
    let manual = [("CONFAB_DATABASE__AUTO_MIGRATE", "false")];
    let (code, _, stderr) = confab(&db, &["users", "list"], &manual, None).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("confab migrate"), "{stderr}");
    let (code, stdout, stderr) = confab(&db, &["migrate"], &manual, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("auth: 3 applied now"), "{stdout}");
    let (code, stdout, _) = confab(&db, &["migrate"], &manual, None).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("auth: 0 applied now, 3 before"), "{stdout}");
    let (code, _, stderr) = confab(&db, &["users", "list"], &manual, None).await;
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn users_are_managed_from_the_command_line() {
    let db = TestDb::new().await.unwrap();
    let (code, _, stderr) = confab(
        &db,
        &["users", "create", "--email", "weak@example.com"],
        &[],
        Some("short\n"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("at least 10 characters"), "{stderr}");

    let (code, stdout, stderr) = confab(
        &db,
        &["users", "create", "--email", "root@example.com", "--admin"],
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("created root@example.com (admin)"),
        "{stdout}"
    );
    let (_, _, _) = confab(
        &db,
        &[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "Ada",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let (code, stdout, _) = confab(
        &db,
        &["users", "set-role", "ada@example.com", "admin"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(stdout.contains("ada@example.com is now admin"), "{stdout}");
    let (code, _, stderr) = confab(
        &db,
        &["users", "set-role", "ada@example.com", "root"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown role"), "{stderr}");
    let (code, stdout, _) = confab(&db, &["users", "list"], &[], None).await;
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.contains("root@example.com\tadmin\tactive"),
        "{stdout}"
    );

    // The account works over HTTP.
    let server = ConfabProcess::spawn(
        bin(),
        db.dir.path(),
        &[("CONFAB_DATABASE__URL", db.url.as_str())],
    )
    .await
    .unwrap();
    let login = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    server.terminate().await.unwrap();
}

#[tokio::test]
async fn models_are_pulled_listed_and_removed_from_the_command_line() {
    let db = TestDb::new().await.unwrap();
    let source = db.dir.path().join("cli-model.gguf");
    std::fs::write(&source, confab_testkit::tiny_gguf("cli", 4096)).unwrap();
    let (code, stdout, _) = confab(&db, &["models", "list"], &[], None).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("no local models"), "{stdout}");
    let (code, stdout, stderr) = confab(
        &db,
        &["models", "pull", source.to_str().unwrap()],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("pulled cli-model ("), "{stdout}");
    let (code, _, stderr) = confab(
        &db,
        &[
            "models",
            "pull",
            source.to_str().unwrap(),
            "--sha256",
            &"0".repeat(64),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("sha256 mismatch"), "{stderr}");
    let (_, stdout, _) = confab(&db, &["models", "list"], &[], None).await;
    assert!(stdout.starts_with("cli-model\tllama\t"), "{stdout}");
    let (code, stdout, _) = confab(&db, &["models", "rm", "cli-model"], &[], None).await;
    assert_eq!((code, stdout.trim()), (0, "removed cli-model"));
    let (code, _, stderr) = confab(&db, &["models", "rm", "cli-model"], &[], None).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no local model named"), "{stderr}");
    let (code, _, stderr) = confab(&db, &["chat", "hello"], &[], None).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("scripts/fetch-model.sh"), "{stderr}");
}

/// The durability test: 50 answers streaming from a slow deterministic model when the process
/// is killed with SIGKILL. After a restart every user message is there, every answer is
/// `interrupted` (or `complete`) with at least the text its client had 0.7 s before the kill
/// (checkpoints come every 0.5 s), and the database is intact.
#[tokio::test]
async fn a_killed_server_keeps_every_message_and_each_answer_to_its_last_checkpoint() {
    use futures::StreamExt;
    const STREAMS: usize = 50;
    let words: Vec<String> = (1..=300).map(|i| format!("w{i}")).collect();
    let reply = words.join(" ");
    let db = TestDb::new().await.unwrap();
    let config = write_config(
        &db,
        &format!(
            "[chat]\nauto_titles = false\n\n[inference]\nproviders = [{{ name = \"slow\", kind = \"scripted\", models = [\"slow\"], reply = \"{reply}\", delay_ms = 20 }}]\n\n# One user streams all 50 answers at once.\n[inference.concurrency]\nuser_requests = 0\n"
        ),
    );
    let env = [
        ("CONFAB_DATABASE__URL", db.url.as_str()),
        ("CONFAB_CONFIG", config.as_str()),
    ];
    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let call =
        |method: reqwest::Method, url: String, token: Option<String>, body: serde_json::Value| {
            let client = client.clone();
            async move {
                let mut request = client.request(method, url).json(&body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                request.send().await.unwrap()
            }
        };
    call(
        reqwest::Method::POST,
        server.url("/api/v1/auth/register"),
        None,
        json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}),
    )
    .await;
    let login: serde_json::Value = call(
        reqwest::Method::POST,
        server.url("/api/v1/auth/login"),
        None,
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    // 50 conversations, each with an answer streaming; every stream is read as it arrives.
    let seen: Vec<std::sync::Arc<parking_lot::Mutex<String>>> =
        (0..STREAMS).map(|_| std::sync::Arc::default()).collect();
    let mut conversations = Vec::new();
    let mut readers = Vec::new();
    for (i, text) in seen.iter().enumerate() {
        let conversation: serde_json::Value = call(
            reqwest::Method::POST,
            server.url("/api/v1/conversations"),
            Some(token.clone()),
            json!({"model": "slow"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let id = conversation["id"].as_str().unwrap().to_owned();
        let response = call(
            reqwest::Method::POST,
            server.url(&format!("/api/v1/conversations/{id}/messages")),
            Some(token.clone()),
            json!({"content": format!("question {i}")}),
        )
        .await;
        assert_eq!(response.status(), 200);
        conversations.push(id);
        let text = text.clone();
        readers.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut raw = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                raw.push_str(&String::from_utf8_lossy(&chunk));
                *text.lock() = raw.clone();
            }
        }));
    }
    // Let every answer stream for a while, note what the clients had 0.7 s before the kill
    // (the 0.5 s checkpoint interval plus slack for a busy machine), then kill without warning.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before: Vec<String> = seen.iter().map(|t| streamed_text(&t.lock())).collect();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mut server = server;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for reader in readers {
        let _ = reader.await;
    }
    assert!(
        before.iter().all(|t| !t.is_empty()),
        "every answer had begun"
    );

    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    for (i, id) in conversations.iter().enumerate() {
        let messages: serde_json::Value = client
            .get(server.url(&format!("/api/v1/conversations/{id}/messages")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = messages["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{messages}");
        assert_eq!(items[0]["content"], format!("question {i}"));
        let answer = &items[1];
        let status = answer["status"].as_str().unwrap();
        let content = answer["content"].as_str().unwrap();
        assert!(
            status == "interrupted" || (status == "complete" && content == reply),
            "{answer}"
        );
        assert!(reply.starts_with(content), "{content}");
        assert!(
            content.starts_with(&before[i]),
            "answer {i} lost more than the checkpoint interval: saved {content:?}, the client had {:?} 0.7 s before the kill",
            before[i]
        );
    }
    server.terminate().await.unwrap();
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(check.0, "ok");
    }
}

/// The answer text in an SSE body read so far (complete `delta` events only).
fn streamed_text(raw: &str) -> String {
    let complete = match raw.rfind("\n\n") {
        Some(end) => &raw[..end],
        None => return String::new(),
    };
    complete
        .split("\n\n")
        .filter(|block| block.lines().any(|l| l == "event: delta"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .map(|d| d["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The jobs crash test: 100 model pulls (durable `model.pull` jobs) queued and running from
/// a slow file server when the server is killed with SIGKILL. After a restart the leases
/// of the jobs that were running expire and are retaken, the queued ones run, and every
/// pull completes exactly once in effect: 100 jobs succeeded, none failed or lost, each
/// model installed once and whole.
#[tokio::test]
async fn jobs_queued_and_running_at_a_kill_all_complete_after_a_restart() {
    const PULLS: usize = 100;
    // A file server that takes 250 ms per file, so pulls are still queued and running at the
    // kill.
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            |axum::extract::Path(name): axum::extract::Path<String>| async move {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let model = name.trim_end_matches(".gguf").to_owned();
                confab_testkit::tiny_gguf(&model, 4096)
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let db = TestDb::new().await.unwrap();
    let config = write_config(
        &db,
        // The file server is on loopback over plain http: allowed for this test only.
        "[bus]\njob_lease_secs = 2\njob_poll_ms = 100\njob_concurrency = 4\n\n[inference]\npull_allow_private = [\"127.0.0.1/32\"]\npull_allow_http = true\n",
    );
    let env = [
        ("CONFAB_DATABASE__URL", db.url.as_str()),
        ("CONFAB_CONFIG", config.as_str()),
    ];
    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "admin@example.com", "password": PASSWORD, "name": "Admin"}))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "admin@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    for i in 0..PULLS {
        let started = client
            .post(server.url("/api/v1/models/pulls"))
            .bearer_auth(&token)
            .json(&json!({"source": format!("http://{files}/crash-{i}.gguf")}))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "{}", started.text().await.unwrap());
    }
    // Some pulls finish, some run, most wait: then the process dies without warning.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let running = pull_jobs(&client, &server, &token, "running").await.len();
    let queued = pull_jobs(&client, &server, &token, "queued").await.len();
    assert!(
        running > 0 && queued > 0,
        "running {running}, queued {queued}"
    );
    let mut server = server;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let jobs_in = |state| pull_jobs(&client, &server, &token, state);
    while jobs_in("succeeded").await.len() < PULLS {
        assert!(
            std::time::Instant::now() < deadline,
            "not every job completed after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let succeeded = jobs_in("succeeded").await;
    assert_eq!(succeeded.len(), PULLS);
    assert!(jobs_in("failed").await.is_empty());
    assert!(jobs_in("queued").await.is_empty());
    assert!(jobs_in("running").await.is_empty());
    assert!(
        succeeded.iter().any(|j| j["attempts"].as_u64() > Some(1)),
        "the jobs running at the kill were retaken"
    );
    let pulls: serde_json::Value = client
        .get(server.url("/api/v1/models/pulls"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pulls = pulls["items"].as_array().unwrap();
    assert_eq!(pulls.len(), PULLS, "one pull record each");
    assert!(pulls.iter().all(|p| p["state"] == "completed"), "{pulls:?}");
    // Each model installed once, whole, and nothing half-written left behind.
    let models = db.dir.path().join("models");
    for i in 0..PULLS {
        let file = models.join(format!("crash-{i}.gguf"));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            confab_testkit::tiny_gguf(&format!("crash-{i}"), 4096),
            "{}",
            file.display()
        );
    }
    let partial = models.join(".partial");
    assert!(
        !partial.exists() || std::fs::read_dir(&partial).unwrap().next().is_none(),
        "no partial file is left"
    );
    server.terminate().await.unwrap();
}

/// The `model.pull` jobs in `state`, from the admin API.
async fn pull_jobs(
    client: &reqwest::Client,
    server: &ConfabProcess,
    token: &str,
    state: &str,
) -> Vec<serde_json::Value> {
    let url = server.url(&format!(
        "/api/v1/admin/jobs?kind=model.pull&state={state}&limit=200"
    ));
    let page: serde_json::Value = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().cloned().unwrap_or_default()
}
