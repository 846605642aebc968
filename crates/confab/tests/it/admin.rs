//! The admin API over a real socket: user administration (lock, unlock, password reset,
//! deletion with every piece of data through a durable job) and background jobs (list,
//! cancel, retry, live events); with the helpers `admin_settings` shares.

use std::time::Duration;

use confab_bus::{JobQueue, NewJob, SqlJobQueue};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    confab_store::sqlx::query_scalar::<_, i64>(confab_store::sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id.to_owned())
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

pub(crate) async fn audited(app: &TestApp, action: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM audit_log WHERE action = $1",
        action,
    )
    .await
}

/// Polls a job until it ends.
async fn finished_job(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        let job = app
            .get(&format!("/api/v1/admin/jobs/{id}"), Some(token))
            .await;
        assert_eq!(job.status, StatusCode::OK, "{}", job.text);
        if ["succeeded", "failed", "cancelled"].contains(&job.body["state"].as_str().unwrap()) {
            return job.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not end");
}

pub(crate) async fn chat(app: &TestApp, token: &str, model: &str) -> crate::common::Response {
    app.post(
        "/v1/chat/completions",
        Some(token),
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

#[tokio::test]
async fn admins_lock_unlock_reset_passwords_and_delete_users_with_their_data() {
    let app = TestApp::start().await;
    let admin_id = app.register("admin@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let mut account_events = app.events.subscribe(confab_bus::events::USERS_TOPIC);
    let bob_id = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;

    // Locking: sessions stop at once, sign-in is refused, until unlocked.
    let locked = app
        .post(
            &format!("/api/v1/auth/users/{bob_id}/lock"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    assert_eq!(locked.body["status"], "disabled");
    app.get("/api/v1/auth/me", Some(&bob))
        .await
        .assert_error(401, "token_revoked");
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "bob@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(403, "account_disabled");
    app.post(
        &format!("/api/v1/auth/users/{admin_id}/lock"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "cannot_lock_self");
    let unlocked = app
        .post(
            &format!("/api/v1/auth/users/{bob_id}/unlock"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(unlocked.body["status"], "active", "{}", unlocked.text);
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    assert_eq!(audited(&app, "auth.user_locked").await, 1);
    assert_eq!(audited(&app, "auth.user_unlocked").await, 1);

    // A password reset: a temporary password that only lets bob choose a new one; bob's API
    // keys are revoked with his sessions (whoever knew the password may have made them).
    let old_key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&bob),
            json!({"name": "before the reset", "scopes": ["chat"]}),
        )
        .await;
    assert_eq!(old_key.status, StatusCode::CREATED, "{}", old_key.text);
    let old_key = old_key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&old_key)).await.status,
        StatusCode::OK
    );
    let reset = app
        .post(
            &format!("/api/v1/auth/users/{bob_id}/password-reset"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    let temporary = reset.body["temporary_password"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/api/v1/auth/me", Some(&bob))
        .await
        .assert_error(401, "token_revoked");
    app.get("/api/v1/auth/me", Some(&old_key))
        .await
        .assert_error(401, "token_revoked");
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "bob@example.com", "password": PASSWORD}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    let message = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bob@example.com", "password": temporary}),
        )
        .await
        .assert_error(403, "password_change_required");
    assert!(message.contains("/api/v1/auth/password/reset"), "{message}");
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"email": "bob@example.com", "password": temporary, "new_password": "short"}),
    )
    .await
    .assert_error(422, "weak_password");
    let chosen = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"email": "bob@example.com", "password": temporary, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.text);
    assert!(chosen.body["access_token"].is_string());
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"email": "bob@example.com", "password": "a brand new passphrase", "new_password": "another new passphrase"}),
    )
    .await
    .assert_error(409, "no_reset_pending");
    let (bob, _) = app.login("bob@example.com", "a brand new passphrase").await;
    assert_eq!(audited(&app, "auth.password_reset").await, 1);
    assert_eq!(audited(&app, "auth.password_reset_completed").await, 1);

    // Bob's data: a conversation with an answer, a preset, an API key.
    let conversation = app
        .post(
            "/api/v1/conversations",
            Some(&bob),
            json!({"model": SCRIPTED_MODEL}),
        )
        .await;
    let cid = conversation.body["id"].as_str().unwrap().to_owned();
    let sent = app
        .post(
            &format!("/api/v1/conversations/{cid}/messages"),
            Some(&bob),
            json!({"content": "remember me"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    app.post(
        "/api/v1/presets",
        Some(&bob),
        json!({"name": "p", "system_prompt": "be brief"}),
    )
    .await;
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&bob),
            json!({"name": "k", "scopes": ["chat"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert!(
        count(
            &app,
            "SELECT COUNT(*) FROM messages WHERE user_id = $1",
            &bob_id
        )
        .await
            >= 2
    );

    // Deleting: refused for oneself and for nobody; for bob, a job removes everything.
    app.call(
        Method::DELETE,
        &format!("/api/v1/auth/users/{admin_id}"),
        Some(&admin),
        None,
    )
    .await
    .assert_error(409, "cannot_delete_self");
    app.call(
        Method::DELETE,
        &format!("/api/v1/auth/users/{}", uuid::Uuid::now_v7()),
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/users/{bob_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.text);
    let job_id = deleted.body["job_id"].as_str().unwrap().to_owned();
    let job = finished_job(&app, &admin, &job_id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "user.purge");
    assert_eq!(
        job["result"]["services"]["chat"]["conversations"], 1,
        "{job}"
    );
    assert_eq!(job["result"]["services"]["seo"]["projects"], 0, "{job}");
    assert_eq!(job["result"]["account_deleted"], true, "{job}");
    for (table, column) in [
        ("conversations", "user_id"),
        ("messages", "user_id"),
        ("chat_presets", "user_id"),
        ("api_keys", "user_id"),
        ("sessions", "user_id"),
        ("users", "id"),
    ] {
        let left = count(
            &app,
            &format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"),
            &bob_id,
        )
        .await;
        assert_eq!(left, 0, "{table} still holds bob's rows");
    }
    for token in [&bob, &key] {
        let refused = app.get("/api/v1/conversations", Some(token)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    }
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "bob@example.com", "password": "a brand new passphrase"}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    assert_eq!(audited(&app, "auth.user_deleted").await, 1);
    // Typed account events: bob's registration, then his deletion.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let received = tokio::time::timeout(Duration::from_secs(5), account_events.next())
            .await
            .expect("account events")
            .unwrap();
        if let confab_bus::Received::Event(envelope) = received {
            seen.push(envelope);
        }
    }
    let registered = seen[0]
        .decode::<confab_bus::events::UserRegistered>()
        .unwrap();
    assert_eq!(registered.user_id.to_string(), bob_id);
    assert_eq!(registered.email, "bob@example.com");
    let gone = seen[1].decode::<confab_bus::events::UserDeleted>().unwrap();
    assert_eq!(gone.user_id.to_string(), bob_id);
    // Bob's email is free again.
    app.register("bob@example.com").await;
    app.stop().await;
}

#[tokio::test]
async fn admins_list_cancel_and_retry_background_jobs_and_follow_them_live() {
    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    app.register("eve@example.com").await;
    let (eve, _) = app.login("eve@example.com", PASSWORD).await;
    // Jobs of a kind no worker here handles stay queued: the admin API's material.
    let queue = SqlJobQueue::new(app.db.clone());
    let mut ids = Vec::new();
    for i in 0..3 {
        let job = queue
            .enqueue(NewJob::new("test.parked", json!({"n": i})))
            .await
            .unwrap();
        ids.push(job.id.to_string());
    }
    let listed = app
        .get("/api/v1/admin/jobs?kind=test.parked&limit=2", Some(&admin))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[2], "newest first");
    assert_eq!(items[0]["state"], "queued");
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/api/v1/admin/jobs?kind=test.parked&limit=2&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["items"][0]["id"], ids[0]);
    assert!(rest.body["next_cursor"].is_null());
    app.get("/api/v1/admin/jobs?state=sleeping", Some(&admin))
        .await
        .assert_error(400, "invalid_state");
    app.get("/api/v1/admin/jobs", Some(&eve))
        .await
        .assert_error(403, "forbidden");

    // Live: an admin following the feed sees the cancellation.
    let feed = app
        .client
        .get(app.url("/api/v1/admin/jobs/events"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    let mut feed = feed.bytes_stream();
    let cancelled = app
        .post(
            &format!("/api/v1/admin/jobs/{}/cancel", ids[1]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["state"], "cancelled");
    let mut seen = String::new();
    while !seen.contains(&ids[1]) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), feed.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: job.updated"), "{seen}");
    assert!(seen.contains("\"cancelled\""), "{seen}");

    app.post(
        &format!("/api/v1/admin/jobs/{}/cancel", ids[1]),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "job_state");
    app.post(
        &format!("/api/v1/admin/jobs/{}/retry", ids[0]),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "job_state");
    let retried = app
        .post(
            &format!("/api/v1/admin/jobs/{}/retry", ids[1]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.body["state"], "queued");
    assert_eq!(retried.body["attempts"], 0);
    app.post(
        &format!("/api/v1/admin/jobs/{}/retry", uuid::Uuid::now_v7()),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(audited(&app, "admin.job_cancelled").await, 1);
    assert_eq!(audited(&app, "admin.job_retried").await, 1);

    // Titles are jobs too: the first exchange of an untitled conversation queues one.
    let conversation = app
        .post(
            "/api/v1/conversations",
            Some(&eve),
            json!({"model": SCRIPTED_MODEL}),
        )
        .await;
    let cid = conversation.body["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/conversations/{cid}/messages"),
        Some(&eve),
        json!({"content": "name this"}),
    )
    .await;
    let mut title_job = Value::Null;
    for _ in 0..100 {
        let jobs = app
            .get(
                "/api/v1/admin/jobs?kind=chat.title&state=succeeded",
                Some(&admin),
            )
            .await;
        if let Some(job) = jobs.body["items"].as_array().and_then(|a| a.first()) {
            title_job = job.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(title_job["payload"]["conversation_id"], cid, "{title_job}");
    let conversation = app
        .get(&format!("/api/v1/conversations/{cid}"), Some(&eve))
        .await;
    assert_eq!(
        conversation.body["title"], title_job["result"]["title"],
        "{title_job}"
    );
    app.stop().await;
}
