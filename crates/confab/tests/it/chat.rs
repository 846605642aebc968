//! The chat service over a real socket with deterministic models: streamed answers and their
//! events, branches from edits and regenerations, stop, answers that outlive their client and
//! are re-attached to, checkpoints, recovery after a crash, and a question stored with its
//! answer or not at all; with the helpers the other `chat_*` modules share (conversations,
//! export, import and shares, live events).

use std::time::Duration;

use confab_core::config::{ProviderConfig, ProviderKind};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp};

/// A model that answers 20 words, 40 ms apart.
pub(crate) const SLOW_MODEL: &str = "scripted-slow";
pub(crate) const SLOW_REPLY: &str = "one two three four five six seven eight nine ten eleven twelve \
                          thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

pub(crate) async fn start() -> (TestApp, String) {
    let app = TestApp::start_with(|c| {
        let mut slow = ProviderConfig::new("slow", ProviderKind::Scripted, &[SLOW_MODEL]);
        slow.reply = Some(SLOW_REPLY.into());
        slow.delay_ms = 40;
        c.inference.providers.push(slow);
        c.chat.checkpoint_ms = 100;
    })
    .await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    (app, token)
}

/// A conversation of `owner` made straight in the store (for store-level tests).
pub(crate) fn new_conversation(owner: uuid::Uuid, now: i64) -> confab_chat::ports::NewConversation {
    confab_chat::ports::NewConversation {
        id: uuid::Uuid::now_v7(),
        user_id: owner,
        title: "t".into(),
        model: None,
        system_prompt: None,
        params: Default::default(),
        folder: None,
        tags: vec![],
        now,
    }
}

/// An SSE body as (event name, JSON data) pairs.
pub(crate) fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).ok()?))
        })
        .collect()
}

/// The text of the `delta` events.
pub(crate) fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["content"].as_str().unwrap())
        .collect()
}

pub(crate) fn done(events: &[(String, Value)]) -> Value {
    events
        .iter()
        .find(|(name, _)| name == "done")
        .map(|(_, data)| data.clone())
        .expect("a done event")
}

pub(crate) async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let created = app.post("/api/v1/conversations", Some(token), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body
}

/// Sends a message and reads the whole answer stream.
pub(crate) async fn send(
    app: &TestApp,
    token: &str,
    conversation: &str,
    body: Value,
) -> Vec<(String, Value)> {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    events(&response.text().await.unwrap())
}

pub(crate) async fn path(app: &TestApp, token: &str, conversation: &str) -> Vec<Value> {
    let listed = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(token),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    listed.body["items"].as_array().unwrap().clone()
}

/// Reads a streaming response until `enough` holds for the text so far; returns the rest of
/// the stream unread.
pub(crate) async fn read_until(
    response: reqwest::Response,
    enough: impl Fn(&str) -> bool,
) -> (
    String,
    futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
) {
    let mut stream = response.bytes_stream().boxed();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if enough(&text) {
            break;
        }
    }
    (text, stream)
}

