//! Runtime settings over a real socket: validated, audited and applied without a restart;
//! shared by replicas over NATS with their jobs and events; and revocations published only
//! after the caches are cleared.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{audited, chat};
use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp};

#[tokio::test]
async fn runtime_settings_are_validated_audited_and_applied_without_a_restart() {
    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    app.register("carl@example.com").await;
    let (carl, _) = app.login("carl@example.com", PASSWORD).await;

    let settings = app.get("/api/v1/admin/settings", Some(&admin)).await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text);
    assert_eq!(settings.body["version"], 0);
    assert_eq!(settings.body["settings"]["registration"], "open");

    // Every problem is named; nothing changes.
    let refused = app
        .call(
            Method::PATCH,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"default_model": "no-such-model", "user_models": ["a*b"], "limits": {"user_requests_per_minute": 99_000_000}})),
        )
        .await;
    refused.assert_error(422, "invalid_settings");
    assert_eq!(
        refused.body["error"]["details"].as_array().unwrap().len(),
        3
    );
    assert!(refused.text.contains(SCRIPTED_MODEL), "{}", refused.text);
    app.call(
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&admin),
        Some(json!({"registration": "sometimes"})),
    )
    .await
    .assert_error(422, "invalid_body");
    app.call(
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&carl),
        Some(json!({"registration": "closed"})),
    )
    .await
    .assert_error(403, "forbidden");

    // Registration closes at once.
    let changed = app
        .call(
            Method::PATCH,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"registration": "closed", "default_model": SCRIPTED_MODEL, "version": 0})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["version"], 1);
    assert_eq!(changed.body["settings"]["default_model"], SCRIPTED_MODEL);
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"email": "late@example.com", "password": PASSWORD, "name": "Late"}),
    )
    .await
    .assert_error(403, "registration_closed");
    // A change based on an old version is refused.
    app.call(
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&admin),
        Some(json!({"registration": "open", "version": 0})),
    )
    .await
    .assert_error(409, "settings_changed");

    // Model access: users only the models listed; admins every model.
    let ok = chat(&app, &carl, SCRIPTED_MODEL).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    app.call(
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&admin),
        Some(json!({"user_models": ["other-*"]})),
    )
    .await;
    let refused = chat(&app, &carl, SCRIPTED_MODEL).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "model_not_allowed");
    assert_eq!(
        chat(&app, &admin, SCRIPTED_MODEL).await.status,
        StatusCode::OK
    );

    // Limits: one request a minute per user, from the next request on.
    let set = app
        .call(
            Method::PATCH,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"user_models": [], "limits": {"user_requests_per_minute": 1}})),
        )
        .await;
    assert_eq!(set.body["version"], 3, "{}", set.text);
    assert_eq!(
        chat(&app, &carl, SCRIPTED_MODEL).await.status,
        StatusCode::OK
    );
    let limited = chat(&app, &carl, SCRIPTED_MODEL).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.header("x-ratelimit-limit-requests"), None);

    // Audited with what changed.
    assert_eq!(audited(&app, "admin.config_changed").await, 3);
    let details: String = confab_store::sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'admin.config_changed' ORDER BY at, id LIMIT 1",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(
        details["changes"]["registration"]["from"], "open",
        "{details}"
    );
    assert_eq!(
        details["changes"]["registration"]["to"], "closed",
        "{details}"
    );
    app.stop().await;
}

