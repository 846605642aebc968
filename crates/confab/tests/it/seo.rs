//! The SEO studio over HTTP: projects with transcripts, isolation between users, generation
//! as a job with the scripted model (progress over SSE, a valid package stored once), hand
//! edits refused when they break YouTube's rules, versions, diffs, restores, exports, scoring,
//! the per-user caps and the `seo` scope.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp};

/// The scripted model that answers both stages with one JSON object: an analysis and a
/// draft whose first title is too long and whose chapters are out of order, so the repair
/// round and the deterministic repair both have work.
const SEO_MODEL: &str = "scripted-seo";

pub(crate) fn seo_reply() -> String {
    json!({
        "summary": "How to start a sourdough starter and bake a first loaf.",
        "main_topics": ["starter", "feeding", "baking"],
        "audience": "home bakers",
        "structure": ["intro", "starter", "bake"],
        "titles": [
            {"text": format!("Sourdough bread for beginners {}", "really ".repeat(20)), "strategy": "keyword_first"},
            {"text": "How do you make sourdough bread at home?", "strategy": "question"},
            {"text": "7 sourdough mistakes every beginner makes", "strategy": "listicle"},
            {"text": "Bake better sourdough bread this weekend", "strategy": "benefit"},
            {"text": "The one sourdough trick nobody told you", "strategy": "curiosity"}
        ],
        "hook": "Sourdough bread at home, from starter to loaf, explained step by step.",
        "body": "We feed a starter, mix the dough, shape it and bake it in a Dutch oven.",
        "tags": ["sourdough bread", "sourdough starter", "baking", "bread recipe", "how to make sourdough bread at home"],
        "hashtags": ["#sourdough", "#baking", "#bread"],
        "chapters": [
            {"start": "0:40", "title": "Feeding the starter"},
            {"start": 0, "title": "Introduction"},
            {"start": 95, "title": "Baking the loaf"}
        ],
        "thumbnail_texts": ["Sourdough made easy", "First loaf"]
    })
    .to_string()
}

pub(crate) const SRT: &str = "1\n00:00:00,000 --> 00:00:12,000\nWelcome! Today we bake sourdough bread.\n\n\
2\n00:00:12,000 --> 00:00:41,500\nFirst, the starter: flour and water.\n\n\
3\n00:00:41,500 --> 00:01:30,000\nFeed it every day for a week.\n\n\
4\n00:01:30,000 --> 00:03:00,000\nNow we bake the loaf in a hot Dutch oven.\n";

pub(crate) async fn studio() -> TestApp {
    TestApp::start_with(|config| {
        let mut seo = confab_core::config::ProviderConfig::new(
            "scripted-seo",
            confab_core::config::ProviderKind::Scripted,
            &[SEO_MODEL],
        );
        seo.reply = Some(seo_reply());
        config.inference.providers.push(seo);
        config.seo.model = Some(SEO_MODEL.into());
        config.bus.job_poll_ms = 20;
    })
    .await
}

/// Registers `email` and signs in.
pub(crate) async fn user(app: &TestApp, email: &str) -> String {
    app.register(email).await;
    app.login(email, PASSWORD).await.0
}

pub(crate) async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post("/api/v1/seo/projects", Some(token), body).await;
    assert_eq!(response.status, 201, "{}", response.text);
    response.body
}

pub(crate) fn sourdough() -> Value {
    json!({
        "topic": "Sourdough bread for beginners",
        "primary_keyword": "sourdough bread",
        "secondary_keywords": ["sourdough starter", "bread recipe"],
        "language": "en",
        "tone": "friendly",
        "links": [{"label": "Recipe", "url": "https://example.com/recipe"}],
        "call_to_action": "Subscribe for more baking.",
        "duration_secs": 180,
        "transcript": SRT
    })
}