#[tokio::test]
async fn a_message_is_answered_as_a_stream_and_kept() {
    let (app, token) = start().await;
    let conversation = create(
        &app,
        &token,
        json!({"system_prompt": "Be brief.", "tags": ["Animals"], "folder": "Nature"}),
    )
    .await;
    assert_eq!(conversation["tags"], json!(["animals"]));
    let id = conversation["id"].as_str().unwrap();

    let events = send(&app, &token, id, json!({"content": "Tell me about foxes"})).await;
    let (first, start) = &events[0];
    assert_eq!(first, "message");
    assert_eq!(start["user_message"]["content"], "Tell me about foxes");
    assert_eq!(start["user_message"]["status"], "complete");
    assert_eq!(start["assistant_message"]["status"], "streaming");
    assert_eq!(
        start["assistant_message"]["parent_id"],
        start["user_message"]["id"]
    );
    assert_eq!(text_of(&events), "You said: Tell me about foxes");
    let end = done(&events);
    assert_eq!(end["status"], "complete");
    assert_eq!(end["content"], "You said: Tell me about foxes");
    assert_eq!(end["model"], "scripted-echo");
    assert_eq!(end["completion_tokens"], 6);
    // Deltas carry their offsets; offsets count characters.
    let offsets: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets[0], 0);
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));

    let messages = path(&app, &token, id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "You said: Tell me about foxes");
    assert_eq!(messages[1]["branches"]["index"], 0);
    assert_eq!(
        messages[1]["branches"]["sibling_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // After the first exchange the model names the conversation (in the background).
    let mut title = String::new();
    for _ in 0..100 {
        let got = app
            .get(&format!("/api/v1/conversations/{id}"), Some(&token))
            .await;
        title = got.body["title"].as_str().unwrap().to_owned();
        if title.starts_with("You said") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(title, "You said: Tell me about foxes");

    // The answer counts as the user's inference usage.
    use confab_inference::usage::UsageLog as _;
    let usage = confab_inference::usage::SqlUsageLog::new(app.db.clone());
    let today = confab_inference::usage::day_of(confab_core::now_ms());
    let mut requests = 0;
    for _ in 0..100 {
        let rows = usage.daily_totals(None, &today, &today).await.unwrap();
        requests = rows.iter().map(|r| r.requests).sum::<i64>();
        if requests >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests >= 2, "the answer and the title are accounted");
    app.stop().await;
}

#[tokio::test]
async fn edits_and_regenerations_are_branches() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = send(&app, &token, &id, json!({"content": "first"})).await;
    let a1 = done(&first)["id"].as_str().unwrap().to_owned();
    let second = send(&app, &token, &id, json!({"content": "second"})).await;
    let u2 = second[0].1["user_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(second[0].1["user_message"]["parent_id"], a1.as_str());

    // Editing the second message: new text under the same parent, a sibling branch.
    let edited = send(
        &app,
        &token,
        &id,
        json!({"content": "second, edited", "parent_id": a1}),
    )
    .await;
    assert_eq!(text_of(&edited), "You said: second, edited");
    let messages = path(&app, &token, &id).await;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2]["content"], "second, edited");
    assert_eq!(messages[2]["branches"]["index"], 1);
    assert_eq!(messages[2]["branches"]["sibling_ids"][0], u2.as_str());

    // Regenerating the last answer: another sibling, now active.
    let last = messages[3]["id"].as_str().unwrap().to_owned();
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/conversations/{id}/messages/{last}/regenerate"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let regenerated = events(&response.text().await.unwrap());
    assert_eq!(done(&regenerated)["status"], "complete");
    let messages = path(&app, &token, &id).await;
    assert_eq!(messages[3]["branches"]["index"], 1);
    assert_eq!(
        messages[3]["branches"]["sibling_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Switching back to the first version of the second message shows its own answer.
    let switched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(&token),
            Some(json!({"active_message_id": u2})),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{}", switched.text);
    let messages = path(&app, &token, &id).await;
    assert_eq!(messages[2]["content"], "second");
    assert_eq!(messages[3]["content"], "You said: second");
    assert_eq!(messages[2]["branches"]["index"], 0);

    // Editing the first message: `parent_id: null` starts from the top, a sibling of it.
    let rewritten = send(
        &app,
        &token,
        &id,
        json!({"content": "first, rewritten", "parent_id": null}),
    )
    .await;
    assert_eq!(text_of(&rewritten), "You said: first, rewritten");
    assert!(rewritten[0].1["user_message"]["parent_id"].is_null());
    let messages = path(&app, &token, &id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], "first, rewritten");
    assert_eq!(messages[0]["branches"]["index"], 1);
    assert_eq!(
        messages[0]["branches"]["sibling_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn stop_keeps_what_was_said() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({"model": SLOW_MODEL})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&token)
        .json(&json!({"content": "count"}))
        .send()
        .await
        .unwrap();
    let (head, rest) = read_until(response, |t| t.matches("event: delta").count() >= 2).await;
    let answer = events(&head)[0].1["assistant_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stopped = app
        .post(
            &format!("/api/v1/conversations/{id}/messages/{answer}/stop"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.text);
    let mut text = head;
    let mut rest = rest;
    while let Some(chunk) = rest.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let all = events(&text);
    let end = done(&all);
    assert_eq!(end["status"], "stopped");
    let said = end["content"].as_str().unwrap();
    assert!(said.starts_with("one two"), "{said}");
    assert!(said.len() < SLOW_REPLY.len(), "{said}");
    assert_eq!(text_of(&all), said);

    let again = app
        .post(
            &format!("/api/v1/conversations/{id}/messages/{answer}/stop"),
            Some(&token),
            json!({}),
        )
        .await;
    again.assert_error(409, "not_streaming");
    app.stop().await;
}

#[tokio::test]
async fn an_answer_outlives_its_client_and_can_be_followed_again() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({"model": SLOW_MODEL})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&token)
        .json(&json!({"content": "count"}))
        .send()
        .await
        .unwrap();
    let (head, rest) = read_until(response, |t| t.matches("event: delta").count() >= 3).await;
    // The client goes away mid-answer.
    drop(rest);
    let seen = events(&head);
    let answer = seen[0].1["assistant_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let offset: usize = text_of(&seen).chars().count();

    // While it streams, the row is checkpointed (every 100 ms here).
    let mut checkpointed = String::new();
    for _ in 0..50 {
        let row = sqlx::query("SELECT content FROM messages WHERE id = $1")
            .bind(&answer)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        checkpointed = sqlx::Row::try_get(&row, "content").unwrap();
        if !checkpointed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(SLOW_REPLY.starts_with(&checkpointed) && !checkpointed.is_empty());

    // Re-attach from where the client was: the rest arrives, then the end.
    let follow = app
        .client
        .get(app.url(&format!(
            "/api/v1/conversations/{id}/messages/{answer}/stream?offset={offset}"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(follow.status(), StatusCode::OK);
    let rest = events(&follow.text().await.unwrap());
    assert_eq!(format!("{}{}", text_of(&seen), text_of(&rest)), SLOW_REPLY);
    assert_eq!(rest[0].1["offset"], offset);
    assert_eq!(done(&rest)["status"], "complete");

    // Once finished, following again replays from the saved row, also via Last-Event-ID.
    let replay = app
        .client
        .get(app.url(&format!(
            "/api/v1/conversations/{id}/messages/{answer}/stream"
        )))
        .header("last-event-id", "4")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let replayed = events(&replay.text().await.unwrap());
    assert_eq!(text_of(&replayed), &SLOW_REPLY[4..]);
    let past = app
        .get(
            &format!("/api/v1/conversations/{id}/messages/{answer}/stream?offset=100000"),
            Some(&token),
        )
        .await;
    past.assert_error(422, "invalid_offset");
    assert_eq!(app.chat.live_answers(), 0);
    app.stop().await;
}

#[tokio::test]
async fn answers_cut_off_by_a_crash_are_interrupted_at_the_next_start() {
    use confab_chat::ports::{ConversationStore, MessageStore, NewMessage};
    let (config, _db) = crate::common::test_config().await;
    let first = confab::app::build(&config).await.unwrap();
    let store = confab_chat::SqlChatStore::new(first.db.clone());
    let user = uuid::Uuid::now_v7();
    let now = confab_core::now_ms();
    let conversation = store
        .create_conversation(new_conversation(user, now))
        .await
        .unwrap();
    let message = |role, status| NewMessage {
        id: uuid::Uuid::now_v7(),
        conversation_id: conversation.id,
        parent_id: None,
        role,
        content: String::new(),
        status,
        model: None,
        attachments: Vec::new(),
        now,
    };
    use confab_chat::domain::{Author, MessageStatus};
    let question = store
        .add_message(user, message(Author::User, MessageStatus::Complete))
        .await
        .unwrap();
    let mut streaming = message(Author::Assistant, MessageStatus::Streaming);
    streaming.parent_id = Some(question.id);
    let answer = store.add_message(user, streaming).await.unwrap();
    store
        .checkpoint(user, answer.id, "half an ans", now)
        .await
        .unwrap();
    // The process "dies" here; the next start finds the answer still streaming.
    drop(first);
    let second = confab::app::build(&config).await.unwrap();
    let after = confab_chat::SqlChatStore::new(second.db.clone())
        .message(user, conversation.id, answer.id)
        .await
        .unwrap();
    assert_eq!(after.status, MessageStatus::Interrupted);
    assert_eq!(after.content, "half an ans");
    assert_eq!(
        store
            .message(user, conversation.id, question.id)
            .await
            .unwrap()
            .status,
        MessageStatus::Complete
    );
}

#[tokio::test]
async fn a_question_and_its_answer_are_stored_together_or_not_at_all() {
    use confab_chat::domain::{Author, MessageStatus};
    use confab_chat::ports::{ConversationStore, MessageStore, NewMessage};
    use confab_store::StoreError;
    let (config, _db) = crate::common::test_config().await;
    let app = confab::app::build(&config).await.unwrap();
    let store = confab_chat::SqlChatStore::new(app.db.clone());
    let (user, stranger) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let now = confab_core::now_ms();
    let mine = store
        .create_conversation(new_conversation(user, now))
        .await
        .unwrap();
    let theirs = store
        .create_conversation(new_conversation(stranger, now))
        .await
        .unwrap();
    let message = |conversation_id, parent_id, role| NewMessage {
        id: uuid::Uuid::now_v7(),
        conversation_id,
        parent_id,
        role,
        content: "text".into(),
        status: MessageStatus::Complete,
        model: None,
        attachments: Vec::new(),
        now: now + 5,
    };
    let exchange = |conversation_id, parent_id| {
        let question = message(conversation_id, parent_id, Author::User);
        let answer = message(conversation_id, Some(question.id), Author::Assistant);
        vec![question, answer]
    };
    let first = exchange(mine.id, None);
    let answer_id = first[1].id;
    let stored = store.add_messages(user, mine.id, first).await.unwrap();
    assert_eq!(stored.len(), 2);
    let after = store.conversation(user, mine.id).await.unwrap();
    assert_eq!(
        after.active_leaf_id,
        Some(answer_id),
        "the last one is the leaf"
    );
    assert_eq!(after.updated_at, now + 5);

    // Refused whole: another user's conversation, a parent from another conversation, an
    // answer that does not hang under its question.
    let foreign = store
        .add_message(stranger, message(theirs.id, None, Author::User))
        .await
        .unwrap();
    let mut unchained = exchange(mine.id, Some(answer_id));
    unchained[1].parent_id = Some(answer_id);
    for (owner, batch) in [
        (stranger, exchange(mine.id, None)),
        (user, exchange(mine.id, Some(foreign.id))),
        (user, unchained),
    ] {
        let refused = store.add_messages(owner, mine.id, batch).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    }
    assert_eq!(store.all_messages(user, mine.id).await.unwrap().len(), 2);
    let unchanged = store.conversation(user, mine.id).await.unwrap();
    assert_eq!(unchanged.active_leaf_id, Some(answer_id));
    app.db.close().await;
}
