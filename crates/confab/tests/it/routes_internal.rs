//! The internal routes (`/internal/v1/...`) with an internal token, on a served process with a
//! services secret, and the split-mode adapters that call them: `RemoteAccounts` (chat's
//! `Accounts` over auth) and `HttpSettingsStore` (runtime settings read from admin).

use std::sync::Arc;

use confab::remote::{HttpSettingsStore, RemoteAccounts};
use confab_admin::ports::SettingsStore;
use confab_admin::settings::RuntimeConfig;
use confab_auth_client::{RemoteAuthConfig, RemoteAuthenticator};
use confab_chat::ports::Accounts;
use confab_core::auth::{Credential, Principal, Role, Scope, ServiceTokens};
use confab_core::config::Secret;
use confab_core::runtime::{LiveSettings, RuntimeSettings};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::common::{PASSWORD, TestApp};

const SECRET: &str = "split-mode-secret-0123456789abcdef";

#[tokio::test]
async fn internal_routes_answer_an_internal_token_and_the_split_adapters_use_them() {
    let app = TestApp::start_with(|c| c.services.token = Some(Secret::new(SECRET))).await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let bob: Uuid = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (bob_token, _) = app.login("bob@example.com", PASSWORD).await;
    let tokens = ServiceTokens::new(SECRET.as_bytes()).unwrap();
    let internal = tokens.mint_internal("chat").unwrap();
    let user_service_token = tokens
        .mint(
            &Principal {
                user_id: bob,
                role: Role::User,
                credential: Credential::Session {
                    session_id: Uuid::now_v7(),
                },
            },
            &[Scope::Chat],
        )
        .unwrap();

    // With an internal token: answers.
    let standing = app
        .get(&format!("/internal/v1/auth/users/{bob}"), Some(&internal))
        .await;
    assert_eq!(standing.status.as_u16(), 200, "{}", standing.text);
    assert_eq!(
        standing.body,
        json!({"user_id": bob, "role": "user", "status": "active", "active": true})
    );
    app.get(
        &format!("/internal/v1/auth/users/{}", Uuid::now_v7()),
        Some(&internal),
    )
    .await
    .assert_error(404, "not_found");
    let introspected = app
        .post(
            "/internal/v1/auth/introspect",
            Some(&internal),
            json!({"token": bob_token}),
        )
        .await;
    assert_eq!(introspected.status.as_u16(), 200, "{}", introspected.text);
    assert_eq!(introspected.body["credential"]["kind"], "session");
    app.post(
        "/internal/v1/auth/introspect",
        Some(&internal),
        json!({"token": "cfk_nothing"}),
    )
    .await
    .assert_error(401, "invalid_token");
    let settings = app
        .get("/internal/v1/admin/settings", Some(&internal))
        .await;
    assert_eq!(settings.status.as_u16(), 200, "{}", settings.text);
    assert_eq!(settings.body, json!({"record": null}));
    // A user's own credential or a user service token is not an internal token.
    for bearer in [&bob_token, &admin, &user_service_token] {
        app.get("/internal/v1/admin/settings", Some(bearer))
            .await
            .assert_error(401, "unauthorized");
    }

    // Chat's accounts over auth.
    let remote = RemoteAuthenticator::new(
        RemoteAuthConfig::new(app.url(""), "confab", "chat"),
        tokens.clone(),
        app.events.clone(),
    )
    .unwrap();
    let accounts = RemoteAccounts(remote);
    assert!(accounts.is_active(bob).await.unwrap());
    assert!(!accounts.is_active(Uuid::now_v7()).await.unwrap());

    // Runtime settings from admin: nothing stored, then an admin's change.
    let store = HttpSettingsStore::new(&app.url(""), tokens.clone(), "chat").unwrap();
    assert!(store.load().await.unwrap().is_none());
    let changed = app
        .call(
            http::Method::PATCH,
            "/api/v1/admin/settings",
            Some(&admin),
            Some(json!({"registration": "closed"})),
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{}", changed.text);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert!(
        store
            .save(&stored.settings, 1, bob, 0)
            .await
            .unwrap_err()
            .to_string()
            .contains("only through the admin service")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_process_starting_while_admin_is_down_uses_its_configuration() {
    // Nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let tokens = ServiceTokens::new(SECRET.as_bytes()).unwrap();
    let store =
        HttpSettingsStore::new(&format!("http://127.0.0.1:{port}"), tokens, "chat").unwrap();
    assert!(matches!(
        store.load().await,
        Err(confab_store::StoreError::Unavailable(_))
    ));
    let configured = RuntimeSettings::from_config(&confab_core::config::Config::default());
    let live = LiveSettings::new(configured.clone());
    let events: Arc<dyn confab_bus::EventBus> = Arc::new(confab_bus::MemoryBus::new(16));
    let config = RuntimeConfig::load_or_defaults(Arc::new(store), live.clone(), events).await;
    assert!(!config.is_loaded());
    assert_eq!(*live.get(), configured);
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    config.follow(&tasks, shutdown.clone());
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}
