//! Chat replicas sharing one database and bus (split mode): an answer followed and stopped
//! through a replica that does not generate it, and answers a dead replica left behind.

use std::time::Duration;

use confab_chat::ChatSettings;
use confab_chat::domain::{ConversationInput, MessageStatus};
use confab_chat::service::Follow;
use futures::StreamExt;
use uuid::Uuid;

use crate::harness::{Harness, Step, quiet_settings};

/// Settings of replicas that share the database: a short lease, so dead replicas' answers
/// are found within seconds.
fn replica_settings() -> ChatSettings {
    ChatSettings {
        answer_lease: Some(Duration::from_secs(2)),
        ..quiet_settings()
    }
}

#[tokio::test]
async fn an_answer_generated_on_one_replica_is_followed_and_stopped_from_another() {
    let a = Harness::new(replica_settings()).await;
    let b = a.replica(replica_settings());
    a.service.watch_replicas();
    b.service.watch_replicas();
    let c = a.conversation(ConversationInput::default()).await;
    a.model.script(vec![
        Step::Delta("Hello "),
        Step::Delta("there"),
        Step::Hang,
    ]);
    let (_, answer) = a.send(c, "Hi").await;
    // B does not generate it: it reads the checkpoints and A's events.
    let mut followed = b.service.follow(&b.user, c, answer.id, 0).await.unwrap();
    let mut text = String::new();
    while text != "Hello there" {
        match tokio::time::timeout(Duration::from_secs(10), followed.next()).await {
            Ok(Some(Follow::Delta { offset, content })) => {
                assert_eq!(offset, text.chars().count(), "pieces follow each other");
                text.push_str(&content);
            }
            other => panic!("expected the text so far, got {other:?} after {text:?}"),
        }
    }
    // Stopping through B stops the answer A generates.
    b.service.stop(&b.user, c, answer.id).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), followed.next())
        .await
        .expect("the answer ends");
    match end {
        Some(Follow::Done(message)) => assert_eq!(
            (message.content.as_str(), message.status),
            ("Hello there", MessageStatus::Stopped)
        ),
        other => panic!("expected the end, got {other:?}"),
    }
    // Ended on A (its row was saved before B was told).
    assert_eq!(a.service.live_answers(), 0);
    for replica in [&a, &b] {
        replica.shutdown.cancel();
        replica.settle().await;
    }
}

#[tokio::test]
async fn answers_left_by_a_dead_replica_are_interrupted_by_the_others() {
    use confab_chat::domain::Author;
    use confab_chat::ports::{MessageStore, NewMessage};
    let b = Harness::new(replica_settings()).await;
    let c = b.conversation(ConversationInput::default()).await;
    // What a replica killed mid-answer leaves: a streaming answer checkpointed long ago.
    let long_ago = confab_core::now_ms() - 60_000;
    let question = Uuid::now_v7();
    let orphan = Uuid::now_v7();
    b.store
        .add_messages(
            b.user.user_id,
            c,
            vec![
                NewMessage {
                    id: question,
                    conversation_id: c,
                    parent_id: None,
                    role: Author::User,
                    content: "Tell me".into(),
                    status: MessageStatus::Complete,
                    model: None,
                    attachments: Vec::new(),
                    now: long_ago,
                },
                NewMessage {
                    id: orphan,
                    conversation_id: c,
                    parent_id: Some(question),
                    role: Author::Assistant,
                    content: String::new(),
                    status: MessageStatus::Streaming,
                    model: Some("scripted".into()),
                    attachments: Vec::new(),
                    now: long_ago,
                },
            ],
        )
        .await
        .unwrap();
    b.store
        .checkpoint(b.user.user_id, orphan, "Half an ans", long_ago)
        .await
        .unwrap();
    // A reader that attached before the sweep finishes when the sweep ends the answer.
    let mut followed = b.service.follow(&b.user, c, orphan, 0).await.unwrap();
    b.service.watch_replicas();
    let mut last = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), followed.next())
        .await
        .expect("the orphaned answer is ended within a lease or two")
    {
        last = Some(event);
    }
    match last {
        Some(Follow::Done(message)) => assert_eq!(
            (message.content.as_str(), message.status),
            ("Half an ans", MessageStatus::Interrupted)
        ),
        other => panic!("expected the end, got {other:?}"),
    }
    // A fresh streaming answer (checkpointed now) is left alone by the same sweep.
    b.model.script(vec![Step::Delta("Alive"), Step::Hang]);
    let (_, alive) = b.send(c, "Again").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let row = b.store.message(b.user.user_id, c, alive.id).await.unwrap();
    assert_eq!(
        row.status,
        MessageStatus::Streaming,
        "a live answer is not swept"
    );
    b.shutdown.cancel();
    b.settle().await;
}

/// Redis membership on a fresh key prefix, when `TEST_REDIS_URL` names a server.
fn redis_sockets(test: &str) -> Option<std::sync::Arc<dyn confab_cache::Membership>> {
    let url = confab_testkit::redis::redis_url(test)?;
    let prefix = format!("t{}", Uuid::now_v7().simple());
    let conn = confab_testkit::redis::connection(&url, &prefix).unwrap();
    Some(std::sync::Arc::new(confab_cache::RedisMembership::new(
        conn,
    )))
}

#[tokio::test]
async fn a_users_socket_cap_and_presence_span_replicas() {
    let settings = || ChatSettings {
        sockets_per_user: 3,
        ..replica_settings()
    };
    let mut harnesses = vec![("memory", Harness::new(settings()).await)];
    if let Some(sockets) = redis_sockets("a_users_socket_cap_and_presence_span_replicas") {
        harnesses.push(("redis", Harness::with_sockets(settings(), sockets).await));
    }
    for (name, a) in harnesses {
        let b = a.replica(settings());
        let user = a.user.user_id;
        let first = a.service.reserve_socket(user).await.unwrap();
        let _second = b.service.reserve_socket(user).await.unwrap();
        let _third = a.service.reserve_socket(user).await.unwrap();
        // The cap is the user's, whichever replica the fourth socket reaches.
        for replica in [&a, &b] {
            let refused = replica.service.reserve_socket(user).await.unwrap_err();
            assert!(
                matches!(
                    refused,
                    confab_chat::ChatError::TooMany {
                        code: "too_many_sockets",
                        ..
                    }
                ),
                "{name}: {refused:?}"
            );
        }
        // Both replicas count every tab.
        assert_eq!(a.service.open_sockets(user).await, Some(3), "{name}");
        assert_eq!(b.service.open_sockets(user).await, Some(3), "{name}");
        // A closed socket frees its place on every replica.
        first.release().await;
        assert_eq!(b.service.open_sockets(user).await, Some(2), "{name}");
        let _again = b.service.reserve_socket(user).await.unwrap();
        // Another user is not affected.
        a.service.reserve_socket(Uuid::now_v7()).await.unwrap();
    }
}
