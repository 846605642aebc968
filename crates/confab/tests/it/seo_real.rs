//! The SEO studio with the real thing: the real binary killed with SIGKILL in the middle of
//! a generation (after a restart the job's lease expires, the job runs again and stores
//! exactly one whole, valid package — never a half-written one), and the real local model
//! writing packages that are valid whatever it says.

use std::time::{Duration, Instant};

use confab_testkit::{ConfabProcess, TestDb};
use serde_json::{Value, json};

use crate::binary::{bin, write_config};
use crate::common::{PASSWORD, TestApp};
use crate::seo::{SRT, create, generate, seo_reply, sourdough, user};

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
        let now: Value = client
            .get(server.url(&generation))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
        let now: Value = client
            .get(server.url(&generation))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    let versions: Value = client
        .get(server.url(&format!("/api/v1/seo/projects/{id}/versions")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = versions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one package, not one a run: {versions}");
    let package = &items[0]["package"];
    assert_eq!(package["titles"].as_array().unwrap().len(), 5);
    assert!(!package["description"].as_str().unwrap().is_empty());
    let job: Value = client
        .get(server.url(&format!(
            "/api/v1/admin/jobs/{}",
            ended["job_id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        config.seo.max_tokens = 200;
        config.seo.temperature = 0.0;
        config.bus.job_poll_ms = 20;
    })
    .await;
    let token = user(&app, "creator@example.com").await;
    for body in [
        sourdough(),
        json!({"topic": "How to repair a bicycle puncture", "primary_keyword": "bike puncture repair",
               "tone": "educational", "duration_secs": 420}),
    ] {
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
    }
    app.stop().await;
}
