//! The chat service over a real socket with deterministic models: conversations, streamed
//! answers and their events, branches from edits and regenerations, stop, answers that
//! outlive their client and are re-attached to, checkpoints, recovery after a crash, titles,
//! presets, validation and isolation between users.

use std::time::Duration;

use confab_core::config::{ProviderConfig, ProviderKind};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp};

/// A model that answers 20 words, 40 ms apart.
const SLOW_MODEL: &str = "scripted-slow";
const SLOW_REPLY: &str = "one two three four five six seven eight nine ten eleven twelve \
                          thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

async fn start() -> (TestApp, String) {
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
fn new_conversation(owner: uuid::Uuid, now: i64) -> confab_chat::ports::NewConversation {
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
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).ok()?))
        })
        .collect()
}

/// The text of the `delta` events.
fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["content"].as_str().unwrap())
        .collect()
}

fn done(events: &[(String, Value)]) -> Value {
    events
        .iter()
        .find(|(name, _)| name == "done")
        .map(|(_, data)| data.clone())
        .expect("a done event")
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let created = app.post("/api/v1/conversations", Some(token), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body
}

/// Sends a message and reads the whole answer stream.
async fn send(app: &TestApp, token: &str, conversation: &str, body: Value) -> Vec<(String, Value)> {
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

async fn path(app: &TestApp, token: &str, conversation: &str) -> Vec<Value> {
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
async fn read_until(
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

#[tokio::test]
async fn searches_find_common_middling_and_rare_words_alike() {
    // Enough messages that each way of finding candidates is taken on PostgreSQL (testing
    // the newest messages until 200 matches, testing further, the GIN index).
    use confab_chat::domain::{Author, HitKind, MessageStatus};
    use confab_chat::ports::{ConversationStore, MessageStore, NewMessage, SearchStore};
    let (config, _db) = crate::common::test_config().await;
    let app = confab::app::build(&config).await.unwrap();
    let store = confab_chat::SqlChatStore::new(app.db.clone());
    let user = uuid::Uuid::now_v7();
    let now = confab_core::now_ms();
    let conversation = store
        .create_conversation(new_conversation(user, now))
        .await
        .unwrap();
    let mut parent = None;
    for i in 0..300 {
        let mut content = format!("entry {i} about giraffes");
        if i % 10 == 0 {
            content.push_str(" and zebras");
        }
        if i == 123 {
            content.push_str(" with an okapi");
        }
        let id = uuid::Uuid::now_v7();
        store
            .add_message(
                user,
                NewMessage {
                    id,
                    conversation_id: conversation.id,
                    parent_id: parent,
                    role: Author::User,
                    content,
                    status: MessageStatus::Complete,
                    model: None,
                    now: now + i,
                },
            )
            .await
            .unwrap();
        parent = Some(id);
    }
    let words = |q: &str| q.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let messages = |hits: Vec<confab_chat::domain::SearchHit>| {
        hits.into_iter()
            .filter(|h| h.kind == HitKind::Message)
            .collect::<Vec<_>>()
    };
    // Every message matches: the newest 200 are candidates, 20 returned.
    let common = messages(store.search(user, &words("giraffes"), 20).await.unwrap());
    assert_eq!(common.len(), 20);
    // One in ten (30 of 300), and as a prefix.
    let middling = messages(store.search(user, &words("zebra"), 50).await.unwrap());
    assert_eq!(middling.len(), 30);
    let prefix = messages(
        store
            .search(user, &words("giraffes zeb"), 50)
            .await
            .unwrap(),
    );
    assert_eq!(prefix.len(), 30);
    // One message.
    let rare = messages(store.search(user, &words("okapi"), 20).await.unwrap());
    assert_eq!(rare.len(), 1);
    let text: String = rare[0].snippet.iter().map(|p| p.text.as_str()).collect();
    assert!(text.contains("okapi"), "{text}");
    // Nobody else's.
    let other = store
        .search(uuid::Uuid::now_v7(), &words("giraffes"), 20)
        .await
        .unwrap();
    assert!(other.is_empty());
    app.db.close().await;
}

#[tokio::test]
async fn conversations_are_listed_filtered_and_paged() {
    let (app, token) = start().await;
    let a = create(
        &app,
        &token,
        json!({"title": "A", "folder": "work", "tags": ["x"]}),
    )
    .await;
    let b = create(&app, &token, json!({"title": "B", "tags": ["y"]})).await;
    let c = create(&app, &token, json!({"title": "C"})).await;
    let patch = |id: &Value, body: Value| {
        let path = format!("/api/v1/conversations/{}", id["id"].as_str().unwrap());
        let app = &app;
        let token = token.clone();
        async move {
            app.call(reqwest::Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    assert_eq!(
        patch(&c, json!({"archived": true})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        patch(&b, json!({"pinned": true})).await.status,
        StatusCode::OK
    );
    let titles = |r: &crate::common::Response| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(
        titles(&all),
        ["B", "A"],
        "newest activity first; archived hidden"
    );
    let archived = app
        .get("/api/v1/conversations?archived=true", Some(&token))
        .await;
    assert_eq!(titles(&archived), ["C"]);
    let work = app
        .get("/api/v1/conversations?folder=work", Some(&token))
        .await;
    assert_eq!(titles(&work), ["A"]);
    let tagged = app.get("/api/v1/conversations?tag=Y", Some(&token)).await;
    assert_eq!(titles(&tagged), ["B"]);
    let pinned = app
        .get("/api/v1/conversations?pinned=true", Some(&token))
        .await;
    assert_eq!(titles(&pinned), ["B"]);
    let page = app.get("/api/v1/conversations?limit=1", Some(&token)).await;
    assert_eq!(titles(&page), ["B"]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app
        .get(
            &format!("/api/v1/conversations?limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(titles(&next), ["A"]);
    assert!(next.body["next_cursor"].is_null());

    // A message is activity: the conversation moves to the top (a few ms later than the
    // last change, so the order does not hang on equal timestamps).
    tokio::time::sleep(Duration::from_millis(5)).await;
    send(
        &app,
        &token,
        a["id"].as_str().unwrap(),
        json!({"content": "hi"}),
    )
    .await;
    let all = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(titles(&all), ["A", "B"]);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_other_users_see_nothing() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/conversations/{id}/messages");
    app.post(&path, Some(&token), json!({"content": "   "}))
        .await
        .assert_error(422, "empty_message");
    app.post(
        &path,
        Some(&token),
        json!({"content": "hi", "model": "nope"}),
    )
    .await
    .assert_error(422, "unknown_model");
    app.post(
        &path,
        Some(&token),
        json!({"content": "hi", "parent_id": uuid::Uuid::now_v7()}),
    )
    .await
    .assert_error(404, "not_found");
    let bad = app
        .post(
            "/api/v1/conversations",
            Some(&token),
            json!({"params": {"temperature": 5, "top_p": 0}, "title": "x".repeat(300)}),
        )
        .await;
    bad.assert_error(422, "invalid_body");
    assert_eq!(bad.body["error"]["details"].as_array().unwrap().len(), 3);
    // Nothing was stored by the refused requests.
    assert!(path_is_empty(&app, &token, &id).await);

    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    app.get(&format!("/api/v1/conversations/{id}"), Some(&bob))
        .await
        .assert_error(404, "not_found");
    app.post(&path, Some(&bob), json!({"content": "hi"}))
        .await
        .assert_error(404, "not_found");
    let listed = app.get("/api/v1/conversations", Some(&bob)).await;
    assert_eq!(listed.body["items"], json!([]));

    // An API key needs the chat scope.
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&token),
            json!({"name": "k", "scopes": ["inference"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/api/v1/conversations", Some(&key))
        .await
        .assert_error(403, "insufficient_scope");
    app.stop().await;
}

async fn path_is_empty(app: &TestApp, token: &str, id: &str) -> bool {
    path(app, token, id).await.is_empty()
}

#[tokio::test]
async fn presets_shape_new_conversations() {
    let (app, token) = start().await;
    let preset = app
        .post(
            "/api/v1/presets",
            Some(&token),
            json!({"name": "Pirate", "system_prompt": "Talk like a pirate.", "params": {"temperature": 0.3}}),
        )
        .await;
    assert_eq!(preset.status, StatusCode::CREATED, "{}", preset.text);
    app.post("/api/v1/presets", Some(&token), json!({"name": "Pirate"}))
        .await
        .assert_error(409, "preset_exists");
    let conversation = create(
        &app,
        &token,
        json!({"preset_id": preset.body["id"], "title": "Arr"}),
    )
    .await;
    assert_eq!(conversation["system_prompt"], "Talk like a pirate.");
    assert_eq!(conversation["params"]["temperature"], 0.3);
    let listed = app.get("/api/v1/presets", Some(&token)).await;
    assert_eq!(listed.body["items"][0]["name"], "Pirate");
    app.stop().await;
}

#[tokio::test]
async fn search_finds_titles_and_messages_of_the_user_only() {
    let (app, token) = start().await;
    let foxes = create(&app, &token, json!({"title": "Foxes in winter"})).await;
    let id = foxes["id"].as_str().unwrap();
    send(
        &app,
        &token,
        id,
        json!({"content": "Where do red foxes sleep?"}),
    )
    .await;
    let other = create(&app, &token, json!({"title": "Cooking"})).await;
    send(
        &app,
        &token,
        other["id"].as_str().unwrap(),
        json!({"content": "A recipe for bread"}),
    )
    .await;

    let found = app.get("/api/v1/search?q=fox", Some(&token)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let items = found.body["items"].as_array().unwrap();
    // The title first, then the question and the answer that quotes it (stemmed: foxes).
    assert_eq!(items[0]["kind"], "title");
    assert_eq!(items[0]["conversation_id"], id);
    let messages: Vec<&Value> = items.iter().filter(|i| i["kind"] == "message").collect();
    assert_eq!(messages.len(), 2, "{}", found.text);
    for hit in &messages {
        assert_eq!(hit["conversation_title"], "Foxes in winter");
        assert!(hit["message_id"].is_string());
        let marked: Vec<&str> = hit["snippet"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["highlight"] == true)
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(marked, ["foxes"], "{hit}");
    }
    // Every word must match; syntax in the query is taken as words.
    let none = app
        .get("/api/v1/search?q=foxes%20bread", Some(&token))
        .await;
    assert_eq!(none.body["items"], json!([]));
    let odd = app
        .get("/api/v1/search?q=%22bread%22%20OR%20NEAR(", Some(&token))
        .await;
    assert_eq!(odd.status, StatusCode::OK, "{}", odd.text);
    app.get("/api/v1/search?q=%20%21%21", Some(&token))
        .await
        .assert_error(422, "invalid_query");

    // Another user finds nothing of Ada's.
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let theirs = app.get("/api/v1/search?q=fox", Some(&bob)).await;
    assert_eq!(theirs.body["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn conversations_export_and_import_back_whole() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({"title": "Branchy", "tags": ["keep"]})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = send(&app, &token, &id, json!({"content": "first"})).await;
    let a1 = done(&first)["id"].as_str().unwrap().to_owned();
    send(&app, &token, &id, json!({"content": "second"})).await;
    send(
        &app,
        &token,
        &id,
        json!({"content": "second, edited", "parent_id": a1}),
    )
    .await;

    let exported = app
        .client
        .get(app.url(&format!("/api/v1/conversations/{id}/export")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), StatusCode::OK);
    assert!(
        exported.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let file = exported.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(parsed["format"], "confab.conversations");
    assert_eq!(
        parsed["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let markdown = app
        .client
        .get(app.url(&format!(
            "/api/v1/conversations/{id}/export?format=markdown"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(markdown.starts_with("# Branchy\n"), "{markdown}");
    assert!(markdown.contains("## You\n\nsecond, edited"), "{markdown}");
    assert!(
        !markdown.contains("## You\n\nsecond\n"),
        "only the active branch: {markdown}"
    );

    // Another user imports the file: the same tree under new ids, the same active branch.
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let imported = app
        .client
        .post(app.url("/api/v1/conversations/import"))
        .bearer_auth(&bob)
        .header("content-type", "application/json")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::CREATED);
    let result: Value = imported.json().await.unwrap();
    assert_eq!(result["imported"], 1);
    let copy = result["conversation_ids"][0].as_str().unwrap();
    assert_ne!(copy, id);
    let original = path(&app, &token, &id).await;
    let copied = path(&app, &bob, copy).await;
    let texts = |p: &[Value]| -> Vec<(String, String, u64)> {
        p.iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_owned(),
                    m["content"].as_str().unwrap().to_owned(),
                    m["branches"]["index"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(texts(&copied), texts(&original));
    let got = app
        .get(&format!("/api/v1/conversations/{copy}"), Some(&bob))
        .await;
    assert_eq!(got.body["title"], "Branchy");
    assert_eq!(got.body["tags"], json!(["keep"]));

    // Exporting everything includes it; the owner can import their own export again.
    let all = app.get("/api/v1/conversations/export", Some(&bob)).await;
    assert_eq!(all.body["conversations"].as_array().unwrap().len(), 1);
    let again = app
        .client
        .post(app.url("/api/v1/conversations/import"))
        .bearer_auth(&token)
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn chatgpt_exports_import_and_bad_files_change_nothing() {
    let (app, token) = start().await;
    let chatgpt = json!([{
        "title": "Fox facts", "create_time": 1700000000.0, "update_time": 1700000100.0,
        "current_node": "a1",
        "mapping": {
            "root": {"id": "root", "message": null, "parent": null, "children": ["u1"]},
            "u1": {"id": "u1", "message": {"author": {"role": "user"}, "create_time": 1700000001.0,
                   "content": {"content_type": "text", "parts": ["Tell me about foxes"]}}, "parent": "root", "children": ["a1"]},
            "a1": {"id": "a1", "message": {"author": {"role": "assistant"}, "create_time": 1700000002.0,
                   "content": {"content_type": "text", "parts": ["Foxes are canids."]}}, "parent": "u1", "children": []}
        }
    }]);
    let imported = app
        .post("/api/v1/conversations/import", Some(&token), chatgpt)
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let id = imported.body["conversation_ids"][0].as_str().unwrap();
    let messages = path(&app, &token, id).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], "Foxes are canids.");
    // Imported text is searchable.
    let found = app.get("/api/v1/search?q=canids", Some(&token)).await;
    assert_eq!(found.body["items"][0]["conversation_id"], id);

    // A file with a good conversation and a broken one is refused whole, with the place.
    let broken = json!([
        {"title": "ok", "mapping": {"u": {"id": "u", "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}}, "parent": null, "children": []}}},
        {"title": "bad"}
    ]);
    let refused = app
        .post("/api/v1/conversations/import", Some(&token), broken)
        .await;
    let message = refused.assert_error(422, "invalid_import");
    assert!(message.contains("[1].mapping"), "{message}");
    let listed = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );
    app.post(
        "/api/v1/conversations/import",
        Some(&token),
        json!({"hello": 1}),
    )
    .await
    .assert_error(422, "invalid_import");
    app.stop().await;
}

#[tokio::test]
async fn share_links_show_a_snapshot_to_anyone_until_revoked() {
    let (app, token) = start().await;
    let id = create(
        &app,
        &token,
        json!({"title": "Shared <b>chat</b>", "system_prompt": "secret"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/conversations/{id}/shares"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_error(422, "nothing_to_share");
    send(&app, &token, &id, json!({"content": "hello <script>"})).await;
    let link = app
        .post(
            &format!("/api/v1/conversations/{id}/shares"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let share = link.body["token"].as_str().unwrap().to_owned();
    assert_eq!(link.body["url"], format!("/s/{share}"));

    // Anyone (no sign-in) reads the snapshot, and nothing else of the owner's.
    let public = app.get(&format!("/api/v1/shared/{share}"), None).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    assert_eq!(public.body["title"], "Shared <b>chat</b>");
    assert_eq!(public.body["messages"].as_array().unwrap().len(), 2);
    assert!(!public.text.contains("secret") && !public.text.contains("ada@"));
    let page = app
        .client
        .get(app.url(&format!("/s/{share}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Shared &lt;b&gt;chat&lt;/b&gt;") && html.contains("hello &lt;script&gt;")
    );

    // Later messages are not in the snapshot.
    send(&app, &token, &id, json!({"content": "not shared"})).await;
    let again = app.get(&format!("/api/v1/shared/{share}"), None).await;
    assert!(!again.text.contains("not shared"));

    let listed = app
        .get(&format!("/api/v1/conversations/{id}/shares"), Some(&token))
        .await;
    assert_eq!(listed.body["items"][0]["revoked"], false);
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    app.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/shares/{share}"),
        Some(&bob),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let revoked = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/shares/{share}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/shared/{share}"), None)
        .await
        .assert_error(404, "not_found");
    // Both are in the audit log, without the link's secret.
    let logged: Vec<(String, String)> = confab_store::sqlx::query_as(
        "SELECT action, details FROM audit_log WHERE action LIKE 'chat.share%' ORDER BY seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = logged.iter().map(|(a, _)| a.as_str()).collect();
    assert!(
        actions.ends_with(&["chat.share_created", "chat.share_revoked"]),
        "{logged:?}"
    );
    assert!(
        logged.iter().all(|(_, d)| !d.contains(&share)),
        "{logged:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn reactions_and_bulk_operations() {
    let (app, token) = start().await;
    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = send(&app, &token, &id, json!({"content": "hi"})).await;
    let answer = done(&events)["id"].as_str().unwrap().to_owned();
    let path_ = format!("/api/v1/conversations/{id}/messages/{answer}/reactions");
    let reacted = app.post(&path_, Some(&token), json!({"emoji": "👍"})).await;
    assert_eq!(reacted.status, StatusCode::OK, "{}", reacted.text);
    assert_eq!(
        reacted.body["items"],
        json!([{"emoji": "👍", "count": 1, "mine": true}])
    );
    // Idempotent.
    let twice = app.post(&path_, Some(&token), json!({"emoji": "👍"})).await;
    assert_eq!(twice.body["items"][0]["count"], 1);
    app.post(&path_, Some(&token), json!({"emoji": "two words"}))
        .await
        .assert_error(422, "invalid_reaction");
    let messages = path(&app, &token, &id).await;
    assert_eq!(messages[1]["reactions"][0]["emoji"], "👍");
    let removed = app
        .call(
            reqwest::Method::DELETE,
            &format!("{path_}/%F0%9F%91%8D"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(removed.body["items"], json!([]));

    // Bulk: the user's own ids change; another user's are skipped.
    let second = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let theirs = create(&app, &bob, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let archived = app
        .post(
            "/api/v1/conversations/bulk",
            Some(&token),
            json!({"ids": [id, second, theirs], "action": "archive"}),
        )
        .await;
    assert_eq!(archived.body["affected"], 2, "{}", archived.text);
    let listed = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]));
    let deleted = app
        .post(
            "/api/v1/conversations/bulk",
            Some(&token),
            json!({"ids": [id, theirs], "action": "delete"}),
        )
        .await;
    assert_eq!(deleted.body["affected"], 1);
    app.get(&format!("/api/v1/conversations/{id}"), Some(&token))
        .await
        .assert_error(404, "not_found");
    let still = app
        .get(&format!("/api/v1/conversations/{theirs}"), Some(&bob))
        .await;
    assert_eq!(still.status, StatusCode::OK);
    app.post(
        "/api/v1/conversations/bulk",
        Some(&token),
        json!({"ids": [], "action": "delete"}),
    )
    .await
    .assert_error(422, "invalid_ids");
    app.stop().await;
}

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

/// A response read whole, for its checks.
async fn response(response: reqwest::Response) -> crate::common::Response {
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    crate::common::Response {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Security review (issue 13 §6): imports are read off the request threads with bounds, and
/// every way in keeps the same field limits.
#[tokio::test]
async fn imports_and_tags_are_bounded_before_the_work() {
    let app = TestApp::start_with(|c| c.chat.import_limit_bytes = 4 * 1024 * 1024).await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let import = |body: String| {
        let request = app
            .client
            .post(app.url("/api/v1/conversations/import"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        async move { response(request.send().await.unwrap()).await }
    };
    // A ChatGPT conversation over 20,000 nodes is refused while it is read.
    let nodes: Vec<String> = (0..20_001)
        .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
        .collect();
    let big = format!(
        r#"[{{"title": "big", "mapping": {{{}}}}}]"#,
        nodes.join(",")
    );
    let message = import(big).await.assert_error(422, "import_too_large");
    assert!(message.contains("at most 20000"), "{message}");
    // Over the route's (configured) body limit.
    let huge = format!(r#"[{{"title": "{}"}}]"#, "x".repeat(4 * 1024 * 1024));
    assert_eq!(import(huge).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A Confab file keeps the limits of the API: these were stored before.
    let export = json!({
        "format": "confab.conversations", "version": 1, "exported_at": "2026-01-01T00:00:00Z",
        "conversations": [{
            "id": "0190f6a0-0000-7000-8000-000000000001", "title": "t",
            "model": "m".repeat(5_000), "system_prompt": "s".repeat(100_000),
            "folder": "f".repeat(10_000), "active_leaf_id": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "messages": []
        }]
    });
    let refused = import(export.to_string()).await;
    refused.assert_error(422, "invalid_import");
    let details = refused.body["error"]["details"].to_string();
    for field in [
        "model is 5000",
        "system_prompt is 100000",
        "folder is 10000",
    ] {
        assert!(details.contains(field), "{field}: {details}");
    }
    let listed = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was stored");

    // 80,000 tags: refused by their count, on create and on change.
    let tags = vec![""; 80_000];
    let message = app
        .post("/api/v1/conversations", Some(&token), json!({"tags": tags}))
        .await
        .assert_error(422, "invalid_body");
    assert_eq!(message, "at most 20 tags, got 80000");
    let id = create(&app, &token, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(&token),
            Some(json!({"tags": tags})),
        )
        .await
        .assert_error(422, "invalid_body");
    assert_eq!(message, "at most 20 tags, got 80000");
    app.stop().await;
}

/// Security review: any number of imports were parsed at once (about 1.1 GB each for a
/// 63 MiB file). Past `chat.import_concurrency`, an import is refused at once with a time to
/// retry.
#[tokio::test]
async fn imports_past_the_concurrency_cap_are_refused_with_retry_after() {
    let app = TestApp::start_with(|c| c.chat.import_concurrency = 1).await;
    if app.db.backend() != confab_store::Backend::Sqlite {
        // The held writer below makes an import wait only on SQLite (one writer connection).
        app.stop().await;
        return;
    }
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let file = r#"[{"title": "t", "mapping": {"u": {"message": {"author": {"role": "user"},
        "content": {"parts": ["hello"]}}, "parent": null}}}]"#;
    let import = || {
        let request = app
            .client
            .post(app.url("/api/v1/conversations/import"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(file);
        async move { response(request.send().await.unwrap()).await }
    };
    // With the only writer connection held, the import holding the one permit waits to store
    // its conversations; the other is refused without waiting.
    let held = app.db.writer().acquire().await.unwrap();
    let (refused, other) =
        match futures::future::select(Box::pin(import()), Box::pin(import())).await {
            futures::future::Either::Left(done) | futures::future::Either::Right(done) => done,
        };
    refused.assert_error(503, "imports_busy");
    assert_eq!(refused.header("retry-after"), Some("5"));
    drop(held);
    let stored = other.await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    // The permit came back.
    assert_eq!(import().await.status, StatusCode::CREATED);
    app.stop().await;
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

/// Security review: share links kept working while their owner was locked, and share pages
/// could be kept by caches.
#[tokio::test]
async fn share_links_stop_while_their_owner_is_locked_and_are_never_cached() {
    let (app, ada) = start().await;
    let bob_id = app.register("bob@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    let id = create(&app, &bob, json!({"title": "Bob's"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, &bob, &id, json!({"content": "hello"})).await;
    let link = app
        .post(
            &format!("/api/v1/conversations/{id}/shares"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
    let share = link.body["token"].as_str().unwrap().to_owned();
    let (api, page) = (format!("/api/v1/shared/{share}"), format!("/s/{share}"));
    for path in [&api, &page] {
        let shown = app.get(path, None).await;
        assert_eq!(shown.status, StatusCode::OK, "{path}: {}", shown.text);
        assert_eq!(shown.header("cache-control"), Some("no-store"), "{path}");
    }
    let lock = |action: &'static str| {
        let path = format!("/api/v1/auth/users/{bob_id}/{action}");
        let (app, ada) = (&app, &ada);
        async move {
            let done = app.post(&path, Some(ada), json!({})).await;
            assert_eq!(done.status, StatusCode::OK, "{}", done.text);
        }
    };
    lock("lock").await;
    for path in [&api, &page] {
        let gone = app.get(path, None).await;
        gone.assert_error(404, "not_found");
        assert_eq!(gone.header("cache-control"), Some("no-store"), "{path}");
    }
    lock("unlock").await;
    for path in [&api, &page] {
        assert_eq!(app.get(path, None).await.status, StatusCode::OK, "{path}");
    }
    app.stop().await;
}