/// Starts a generation and waits until it has ended; the generation as it ended.
pub(crate) async fn generate(app: &TestApp, token: &str, id: &str) -> Value {
    let path = format!("/api/v1/seo/projects/{id}/generation");
    let started = app.post(&path, Some(token), json!({})).await;
    assert_eq!(started.status, 202, "{}", started.text);
    // The local model takes a while on a small machine; the scripted one a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    while std::time::Instant::now() < deadline {
        let now = app.get(&path, Some(token)).await;
        let state = now.body["state"].as_str().unwrap_or_default().to_owned();
        if state != "queued" && state != "running" {
            return now.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the generation did not end");
}

#[tokio::test]
async fn a_project_from_an_srt_transcript_gets_a_valid_scored_package() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let project = create(&app, &token, sourdough()).await;
    assert_eq!(project["has_transcript"], true);
    assert_eq!(project["language"], "en");
    let id = project["id"].as_str().unwrap();

    let transcript = app
        .get(
            &format!("/api/v1/seo/projects/{id}/transcript"),
            Some(&token),
        )
        .await;
    assert_eq!(transcript.body["format"], "srt");
    assert_eq!(transcript.body["segments"].as_array().unwrap().len(), 4);
    assert_eq!(transcript.body["segments"][2]["start_ms"], 41_500);

    let generation = generate(&app, &token, id).await;
    assert_eq!(generation["state"], "succeeded", "{generation}");
    assert_eq!(generation["version"], 1);

    let version = app
        .get(
            &format!("/api/v1/seo/projects/{id}/versions/1"),
            Some(&token),
        )
        .await;
    assert_eq!(version.status, 200, "{}", version.text);
    assert_eq!(version.body["source"], "generated");
    assert_eq!(version.body["model"], SEO_MODEL);
    let package = &version.body["package"];
    let title = package["title"].as_str().unwrap();
    assert!(
        (1..=100).contains(&title.chars().count()),
        "a title YouTube accepts: {title}"
    );
    assert_eq!(package["titles"].as_array().unwrap().len(), 5);
    let description = package["description"].as_str().unwrap();
    assert!(description.len() <= 5_000);
    assert!(!description.contains(['<', '>']));
    // Chapters in order, from 0:00, snapped to the transcript's segment starts (0:40 → 0:41).
    assert!(description.contains("0:00 Introduction"), "{description}");
    assert!(
        description.contains("0:41 Feeding the starter"),
        "{description}"
    );
    assert!(description.contains("#sourdough"), "{description}");
    assert_eq!(package["tags"][0], "sourdough bread");

    // The stored package passes the studio's own check, and its score is the scorer's.
    let report = app
        .post(
            "/api/v1/seo/score",
            Some(&token),
            json!({
                "title": title,
                "description": description,
                "tags": package["tags"],
                "primary_keyword": "sourdough bread",
                "secondary_keywords": ["sourdough starter", "bread recipe"],
                "duration_secs": 180,
                "thumbnail_texts": package["thumbnail_texts"],
            }),
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let errors: Vec<&Value> = report.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(report.body["score"]["total"], version.body["score"]);

    let listed = app.get("/api/v1/seo/projects", Some(&token)).await;
    assert_eq!(listed.body["items"][0]["latest_version"], 1);
    assert_eq!(
        listed.body["items"][0]["latest_score"],
        version.body["score"]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_generation_feed_reports_progress_then_the_stored_version() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let project = create(&app, &token, sourdough()).await;
    let id = project["id"].as_str().unwrap().to_owned();
    let feed = app
        .client
        .get(app.url(&format!("/api/v1/seo/projects/{id}/generation/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let started = app
        .post(
            &format!("/api/v1/seo/projects/{id}/generation"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    // The feed ends by itself after `completed`.
    let text = tokio::time::timeout(Duration::from_secs(30), feed.text())
        .await
        .expect("the feed ends after the generation")
        .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"state"), "{text}");
    assert!(names.contains(&"progress"), "{text}");
    assert_eq!(names.last(), Some(&"completed"), "{text}");
    assert!(text.contains("\"version\":1"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn bad_transcripts_and_fields_are_refused_with_what_to_fix() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let mut bad_srt = sourdough();
    bad_srt["transcript"] = json!(
        "1\n00:00:00,000 --> 00:00:05,000\nHello\n\n2\n00:00:05,000 -> 00:00:09,000\nBroken\n"
    );
    let response = app
        .post("/api/v1/seo/projects", Some(&token), bad_srt)
        .await;
    let message = response.assert_error(422, "invalid_transcript");
    assert!(message.contains("line 6"), "{message}");

    let mut unknown_language = sourdough();
    unknown_language["language"] = json!("klingon");
    let response = app
        .post("/api/v1/seo/projects", Some(&token), unknown_language)
        .await;
    let message = response.assert_error(422, "invalid_fields");
    assert!(message.contains("language"), "{message}");

    let response = app
        .post(
            "/api/v1/seo/projects",
            Some(&token),
            json!({"topic": "", "primary_keyword": "x".repeat(101)}),
        )
        .await;
    response.assert_error(422, "invalid_fields");
    assert_eq!(
        response.body["error"]["details"].as_array().unwrap().len(),
        2
    );

    // A 10 MB transcript is refused before it is read.
    let mut huge = sourdough();
    huge["transcript"] = json!("word ".repeat(2_000_000));
    let response = app.post("/api/v1/seo/projects", Some(&token), huge).await;
    response.assert_error(413, "payload_too_large");
    // Just over the transcript cap (but inside the body limit): the studio's own 413.
    let mut over = sourdough();
    over["transcript"] = json!("a".repeat(1024 * 1024 + 1));
    let response = app.post("/api/v1/seo/projects", Some(&token), over).await;
    response.assert_error(413, "transcript_too_large");

    let listed = app.get("/api/v1/seo/projects", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn projects_are_private_searchable_and_archivable() {
    let app = studio().await;
    let ada = user(&app, "ada@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let bread = create(&app, &ada, sourdough()).await;
    let id = bread["id"].as_str().unwrap();
    create(
        &app,
        &ada,
        json!({"topic": "Espresso at home", "primary_keyword": "espresso"}),
    )
    .await;

    for (method, path) in [
        (Method::GET, format!("/api/v1/seo/projects/{id}")),
        (Method::DELETE, format!("/api/v1/seo/projects/{id}")),
        (Method::GET, format!("/api/v1/seo/projects/{id}/versions")),
        (Method::GET, format!("/api/v1/seo/projects/{id}/transcript")),
        (Method::GET, format!("/api/v1/seo/projects/{id}/export")),
    ] {
        let response = app.call(method.clone(), &path, Some(&bob), None).await;
        assert_eq!(response.status, 404, "{method} {path} as another user");
    }
    let response = app
        .post(
            &format!("/api/v1/seo/projects/{id}/generation"),
            Some(&bob),
            json!({}),
        )
        .await;
    response.assert_error(404, "not_found");
    assert_eq!(
        app.get("/api/v1/seo/projects", Some(&bob)).await.body["items"],
        json!([])
    );

    let found = app
        .get("/api/v1/seo/projects?q=SOURDOUGH%20bread", Some(&ada))
        .await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["items"][0]["id"], id);
    let wildcard = app.get("/api/v1/seo/projects?q=%25", Some(&ada)).await;
    assert_eq!(wildcard.body["items"].as_array().unwrap().len(), 0);

    let archived = app
        .call(
            Method::PATCH,
            &format!("/api/v1/seo/projects/{id}"),
            Some(&ada),
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(archived.body["archived"], true);
    let active = app
        .get("/api/v1/seo/projects?archived=false", Some(&ada))
        .await;
    assert_eq!(active.body["items"].as_array().unwrap().len(), 1);
    let page = app.get("/api/v1/seo/projects?limit=1", Some(&ada)).await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app
        .get(
            &format!("/api/v1/seo/projects?limit=1&cursor={cursor}"),
            Some(&ada),
        )
        .await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/seo/projects/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&format!("/api/v1/seo/projects/{id}"), Some(&ada))
            .await
            .status,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn hand_edits_are_validated_versioned_diffed_restored_and_exported() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let project = create(&app, &token, sourdough()).await;
    let id = project["id"].as_str().unwrap();
    let generation = generate(&app, &token, id).await;
    assert_eq!(generation["state"], "succeeded", "{generation}");
    let v1 = app
        .get(
            &format!("/api/v1/seo/projects/{id}/versions/1"),
            Some(&token),
        )
        .await
        .body;

    // A title of 101 characters (multi-byte letters) is refused; nothing is stored.
    let mut package = v1["package"].clone();
    package["title"] = json!("é".repeat(101));
    let refused = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions"),
            Some(&token),
            package.clone(),
        )
        .await;
    let message = refused.assert_error(422, "invalid_package");
    assert!(message.contains("title"), "{message}");
    package["title"] = json!("é".repeat(100));
    let saved = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions"),
            Some(&token),
            package,
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    assert_eq!(saved.body["number"], 2);
    assert_eq!(saved.body["source"], "edited");

    let diff = app
        .get(
            &format!("/api/v1/seo/projects/{id}/diff?from=1&to=2"),
            Some(&token),
        )
        .await;
    assert_eq!(diff.status, 200, "{}", diff.text);
    assert!(diff.text.contains(&"é".repeat(100)), "{}", diff.text);

    let restored = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions/1/restore"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(restored.status, 201, "{}", restored.text);
    assert_eq!(restored.body["number"], 3);
    assert_eq!(restored.body["package"], v1["package"]);
    let versions = app
        .get(&format!("/api/v1/seo/projects/{id}/versions"), Some(&token))
        .await;
    let numbers: Vec<u64> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);

    let text = app
        .get(
            &format!("/api/v1/seo/projects/{id}/export?format=text"),
            Some(&token),
        )
        .await;
    assert_eq!(text.status, 200);
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(text.text.contains(v1["package"]["title"].as_str().unwrap()));
    let json_export = app
        .get(
            &format!("/api/v1/seo/projects/{id}/export?version=2"),
            Some(&token),
        )
        .await;
    assert_eq!(json_export.body["number"], 2);
    let csv = app
        .get(&format!("/api/v1/seo/export.csv?ids={id}"), Some(&token))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // A header and one record, each ended by CRLF (the description's own lines are LF,
    // inside its quoted cell).
    assert_eq!(csv.text.matches("\r\n").count(), 2, "{}", csv.text);
    assert!(csv.text.starts_with("project_id,topic,"));
    app.get("/api/v1/seo/export.csv?ids=not-an-id", Some(&token))
        .await
        .assert_error(400, "invalid_ids");

    let history = app.get("/api/v1/seo/scores?days=30", Some(&token)).await;
    assert_eq!(history.body["points"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn generations_are_capped_per_user_and_per_project() {
    let app = TestApp::start_with(|config| {
        let mut slow = confab_core::config::ProviderConfig::new(
            "scripted-slow",
            confab_core::config::ProviderKind::Scripted,
            &["scripted-slow"],
        );
        slow.reply = Some("{\"titles\": [] } and some more words".into());
        slow.delay_ms = 200;
        config.inference.providers.push(slow);
        config.seo.model = Some("scripted-slow".into());
        config.seo.generations_per_user = 2;
        config.bus.job_poll_ms = 20;
    })
    .await;
    let token = user(&app, "creator@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let project = create(&app, &token, sourdough()).await;
        ids.push(project["id"].as_str().unwrap().to_owned());
    }
    let start = |id: &str| {
        let path = format!("/api/v1/seo/projects/{id}/generation");
        let app = &app;
        let token = token.clone();
        async move { app.post(&path, Some(&token), json!({})).await }
    };
    assert_eq!(start(&ids[0]).await.status, 202);
    start(&ids[0]).await.assert_error(409, "already_generating");
    assert_eq!(start(&ids[1]).await.status, 202);
    let third = start(&ids[2]).await;
    third.assert_error(429, "too_many_generations");
    assert!(third.header("retry-after").is_some());
    app.stop().await;
}

#[tokio::test]
async fn api_keys_need_the_seo_scope() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let key = |scopes: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app
                .post(
                    "/api/v1/auth/api-keys",
                    Some(&token),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(response.status, 201, "{}", response.text);
            response.body["key"].as_str().unwrap().to_owned()
        }
    };
    let chat_only = key(json!(["chat"])).await;
    app.get("/api/v1/seo/projects", Some(&chat_only))
        .await
        .assert_error(403, "insufficient_scope");
    let seo = key(json!(["seo"])).await;
    let response = app
        .post("/api/v1/seo/projects", Some(&seo), sourdough())
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    let listed = app.get("/api/v1/seo/projects", Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn scoring_judges_any_metadata_and_refuses_what_is_too_big_to_judge() {
    let app = studio().await;
    let token = user(&app, "creator@example.com").await;
    let report = app
        .post(
            "/api/v1/seo/score",
            Some(&token),
            json!({
                "title": "x".repeat(101),
                "description": "Intro\n\n0:00 Start\n0:09 Too soon\n",
                "tags": ["Foo Baz"],
                "primary_keyword": "foo"
            }),
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let codes: Vec<&str> = report.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"title_too_long"), "{codes:?}");
    let total = report.body["score"]["total"].as_u64().unwrap();
    assert!(total <= 100);
    let components = report.body["score"]["components"].as_array().unwrap();
    assert_eq!(components.len(), 7);

    app.post(
        "/api/v1/seo/score",
        Some(&token),
        json!({"title": "t", "description": "d".repeat(60_000), "tags": []}),
    )
    .await
    .assert_error(422, "invalid_fields");
    let message = app
        .post(
            "/api/v1/seo/score",
            Some(&token),
            json!({"title": "t", "thumbnail_texts": vec!["Big news"; 101]}),
        )
        .await
        .assert_error(422, "invalid_fields");
    assert!(message.starts_with("thumbnail_texts:"), "{message}");
    app.stop().await;
}
