//! `database.read_url` against a real streaming replica of the test PostgreSQL server
//! (`pg_basebackup -R`, started by scripts/test.sh): the listings that tolerate lag are read
//! from the replica — its replay paused, they do not show what was just written, while the
//! writes and the reads that must see them go to the primary —; with the replica stopped the
//! primary serves them and readiness holds; started again, the replica gets them back.
//! Runs on PostgreSQL when the test script started the replica; skipped otherwise.

use std::time::Duration;

use confab_core::config::Secret;
use confab_testkit::PgReplica;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

/// A metric's value in `/metrics` (the sample without labels).
async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// Waits (at most 20 s) until `confab_db_replica_up` reads `up`.
async fn replica_up_is(app: &TestApp, up: bool) {
    let want = if up { 1.0 } else { 0.0 };
    for _ in 0..400 {
        if metric(app, "confab_db_replica_up").await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("confab_db_replica_up did not become {want}");
}

/// The ids of the user's conversations, as the listing gives them.
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let response = app.get("/api/v1/conversations", Some(token)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The conversations a search for `word` finds by title.
async fn found(app: &TestApp, token: &str, word: &str) -> Vec<String> {
    let response = app
        .get(&format!("/api/v1/search?q={word}"), Some(token))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(app: &TestApp, token: &str, title: &str) -> String {
    let created = app
        .post(
            "/api/v1/conversations",
            Some(token),
            json!({"title": title}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body["id"].as_str().unwrap().to_owned()
}

/// The newest entry of the admin's audit listing.
async fn newest_audit_seq(app: &TestApp, admin: &str) -> i64 {
    let response = app.get("/api/v1/admin/audit?limit=1", Some(admin)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["items"][0]["seq"].as_i64().unwrap()
}

/// The requests the admin's usage listing counts.
async fn usage_requests(app: &TestApp, admin: &str) -> i64 {
    let response = app
        .get("/api/v1/admin/usage?group_by=user", Some(admin))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["totals"]["requests"].as_i64().unwrap()
}

/// A count read from the primary itself, not through Confab.
async fn on_primary(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.db.writer())
        .await
        .unwrap()
}

/// Polls the primary until `sql` answers more than `than`.
async fn grows_on_primary(app: &TestApp, sql: &'static str, than: i64) {
    for _ in 0..400 {
        if on_primary(app, sql).await > than {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{sql}` stayed at {than} on the primary");
}

const LOGINS: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_log WHERE action = 'auth.login'";
const REQUESTS: &str = "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM usage_daily";

#[tokio::test]
async fn lagging_reads_go_to_the_replica_and_fall_back_to_the_primary() {
    let Some(replica) = PgReplica::from_env() else {
        eprintln!(
            "skipped: TEST_BACKEND=postgres with TEST_POSTGRES_REPLICA_URL (scripts/test.sh) needed"
        );
        return;
    };
    let app = TestApp::start_with(|c| {
        let primary = c.database.url.as_ref().unwrap().expose().to_owned();
        c.database.read_url = Some(Secret::new(replica.url_of(&primary)));
    })
    .await;
    let admin = app.register("root@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.register("ada@example.com").await;
    let (ada, _) = app.login("ada@example.com", PASSWORD).await;
    let before = create(&app, &ada, "Tides of Lisbon").await;
    // The test database was created a moment ago: the replica may not have had it at start.
    replica.catch_up().await.unwrap();
    replica_up_is(&app, true).await;
    let no_fallbacks = metric(&app, "confab_db_replica_fallbacks_total").await;

    // The split: replay paused, the replica shows the data as it was.
    replica.pause_replay().await.unwrap();
    let paused = create(&app, &ada, "Zanzibar spice notes").await;
    // A write went to the primary (the replica is read-only), and so does the read that must
    // see it right away.
    let opened = app
        .get(&format!("/api/v1/conversations/{paused}"), Some(&ada))
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    assert_eq!(listed(&app, &ada).await, vec![before.clone()]);
    assert!(found(&app, &ada, "zanzibar").await.is_empty());
    assert_eq!(found(&app, &ada, "lisbon").await, vec![before.clone()]);
    // Audit: a sign-in is recorded on the primary, not yet listed.
    let seq = newest_audit_seq(&app, &admin).await;
    let logins = on_primary(&app, LOGINS).await;
    app.login("ada@example.com", PASSWORD).await;
    grows_on_primary(&app, LOGINS, logins).await;
    assert_eq!(newest_audit_seq(&app, &admin).await, seq);
    // Usage: a completion is folded into the read model on the primary, not yet listed.
    let answer = app
        .post(
            "/v1/chat/completions",
            Some(&ada),
            json!({"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    grows_on_primary(&app, REQUESTS, 0).await;
    assert_eq!(usage_requests(&app, &admin).await, 0);
    // All of it from the replica: nothing fell back.
    assert_eq!(
        metric(&app, "confab_db_replica_fallbacks_total").await,
        no_fallbacks
    );

    // Replay resumed, the replica catches up and the listings show everything.
    replica.resume_replay().await.unwrap();
    replica.catch_up().await.unwrap();
    assert_eq!(
        listed(&app, &ada).await,
        vec![paused.clone(), before.clone()]
    );
    assert_eq!(found(&app, &ada, "zanzibar").await, vec![paused.clone()]);
    assert!(newest_audit_seq(&app, &admin).await > seq);
    // The usage listing follows within a bounded wait (one CI run read 0 right after the
    // replay had reached the primary's position).
    let mut requests = usage_requests(&app, &admin).await;
    for _ in 0..100 {
        if requests == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        requests = usage_requests(&app, &admin).await;
    }
    assert_eq!(requests, 1);

    // The replica stopped: the primary serves the listings, and readiness holds.
    replica.stop().await.unwrap();
    let while_down = create(&app, &ada, "Written while the replica is down").await;
    assert_eq!(
        listed(&app, &ada).await,
        vec![while_down.clone(), paused.clone(), before.clone()]
    );
    assert_eq!(found(&app, &ada, "zanzibar").await, vec![paused.clone()]);
    assert_eq!(usage_requests(&app, &admin).await, 1);
    replica_up_is(&app, false).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let fallbacks = metric(&app, "confab_db_replica_fallbacks_total")
        .await
        .unwrap();
    assert!(fallbacks >= 3.0, "{fallbacks} fallbacks");

    // Started again, the replica gets the reads back.
    replica.start().await.unwrap();
    replica_up_is(&app, true).await;
    replica.catch_up().await.unwrap();
    replica.pause_replay().await.unwrap();
    let after = create(&app, &ada, "Written after the replica came back").await;
    let listing = listed(&app, &ada).await;
    replica.resume_replay().await.unwrap();
    assert_eq!(listing, vec![while_down, paused, before]);
    assert!(!listing.contains(&after));
    assert_eq!(
        metric(&app, "confab_db_replica_fallbacks_total").await,
        Some(fallbacks)
    );
    app.stop().await;
}
