//! Usage statistics end to end: chat completions are recorded by the inference service,
//! published as durable `usage.batch` events, folded into the admin service's read model by
//! its consumer, and read back through `/api/v1/admin/usage`, its CSV export and
//! `/api/v1/usage`. The projection runs in the background, so tests poll (bounded) until it
//! caught up.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp, test_config};

fn ask(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// Polls `path` as `token` until `done` holds for the body (at most 20 s).
async fn poll(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let response = app.get(path, Some(token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        if done(&response.body) {
            return response.body;
        }
        last = response.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} did not catch up: {last}");
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}: {report}"))
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me = app.get("/api/v1/auth/me", Some(token)).await;
    me.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn usage_statistics_follow_the_requests() {
    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    app.register("bob@example.com").await;
    app.register("carol@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let (carol, _) = app.login("carol@example.com", PASSWORD).await;
    let bob_id = user_id(&app, &bob).await;
    let carol_id = user_id(&app, &carol).await;

    // Bob: three answers. Carol: two answers and one failure (an unknown model).
    for _ in 0..3 {
        let r = app
            .post(
                "/v1/chat/completions",
                Some(&bob),
                ask(SCRIPTED_MODEL, "one two three"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    for _ in 0..2 {
        let r = app
            .post(
                "/v1/chat/completions",
                Some(&carol),
                ask(SCRIPTED_MODEL, "hello"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let failed = app
        .post(
            "/v1/chat/completions",
            Some(&carol),
            ask("missing", "hello"),
        )
        .await;
    assert_eq!(failed.status, StatusCode::NOT_FOUND, "{}", failed.text);

    let by_user = poll(&app, "/api/v1/admin/usage?group_by=user", &admin, |b| {
        b["totals"]["requests"] == 6
    })
    .await;
    assert_eq!(by_user["group_by"], "user");
    let bob_row = row(&by_user, &bob_id);
    // Prompt "one two three" is 3 tokens; "You said: one two three" 5.
    assert_eq!(bob_row["requests"], 3);
    assert_eq!(bob_row["errors"], 0);
    assert_eq!(bob_row["prompt_tokens"], 9);
    assert_eq!(bob_row["completion_tokens"], 15);
    assert_eq!(bob_row["tokens"], 24);
    let carol_row = row(&by_user, &carol_id);
    assert_eq!(carol_row["requests"], 3);
    assert_eq!(carol_row["errors"], 1);
    assert_eq!(carol_row["prompt_tokens"], 2);
    assert_eq!(carol_row["completion_tokens"], 6);
    for r in by_user["rows"].as_array().unwrap() {
        let p50 = r["latency_p50_ms"].as_i64().expect("p50");
        let p95 = r["latency_p95_ms"].as_i64().expect("p95");
        assert!(0 <= p50 && p50 <= p95, "{r}");
        assert!(r["latency_avg_ms"].is_i64(), "{r}");
    }
    assert_eq!(by_user["totals"]["errors"], 1);
    // The series has every day of the default range (30 days up to today), today last.
    let series = by_user["series"].as_array().unwrap();
    assert_eq!(series.len(), 30);
    let today = &series[29];
    assert_eq!(today["day"], by_user["to"]);
    assert_eq!(
        (today["requests"].clone(), today["tokens"].clone()),
        (json!(6), json!(32))
    );
    assert!(series[..29].iter().all(|p| p["requests"] == 0));

    let by_model = app
        .get("/api/v1/admin/usage?group_by=model", Some(&admin))
        .await
        .body;
    let scripted = row(&by_model, SCRIPTED_MODEL);
    assert_eq!(
        (scripted["requests"].clone(), scripted["errors"].clone()),
        (json!(5), json!(0))
    );
    // A model name that names nothing is counted as `unknown`: request bodies choose names.
    let missing = row(&by_model, "unknown");
    assert_eq!(
        (missing["requests"].clone(), missing["errors"].clone()),
        (json!(1), json!(1))
    );
    // Most requests first.
    assert_eq!(by_model["rows"][0]["key"], SCRIPTED_MODEL);

    let day = today["day"].as_str().unwrap();
    let by_day = app
        .get(
            &format!("/api/v1/admin/usage?group_by=day&from={day}&to={day}&user={carol_id}"),
            Some(&admin),
        )
        .await
        .body;
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1, "{by_day}");
    assert_eq!(row(&by_day, day)["requests"], 3);
    assert_eq!(by_day["series"].as_array().unwrap().len(), 1);

    // Each user sees their own usage only, by model.
    let mine = app.get("/api/v1/usage", Some(&bob)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.body["totals"]["requests"], 3);
    assert_eq!(mine.body["rows"].as_array().unwrap().len(), 1);
    assert_eq!(row(&mine.body, SCRIPTED_MODEL)["completion_tokens"], 15);
    let carols = app.get("/api/v1/usage", Some(&carol)).await.body;
    assert_eq!(carols["totals"]["requests"], 3);
    assert_eq!(row(&carols, "unknown")["errors"], 1);

    // The admin routes are the admin's.
    app.get("/api/v1/admin/usage", Some(&bob))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/admin/usage/export", Some(&bob))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/admin/usage", None)
        .await
        .assert_error(401, "unauthorized");
    app.get("/api/v1/usage", None)
        .await
        .assert_error(401, "unauthorized");

    // CSV: a header, then one row per day, user and model.
    let csv = app
        .client
        .get(app.url("/api/v1/admin/usage/export?format=csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "day,user_id,model,requests,errors,prompt_tokens,completion_tokens,latency_avg_ms,latency_p50_ms,latency_p95_ms"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let bob_line = lines
        .iter()
        .find(|l| l.contains(&bob_id))
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    assert_eq!(
        &bob_line[..7],
        [day, &bob_id, SCRIPTED_MODEL, "3", "0", "9", "15"]
    );
    assert!(bob_line[8].parse::<i64>().is_ok(), "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{day},{carol_id},unknown,1,1,")))
    );
    // One user's rows only.
    let carol_csv = app
        .client
        .get(app.url(&format!("/api/v1/admin/usage/export?user={carol_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(carol_csv.lines().count(), 3, "{carol_csv}");

    // Bad parameters: 422 with a code per mistake.
    for (path, code) in [
        ("/api/v1/admin/usage?group_by=week", "invalid_group_by"),
        ("/api/v1/admin/usage?from=2026-13-01", "invalid_date"),
        ("/api/v1/admin/usage?to=yesterday", "invalid_date"),
        (
            "/api/v1/admin/usage?from=2026-03-02&to=2026-03-01",
            "invalid_range",
        ),
        (
            "/api/v1/admin/usage?from=2025-01-01&to=2026-01-02",
            "invalid_range",
        ),
        ("/api/v1/admin/usage?user=bob", "invalid_user"),
        ("/api/v1/admin/usage/export?format=xlsx", "invalid_format"),
        ("/api/v1/admin/usage/export?from=2026-02-30", "invalid_date"),
        (
            "/api/v1/admin/usage/export?from=2026-03-02&to=2026-03-01",
            "invalid_range",
        ),
    ] {
        app.get(path, Some(&admin)).await.assert_error(422, code);
    }
    app.get("/api/v1/usage?from=2026-1-1", Some(&bob))
        .await
        .assert_error(422, "invalid_date");
    app.get("/api/v1/usage?from=2020-01-01&to=2026-01-01", Some(&bob))
        .await
        .assert_error(422, "invalid_range");
    app.stop().await;
}

/// Usage rows whose events were never published (written before events existed, or lost to a
/// crash before they were marked published) are published when the app starts, and counted once however
/// often they are published and delivered.
#[tokio::test]
async fn usage_from_before_the_events_is_counted_once() {
    let (config, test_db) = test_config().await;
    let db = confab_store::Db::connect(&config.database_url(), &config.database)
        .await
        .unwrap();
    confab::app::migrate(&db).await.unwrap();
    let user = uuid::Uuid::now_v7().to_string();
    let yesterday = confab_core::now_ms() - 24 * 3600 * 1000;
    let day = confab_inference::usage::day_of(yesterday);
    for (i, status) in ["ok", "upstream_error"].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO inference_usage (id, at, day, user_id, api_key_id, model, backend, \
             prompt_tokens, completion_tokens, ttft_ms, latency_ms, status, cached) \
             VALUES ($1, $2, $3, $4, NULL, 'old-model', 'old:backend', 10, 20, 5, $5, $6, 0)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(yesterday + i64::try_from(i).unwrap())
        .bind(&day)
        .bind(&user)
        .bind(100 * (i64::try_from(i).unwrap() + 1))
        .bind(status)
        .execute(db.pool())
        .await
        .unwrap();
    }
    // Unpublished: in the outbox (where migration 0010 put the rows of earlier versions whose
    // events were not yet published).
    sqlx::query("INSERT INTO inference_usage_outbox (id, at) SELECT id, at FROM inference_usage")
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;

    let app = confab::app::build(&config).await.unwrap();
    let app = TestApp::serve(app, config.clone(), test_db).await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let path = format!("/api/v1/admin/usage?group_by=model&from={day}");
    let report = poll(&app, &path, &admin, |b| b["totals"]["requests"] == 2).await;
    let old = row(&report, "old-model");
    assert_eq!(
        (old["errors"].clone(), old["prompt_tokens"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(old["latency_avg_ms"], 150);

    // As if the process had died after publishing but before marking: after the restart
    // every row is published again. Then one new request, whose event comes after the repeats.
    sqlx::query("INSERT INTO inference_usage_outbox (id, at) SELECT id, at FROM inference_usage")
        .execute(app.db.pool())
        .await
        .unwrap();
    let app = app.restart(&config).await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let r = app
        .post(
            "/v1/chat/completions",
            Some(&admin),
            ask(SCRIPTED_MODEL, "again"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let report = poll(&app, &path, &admin, |b| {
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == SCRIPTED_MODEL)
    })
    .await;
    assert_eq!(report["totals"]["requests"], 3, "{report}");
    assert_eq!(row(&report, "old-model")["requests"], 2);
    let unpublished: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inference_usage_outbox")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(unpublished, 0);
    app.stop().await;
}
