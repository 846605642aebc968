//! The SEO studio at its limits: the real binary killed with SIGKILL in the middle of a
//! generation (after a restart the job's lease expires, the job runs again and stores exactly
//! one whole, valid package — never a half-written one), the real local model writing
//! packages that are valid whatever it says, and a transcript far longer than the model's
//! context, summarised window by window.

use std::time::{Duration, Instant};

use confab_testkit::{ConfabProcess, TestDb};
use serde_json::{Value, json};

use crate::binary::{bin, write_config};
use crate::common::{PASSWORD, TestApp};
use crate::seo::{SRT, create, generate, seo_reply, sourdough, user};

/// GET `path` from the spawned server as `token`'s user, read as JSON.
async fn get_json(
    client: &reqwest::Client,
    server: &ConfabProcess,
    token: &str,
    path: &str,
) -> Value {
    client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_generation_killed_midway_finishes_once_after_a_restart() {
    let db = TestDb::new().await.unwrap();
    // A model that answers the package word by word, slowly: each of the generation's model
    // calls takes a few seconds, so the kill lands inside one.
    let config = write_config(
        &db,
        &format!(
            "[bus]\njob_lease_secs = 2\njob_poll_ms = 100\n\n[seo]\nmodel = \"scripted-seo\"\n\n\
             [inference]\nproviders = [{{ name = \"seo\", kind = \"scripted\", models = [\"scripted-seo\"], \
             delay_ms = 15, reply = '''{}''' }}]\n",
            seo_reply()
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
    let registered: Value = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "creator@example.com", "password": PASSWORD, "name": "C"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["access_token"].as_str().unwrap().to_owned();
    let project: Value = client
        .post(server.url("/api/v1/seo/projects"))
        .bearer_auth(&token)
        .json(
            &json!({"topic": "Sourdough bread", "primary_keyword": "sourdough bread",
            "duration_secs": 180, "transcript": SRT}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = project["id"].as_str().unwrap().to_owned();
    let generation = format!("/api/v1/seo/projects/{id}/generation");
    let started = client
        .post(server.url(&generation))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);

    // Wait until the job runs and has reported progress, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = get_json(&client, &server, &token, &generation).await;
        if now["state"] == "running" && now["percent"].as_f64().unwrap_or(0.0) > 0.0 {
            break;
        }
        assert_ne!(
            now["state"], "succeeded",
            "the generation ended before the kill"
        );
        assert!(Instant::now() < deadline, "the generation never ran: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut server = server;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let server = ConfabProcess::spawn(bin(), db.dir.path(), &env)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let now = get_json(&client, &server, &token, &generation).await;
        if now["state"] != "running" && now["state"] != "queued" {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "not finished after the restart: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended["state"], "succeeded", "{ended}");
    let versions = get_json(
        &client,
        &server,
        &token,
        &format!("/api/v1/seo/projects/{id}/versions"),
    )
    .await;
    let items = versions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one package, not one a run: {versions}");
    let package = &items[0]["package"];
    assert_eq!(package["titles"].as_array().unwrap().len(), 5);
    assert!(!package["description"].as_str().unwrap().is_empty());
    let job = get_json(
        &client,
        &server,
        &token,
        &format!("/api/v1/admin/jobs/{}", ended["job_id"].as_str().unwrap()),
    )
    .await;
    assert!(
        job["attempts"].as_u64() > Some(1),
        "the job was retaken: {job}"
    );
    server.terminate().await.unwrap();
}

/// The studio on the real local model (SmolLM2-135M on the embedded engine, its JSON held to
/// the schema by a grammar): whatever the small model writes, the stored packages are valid.
#[tokio::test]
async fn the_local_model_writes_valid_packages() {
    // The model does the same work on either database; one run of it is enough (it is the
    // suite's slowest test on two cores).
    if confab_testkit::backend() == confab_testkit::TestBackend::Postgres {
        return;
    }
    let models = confab_testkit::test_models_dir().unwrap();
    let app = TestApp::start_with(move |config| {
        config.inference.models_dir = Some(models);
        config.inference.engine.threads = 2;
        config.seo.model = Some(confab_testkit::SMOLLM2.into());
        config.seo.max_tokens = 150;
        config.seo.temperature = 0.0;
        config.bus.job_poll_ms = 20;
    })
    .await;
    let token = user(&app, "creator@example.com").await;
    // One project with a transcript: on two busy cores the small model still takes a minute
    // or more for its two or three calls.
    let body = sourdough();
    let project = create(&app, &token, body).await;
    let id = project["id"].as_str().unwrap();
    let generation = generate(&app, &token, id).await;
    assert_eq!(generation["state"], "succeeded", "{generation}");
    let version = app
        .get(
            &format!("/api/v1/seo/projects/{id}/versions/1"),
            Some(&token),
        )
        .await;
    let package = &version.body["package"];
    assert_eq!(version.body["model"], confab_testkit::SMOLLM2);
    let report = app
        .post(
            "/api/v1/seo/score",
            Some(&token),
            json!({"title": package["title"], "description": package["description"],
                   "tags": package["tags"], "duration_secs": project["duration_secs"]}),
        )
        .await;
    let errors: Vec<&Value> = report.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {package}");
    assert_eq!(package["titles"].as_array().unwrap().len(), 5);
    app.stop().await;
}

/// A 300 KB transcript does not fit an 8,192-token context: it is summarised window by window
/// (a handful of calls, not one a segment), and the package is still valid and stored once.
#[tokio::test]
async fn a_transcript_longer_than_the_context_is_summarised_by_window() {
    let app = crate::seo::studio().await;
    let token = user(&app, "creator@example.com").await;
    let mut srt = String::new();
    for i in 0..3_000u32 {
        let (start, end) = (i * 2, i * 2 + 2);
        srt.push_str(&format!(
            "{}\n{:02}:{:02}:{:02},000 --> {:02}:{:02}:{:02},000\nPart {i} of a long talk about baking sourdough bread at home, step by step.\n\n",
            i + 1,
            start / 3600,
            start / 60 % 60,
            start % 60,
            end / 3600,
            end / 60 % 60,
            end % 60
        ));
    }
    assert!(srt.len() > 300_000);
    let mut body = sourdough();
    body["transcript"] = json!(srt);
    body["duration_secs"] = json!(6_000);
    let project = create(&app, &token, body).await;
    let id = project["id"].as_str().unwrap();
    let generation = generate(&app, &token, id).await;
    assert_eq!(generation["state"], "succeeded", "{generation}");
    let job = app
        .get(
            &format!(
                "/api/v1/admin/jobs/{}",
                generation["job_id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    let calls = job.body["result"]["stats"]["calls"].as_u64().unwrap();
    // 300 KB in windows of about 29,000 characters: about eleven summaries, then the stages.
    assert!(
        (8..=20).contains(&calls),
        "{calls} model calls: {}",
        job.text
    );
    let versions = app
        .get(&format!("/api/v1/seo/projects/{id}/versions"), Some(&token))
        .await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}