/// Two replicas on one database and one NATS server (split mode): a settings change made
/// on one is applied by the other without a restart (a `config.changed` event over NATS),
/// and a job enqueued on one (a title, in the JetStream job queue) is visible to the
/// other's admin API and run by whichever worker leases it. Runs when `TEST_NATS_URL` names
/// a server with JetStream (scripts/test.sh starts one).
#[tokio::test]
async fn replicas_share_settings_jobs_and_events_over_nats() {
    let Ok(nats) = std::env::var("TEST_NATS_URL") else {
        eprintln!("TEST_NATS_URL is not set: skipping the NATS replica test");
        return;
    };
    let namespace = format!("t{}", uuid::Uuid::now_v7().simple());
    let configure = |c: &mut confab_core::config::Config| {
        c.bus.nats_url = Some(nats.clone());
        c.bus.nats_namespace = namespace.clone();
        c.bus.job_poll_ms = 50;
    };
    let first = TestApp::start_with(configure).await;
    // The second replica: the same database, its own data directory.
    let (mut config, _) = crate::common::test_config().await;
    configure(&mut config);
    let shared_url = first.database_url.clone();
    config.database.url = Some(confab_core::config::Secret::new(shared_url.clone()));
    let second_db = confab_testkit::TestDb {
        url: shared_url,
        dir: tempfile::tempdir().unwrap(),
    };
    config.data_dir = second_db.dir.path().to_path_buf();
    let second = TestApp::serve(
        confab::app::build(&config).await.unwrap(),
        config,
        second_db,
    )
    .await;

    first.register("admin@example.com").await;
    let (admin, _) = first.login("admin@example.com", PASSWORD).await;
    // Sessions live in the shared database: the token works on both replicas.
    let changed = first
        .call(
            Method::PATCH,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"registration": "closed"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let mut closed = false;
    for _ in 0..100 {
        let attempt = second
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": format!("{}@example.com", uuid::Uuid::now_v7()), "password": PASSWORD, "name": "Late"}),
            )
            .await;
        if attempt.status == StatusCode::FORBIDDEN {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the second replica applied the closed registration");

    // A job queued on the second replica is seen on the first and run by a worker.
    let conversation = second
        .post(
            "/api/v1/conversations",
            Some(&admin),
            json!({"model": SCRIPTED_MODEL}),
        )
        .await;
    let cid = conversation.body["id"].as_str().unwrap().to_owned();
    second
        .post(
            &format!("/api/v1/conversations/{cid}/messages"),
            Some(&admin),
            json!({"content": "a title please"}),
        )
        .await;
    let mut titled = Value::Null;
    for _ in 0..200 {
        let jobs = first
            .get("/api/v1/admin/jobs?kind=chat.title", Some(&admin))
            .await;
        if let Some(job) = jobs.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|j| j["state"] == "succeeded"))
        {
            titled = job.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(titled["payload"]["conversation_id"], cid, "{titled}");
    first.stop().await;
    second.stop().await;
}

/// Every way a credential stops working is published as `access.revoked` on the user's
/// topic, after this process's lookup caches were cleared: a subscriber that checks the
/// credential as soon as the event arrives (the chat service's WebSockets do) sees it refused.
#[tokio::test]
async fn revocations_are_published_after_the_caches_are_cleared() {
    use confab_bus::events::AccessRevoked;
    use confab_core::auth::Authenticator;

    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let bob_id: uuid::Uuid = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut events = app.events.subscribe(&confab_bus::user_topic(bob_id));
    let mut next_revocation = async || loop {
        let received = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an access.revoked event")
            .unwrap();
        if let confab_bus::Received::Event(envelope) = received
            && let Some(revoked) = envelope.decode::<AccessRevoked>()
        {
            return revoked;
        }
    };
    let user_path = format!("/api/v1/auth/users/{bob_id}");

    // Logout: that one session, refused at once (its lookup was cached just before).
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&bob)).await.status,
        StatusCode::OK
    );
    let session = app.auth.authenticate(&bob).await.unwrap();
    app.call(Method::POST, "/api/v1/auth/logout", Some(&bob), None)
        .await;
    let revoked = next_revocation().await;
    assert_eq!(revoked.reason, "logout");
    assert_eq!(revoked.session_id, Some(session.require_session().unwrap()));
    assert!(app.auth.authenticate(&bob).await.is_err());

    // A password change: every credential is checked again.
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    app.post(
        "/api/v1/auth/password",
        Some(&bob),
        json!({"current_password": PASSWORD, "new_password": "another fine passphrase"}),
    )
    .await;
    let revoked = next_revocation().await;
    assert_eq!(
        (revoked.reason.as_str(), revoked.session_id),
        ("password_changed", None)
    );

    // Role change, disabling, locking, an admin's reset and deletion.
    let (bob, _) = app
        .login("bob@example.com", "another fine passphrase")
        .await;
    app.get("/api/v1/auth/me", Some(&bob)).await;
    app.call(
        Method::PATCH,
        &user_path,
        Some(&admin),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(next_revocation().await.reason, "role_changed");
    app.call(
        Method::PATCH,
        &user_path,
        Some(&admin),
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(next_revocation().await.reason, "disabled");
    assert!(app.auth.authenticate(&bob).await.is_err());
    app.post(&format!("{user_path}/unlock"), Some(&admin), json!({}))
        .await;
    app.post(&format!("{user_path}/lock"), Some(&admin), json!({}))
        .await;
    assert_eq!(next_revocation().await.reason, "locked");
    app.post(&format!("{user_path}/unlock"), Some(&admin), json!({}))
        .await;
    app.post(
        &format!("{user_path}/password-reset"),
        Some(&admin),
        json!({}),
    )
    .await;
    assert_eq!(next_revocation().await.reason, "password_reset");
    app.call(Method::DELETE, &user_path, Some(&admin), None)
        .await;
    let revoked = next_revocation().await;
    assert_eq!(
        (revoked.user_id, revoked.reason.as_str()),
        (bob_id, "deleted")
    );
    app.stop().await;
}
