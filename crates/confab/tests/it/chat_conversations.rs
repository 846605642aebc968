//! The chat service's conversations over a real socket: search (common, middling and rare
//! words; titles and messages of the user only), listing with filters and pages, refused input
//! and isolation between users, presets, reactions and bulk operations.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat::{create, done, new_conversation, path, send, start};
use crate::common::{PASSWORD, TestApp};

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
                    attachments: Vec::new(),
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
