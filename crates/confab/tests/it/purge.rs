//! Deleting a user across services through durable events (issue 15): the `user.purge` job
//! publishes a purge request, each data-holding service's consumer deletes the user's data
//! and answers, and the account goes once every expected service answered. Each scenario
//! runs on the SQL outbox (SQLite or PostgreSQL by `TEST_BACKEND`) and, when
//! `TEST_NATS_URL` names a server with JetStream, on NATS.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::events::UserPurgeRequested;
use confab_bus::purge::{PurgeCounts, PurgeError, UserData};
use confab_bus::{Envelope, TypedEvent};
use confab_core::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

/// The configuration of one scenario: on NATS (a namespace of its own) or the SQL outbox.
fn configure(nats: Option<&str>) -> impl FnOnce(&mut Config) + use<> {
    let nats = nats.map(str::to_owned);
    move |c: &mut Config| {
        c.bus.job_poll_ms = 20;
        // Heartbeats (which store the job's progress) every second.
        c.bus.job_lease_secs = 3;
        if let Some(url) = nats {
            c.bus.nats_url = Some(url);
            c.bus.nats_namespace = format!("t{}", Uuid::now_v7().simple());
        }
    }
}

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    confab_store::sqlx::query_scalar::<_, i64>(confab_store::sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id.to_owned())
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

/// Registers the admin (the first user) and `email`; returns the admin's token, the user's
/// token and id.
async fn admin_and_user(app: &TestApp, email: &str) -> (String, String, String) {
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let id = app.register(email).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (token, _) = app.login(email, PASSWORD).await;
    (admin, token, id)
}

