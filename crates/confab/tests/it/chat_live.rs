//! The chat service live: WebSocket events for every tab of the user and no one else, sockets
//! closed when their access ends and bounded per user, and a chat service answering through a
//! remote inference service.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat::{create, done, send, start, text_of};
use crate::common::{PASSWORD, TestApp};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(app: &TestApp, token: &str) -> Socket {
    let url = format!("ws://{}/api/v1/ws?access_token={token}", app.addr);
    let (socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// The next JSON event, or `None` after `wait` without one.
async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).ok();
        }
    }
}

/// Events until one of `kind` arrives (bounded).
async fn events_until(socket: &mut Socket, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(event) = next_event(socket, Duration::from_secs(5)).await {
        let done = event["type"] == kind;
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("no {kind} event; saw {seen:?}");
}

#[tokio::test]
async fn every_tab_of_the_user_gets_live_events_and_no_one_else_does() {
    let (app, token) = start().await;
    let mut first = socket(&app, &token).await;
    assert_eq!(
        next_event(&mut first, Duration::from_secs(5))
            .await
            .unwrap()["type"],
        "hello"
    );
    let mut second = socket(&app, &token).await;
    // The first tab hears of its own arrival, then of the second tab's.
    let mut tabs = Vec::new();
    while tabs.last() != Some(&json!(2)) {
        let presence = events_until(&mut first, "presence").await;
        tabs.push(presence.last().unwrap()["data"]["tabs"].clone());
        assert!(tabs.len() < 3, "{tabs:?}");
    }
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let mut theirs = socket(&app, &bob).await;
    events_until(&mut theirs, "presence").await;

    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, &token, &id, json!({"content": "hello there"})).await;
    for tab in [&mut first, &mut second] {
        let seen = events_until(tab, "message.completed").await;
        let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"message.created"), "{kinds:?}");
        assert!(kinds.contains(&"typing"), "{kinds:?}");
        let text: String = seen
            .iter()
            .filter(|e| e["type"] == "message.delta")
            .map(|e| e["data"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, "You said: hello there");
        let completed = seen.last().unwrap();
        assert_eq!(completed["data"]["message"]["status"], "complete");
        let after = events_until(tab, "typing").await;
        assert_eq!(after.last().unwrap()["data"]["active"], false);
    }
    // Bob's tab heard nothing of Ada's conversation.
    while let Some(event) = next_event(&mut theirs, Duration::from_millis(300)).await {
        assert_eq!(event["type"], "presence", "{event}");
    }

    // Not a WebSocket request, or no token.
    app.get(&format!("/api/v1/ws?access_token={token}"), None)
        .await
        .assert_error(426, "upgrade_required");
    app.get("/api/v1/ws", None)
        .await
        .assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn a_chat_service_answers_through_a_remote_inference_service() {
    use confab_core::auth::{Credential, Principal, Role, Scope, ServiceTokens};
    use confab_core::config::Secret;
    const SECRET: &str = "split-mode-secret-0123456789abcdef";
    // Split mode in miniature: one process serves inference, another the chat service,
    // which calls the first over HTTP with service tokens.
    let inference = TestApp::start_with(|c| {
        c.services.token = Some(Secret::new(SECRET));
        c.inference.providers[0].reply = Some("Remotely: {last}".into());
    })
    .await;
    let base = inference.url("");
    let chat = TestApp::start_with(|c| {
        c.services.token = Some(Secret::new(SECRET));
        c.chat.inference_url = Some(base.clone());
        c.chat.auto_titles = false;
        // No models of its own: every answer comes from the other process.
        c.inference.providers.clear();
    })
    .await;
    chat.register("ada@example.com").await;
    let (token, _) = chat.login("ada@example.com", PASSWORD).await;
    // A key for chat only: answering through inference is what the chat scope is for.
    let key = chat
        .post(
            "/api/v1/auth/api-keys",
            Some(&token),
            json!({"name": "chat only", "scopes": ["chat"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let conversation = create(&chat, &key, json!({"model": crate::common::SCRIPTED_MODEL})).await;
    let id = conversation["id"].as_str().unwrap();
    let answer = send(&chat, &key, id, json!({"content": "hello over there"})).await;
    assert_eq!(text_of(&answer), "Remotely: hello over there");
    assert_eq!(done(&answer)["status"], "complete");
    // The remote model list decides which models exist.
    let unknown = chat
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&key),
            json!({"content": "hi", "model": "no-such-model"}),
        )
        .await;
    unknown.assert_error(422, "unknown_model");

    // The inference service takes tokens signed with the shared secret only.
    let user = Principal {
        user_id: uuid::Uuid::now_v7(),
        role: Role::User,
        credential: Credential::Session {
            session_id: uuid::Uuid::now_v7(),
        },
    };
    let body = json!({"model": crate::common::SCRIPTED_MODEL,
                      "messages": [{"role": "user", "content": "ping"}]});
    for (secret, status) in [(SECRET, 200), ("another-secret-0123456789abcdef-xyz", 401)] {
        let minted = ServiceTokens::new(secret.as_bytes())
            .unwrap()
            .mint(&user, &[Scope::Inference])
            .unwrap();
        let response = inference
            .client
            .post(inference.url("/v1/chat/completions"))
            .bearer_auth(minted)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
    }
    chat.stop().await;
    inference.stop().await;
}

/// The close frame a socket ends with (skipping other frames), or `None` when it ends
/// without one or stays open for `wait`.
async fn close_code(socket: &mut Socket, wait: Duration) -> Option<(u16, String)> {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(wait, socket.next()).await.ok()?? {
            Ok(Message::Close(Some(frame))) => {
                return Some((u16::from(frame.code), frame.reason.to_string()));
            }
            Ok(Message::Close(None)) | Err(_) => return None,
            Ok(Message::Text(text)) => {
                let event: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_ne!(event["type"], "access.revoked", "not for the browser");
            }
            Ok(_) => {}
        }
    }
}

/// Security review: sockets were authorised only when they opened, and kept receiving the
/// user's events after logout, a lock or the token's expiry.
#[tokio::test]
async fn a_socket_closes_when_its_access_ends() {
    use confab_bus::events::AccessRevoked;
    let (app, ada) = start().await;
    let bob_id: uuid::Uuid = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let revoked = |session_id, reason: &str| {
        confab_bus::Envelope::typed(&AccessRevoked {
            user_id: bob_id,
            session_id,
            reason: reason.into(),
        })
    };
    let mut first = socket(&app, &bob).await;
    events_until(&mut first, "presence").await;

    // A revocation that does not concern this credential: the socket checks and stays.
    app.events
        .publish(revoked(Some(uuid::Uuid::now_v7()), "logout"))
        .await
        .unwrap();
    let mut second = socket(&app, &bob).await;
    events_until(&mut first, "presence").await;
    events_until(&mut second, "presence").await;

    // Bob signs out: both sockets of that session close with 1008.
    let out = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    // The auth service announces it; published here too, for a build where it does not yet.
    app.events.publish(revoked(None, "logout")).await.unwrap();
    for tab in [&mut first, &mut second] {
        let (code, reason) = close_code(tab, Duration::from_secs(5))
            .await
            .expect("a close frame");
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.contains("revoked"), "{reason}");
    }

    // Locked by an admin: a socket opened with a fresh sign-in closes too, and hears nothing
    // after that.
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let mut third = socket(&app, &bob).await;
    events_until(&mut third, "presence").await;
    let locked = app
        .post(
            &format!("/api/v1/auth/users/{bob_id}/lock"),
            Some(&ada),
            json!({}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    app.events.publish(revoked(None, "locked")).await.unwrap();
    let (code, _) = close_code(&mut third, Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!(code, 1008);
    app.events
        .publish(confab_bus::Envelope::new(
            confab_bus::user_topic(bob_id),
            "conversation.updated",
            json!({"secret": true}),
        ))
        .await
        .unwrap();
    assert!(
        next_event(&mut third, Duration::from_millis(300))
            .await
            .is_none()
    );
    app.stop().await;
}

/// Security review: 200 sockets of one user were accepted.
#[tokio::test]
async fn a_user_holds_a_bounded_number_of_sockets() {
    let app = TestApp::start_with(|c| c.chat.sockets_per_user = 2).await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let first = socket(&app, &token).await;
    let _second = socket(&app, &token).await;
    let url = format!("ws://{}/api/v1/ws?access_token={token}", app.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "too_many_sockets");
        }
        other => panic!("{other:?}"),
    }
    // Another user is not affected.
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let _theirs = socket(&app, &bob).await;
    // A closed socket frees its place (once the server has seen it close).
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok((s, _)) = tokio_tungstenite::connect_async(&url).await {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "the place was not given back");
    app.stop().await;
}