/// A conversation with one exchange.
async fn conversation(app: &TestApp, token: &str) -> String {
    let created = app
        .post(
            "/api/v1/conversations",
            Some(token),
            json!({"model": SCRIPTED_MODEL}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let sent = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            Some(token),
            json!({"content": "hello"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    id
}

async fn delete(app: &TestApp, admin: &str, user_id: &str) -> String {
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/users/{user_id}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    deleted.body["job_id"].as_str().unwrap().to_owned()
}

/// Polls the job (bounded: 20 s) until `done` says so; returns it.
async fn job_until(app: &TestApp, admin: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let job = app
            .get(&format!("/api/v1/admin/jobs/{id}"), Some(admin))
            .await;
        assert_eq!(job.status, StatusCode::OK, "{}", job.text);
        if done(&job.body) {
            return job.body;
        }
        last = job.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not get there: {last}");
}

fn ended(job: &Value) -> bool {
    ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or_default())
}

/// Deletion completes and removes the user's chat, SEO and files data (and only theirs); a
/// redelivered purge request afterwards deletes nothing more and is answered harmlessly.
async fn purge_removes_chat_and_seo_data(nats: Option<&str>) {
    let app = TestApp::start_with(configure(nats)).await;
    let (admin, bob, bob_id) = admin_and_user(&app, "bob@example.com").await;
    conversation(&app, &bob).await;
    crate::seo::create(&app, &bob, crate::seo::sourdough()).await;
    crate::files::put_raw(&app, &bob, "bob.txt", None, b"bob's words".to_vec()).await;
    // Another user's data stays.
    let alice = app.register("alice@example.com").await;
    let alice_id = alice["user"]["id"].as_str().unwrap().to_owned();
    let (alice_token, _) = app.login("alice@example.com", PASSWORD).await;
    conversation(&app, &alice_token).await;
    crate::seo::create(&app, &alice_token, crate::seo::sourdough()).await;
    crate::files::put_raw(&app, &alice_token, "alice.txt", None, b"alice's".to_vec()).await;

    let job_id = delete(&app, &admin, &bob_id).await;
    let job = job_until(&app, &admin, &job_id, ended).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["account_deleted"], true, "{job}");
    assert_eq!(
        job["result"]["services"],
        json!({
            "chat": {"conversations": 1},
            "files": {"files": 1, "uploads": 0},
            "seo": {"projects": 1},
        }),
        "{job}"
    );
    for (table, column) in [
        ("conversations", "user_id"),
        ("messages", "user_id"),
        ("seo_projects", "owner_id"),
        ("files", "owner"),
        ("files_usage", "owner"),
        ("users", "id"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        assert_eq!(
            count(&app, &sql, &bob_id).await,
            0,
            "{table} holds bob's rows"
        );
        assert!(
            count(&app, &sql, &alice_id).await > 0,
            "{table} lost alice's rows"
        );
    }
    let finished = "SELECT COUNT(*) FROM auth_purges WHERE user_id = $1 \
                    AND published_at IS NOT NULL AND finished_at IS NOT NULL";
    assert_eq!(count(&app, finished, &bob_id).await, 1);

    // The request delivered again (as after a crash before its acknowledgement): each
    // service handles it, deletes nothing and answers with zero counts.
    let answers = "SELECT COUNT(*) FROM auth_purge_acks WHERE user_id = $1";
    assert_eq!(count(&app, answers, &bob_id).await, 3);
    let request = UserPurgeRequested {
        user_id: bob_id.parse().unwrap(),
        requested_at: 1,
    };
    assert!(request.topic().starts_with("purge.requested."));
    app.durable
        .publish(Envelope::typed(&request))
        .await
        .unwrap();
    let mut answered = 0;
    for _ in 0..400 {
        answered = count(&app, answers, &bob_id).await;
        if answered >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, 6, "every service answered the repeat");
    let totals = app
        .auth
        .purge_answers(bob_id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(totals["chat"]["conversations"], 1, "{totals:?}");
    assert_eq!(totals["seo"]["projects"], 1, "{totals:?}");
    for table in ["conversations", "seo_projects"] {
        let column = if table == "conversations" {
            "user_id"
        } else {
            "owner_id"
        };
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        assert_eq!(
            count(&app, &sql, &alice_id).await,
            1,
            "{table}: alice's row"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn purge_removes_chat_and_seo_data_over_the_sql_outbox() {
    purge_removes_chat_and_seo_data(None).await;
}

#[tokio::test]
async fn purge_removes_chat_and_seo_data_over_nats() {
    let Ok(url) = std::env::var("TEST_NATS_URL") else {
        eprintln!("TEST_NATS_URL is not set: skipping the NATS variant");
        return;
    };
    purge_removes_chat_and_seo_data(Some(&url)).await;
}

/// A data-holding service this binary does not have yet (a later `video` service), played
/// by the test: it holds nothing and answers with its count.
struct VideoService;

#[async_trait::async_trait]
impl UserData for VideoService {
    async fn purge_user_data(&self, _user_id: Uuid) -> Result<PurgeCounts, PurgeError> {
        Ok([("videos".to_owned(), 0)].into())
    }
}

/// A participant that is down when the user is deleted (its consumer not started) makes
/// the job wait, its progress naming who is missing; once it starts, the job finishes. Two
/// replicas of the chat service (two consumers of `chat.user-purge`) run meanwhile, and the
/// chat count is still exact.
async fn a_missing_participant_makes_the_purge_wait(nats: Option<&str>) {
    let tweak = configure(nats);
    let app = TestApp::start_with(move |c| {
        tweak(c);
        c.services.purge_participants = Some(vec![
            "chat".to_owned(),
            "seo".to_owned(),
            "files".to_owned(),
            "video".to_owned(),
        ]);
    })
    .await;
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    // The second chat replica's consumer.
    confab::purge::start_participant(
        "chat",
        app.chat.clone(),
        app.durable.clone(),
        &tasks,
        stop.clone(),
    );
    let (admin, bob, bob_id) = admin_and_user(&app, "bob@example.com").await;
    conversation(&app, &bob).await;
    conversation(&app, &bob).await;

    let job_id = delete(&app, &admin, &bob_id).await;
    let waiting = job_until(&app, &admin, &job_id, |job| {
        job["progress_message"].as_str().is_some_and(|m| {
            m.contains("waiting for video") && m.contains("answered: chat, seo, files")
        }) || ended(job)
    })
    .await;
    assert_eq!(waiting["state"], "running", "{waiting}");
    let sql = "SELECT COUNT(*) FROM users WHERE id = $1";
    assert_eq!(count(&app, sql, &bob_id).await, 1, "the account waits");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM conversations WHERE user_id = $1",
            &bob_id
        )
        .await,
        0,
        "chat did its part"
    );

    confab::purge::start_participant(
        "video",
        Arc::new(VideoService),
        app.durable.clone(),
        &tasks,
        stop.clone(),
    );
    let job = job_until(&app, &admin, &job_id, ended).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["result"]["services"],
        json!({
            "chat": {"conversations": 2},
            "files": {"files": 0, "uploads": 0},
            "seo": {"projects": 0},
            "video": {"videos": 0},
        }),
        "{job}"
    );
    assert_eq!(count(&app, sql, &bob_id).await, 0, "the account went last");
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_participant_makes_the_purge_wait_over_the_sql_outbox() {
    a_missing_participant_makes_the_purge_wait(None).await;
}

#[tokio::test]
async fn a_missing_participant_makes_the_purge_wait_over_nats() {
    let Ok(url) = std::env::var("TEST_NATS_URL") else {
        eprintln!("TEST_NATS_URL is not set: skipping the NATS variant");
        return;
    };
    a_missing_participant_makes_the_purge_wait(Some(&url)).await;
}
