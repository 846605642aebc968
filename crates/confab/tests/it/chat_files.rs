//! Files attached to chat messages, end to end over HTTP in one process: uploaded through the
//! files API, attached when a message is sent, given to the model (the scripted model names
//! the images it was shown and echoes the text it got), listed with the message, shown and
//! served on a share page, exported by reference, refused with their codes, and deleted with
//! the conversation.

use serde_json::{Value, json};

use crate::chat::{create, done, path, send};
use crate::common::TestApp;
use crate::files::{put_raw, user, wait_for};
use crate::routes::png;

/// A scripted model that says which images it was shown and what the message said.
const EYES: &str = "scripted-eyes";

async fn app() -> TestApp {
    TestApp::start_with(|config| {
        config.bus.job_poll_ms = 20;
        let mut eyes = confab_core::config::ProviderConfig::new(
            "eyes",
            confab_core::config::ProviderKind::Scripted,
            &[EYES],
        );
        eyes.reply = Some("I see {images}. You said: {last}".into());
        config.inference.providers.push(eyes);
    })
    .await
}

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> String {
    let stored = put_raw(app, token, name, None, bytes).await;
    assert_eq!(stored.status, 201, "{}", stored.text);
    stored.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn attached_files_reach_the_model_show_in_the_conversation_and_its_share_page() {
    let app = app().await;
    let alice = user(&app, "alice@example.com").await;
    let image = upload(&app, &alice, "red.png", png()).await;
    let notes = upload(
        &app,
        &alice,
        "notes.md",
        b"# Plan\nBake bread on Sunday.\n".to_vec(),
    )
    .await;
    // The image's preview is made by a background job; the model gets it once it exists.
    wait_for(&app, &alice, &image, |f| f["has_thumbnail"] == true).await;

    let conversation = create(&app, &alice, json!({"model": EYES})).await;
    let id = conversation["id"].as_str().unwrap();
    let events = send(
        &app,
        &alice,
        id,
        json!({"content": "What do you make of these?", "attachments": [image, notes]}),
    )
    .await;
    let answer = done(&events);
    let text = answer["content"].as_str().unwrap();
    assert_eq!(answer["status"], "complete", "{answer}");
    assert!(text.starts_with("I see 1 image: image/"), "{text}");
    assert!(text.contains("[Attached image: red.png]"), "{text}");
    assert!(
        text.contains(
            "[Attached file: notes.md]\n# Plan\nBake bread on Sunday.\n[End of notes.md]"
        ),
        "{text}"
    );
    assert!(text.ends_with("What do you make of these?"), "{text}");

    // The message lists its attachments, in order.
    let messages = path(&app, &alice, id).await;
    let attached: Vec<(&str, &str)> = messages[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(attached, [("red.png", "image"), ("notes.md", "markdown")]);
    assert_eq!(messages[0]["attachments"][0]["file_id"], image.as_str());

    // Exported by reference (name, type, size, id), in JSON and markdown.
    let exported = app
        .get(&format!("/api/v1/conversations/{id}/export"), Some(&alice))
        .await;
    assert_eq!(exported.status, 200, "{}", exported.text);
    assert!(exported.text.contains(&image), "{}", exported.text);
    let markdown = app
        .get(
            &format!("/api/v1/conversations/{id}/export?format=markdown"),
            Some(&alice),
        )
        .await;
    assert!(
        markdown
            .text
            .contains("- Attached: notes.md (text/markdown"),
        "{}",
        markdown.text
    );

    // The share page shows the image through its own route and names the other file.
    let link = app
        .post(
            &format!("/api/v1/conversations/{id}/shares"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let token = link.body["token"].as_str().unwrap();
    let page = app.get(&format!("/s/{token}"), None).await;
    let thumbnail = format!("/api/v1/shared/{token}/files/{image}/thumbnail");
    assert!(page.text.contains(&thumbnail), "{}", page.text);
    assert!(page.text.contains("notes.md"), "{}", page.text);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("img-src 'self'"))
    );
    let shown = app.get(&thumbnail, None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.header("x-content-type-options"), Some("nosniff"));
    assert!(
        shown
            .header("content-type")
            .is_some_and(|t| t.starts_with("image/"))
    );
    // Only the snapshot's images, and never a file's own bytes.
    for refused in [
        format!("/api/v1/shared/{token}/files/{notes}/preview"),
        format!("/api/v1/shared/{token}/files/{image}/content"),
        format!("/api/v1/shared/nope/files/{image}/thumbnail"),
    ] {
        assert_eq!(app.get(&refused, None).await.status, 404, "{refused}");
    }

    // Deleting the conversation deletes the files attached only there.
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/conversations/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for file in [&image, &notes] {
        let gone = app
            .get(&format!("/api/v1/files/{file}"), Some(&alice))
            .await;
        assert_eq!(gone.status, 404, "{}", gone.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn files_that_cannot_be_attached_are_refused_with_their_codes() {
    let app = app().await;
    let alice = user(&app, "alice@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let bobs = upload(&app, &bob, "bob.md", b"mine".to_vec()).await;
    let conversation = create(&app, &alice, json!({"model": EYES})).await;
    let id = conversation["id"].as_str().unwrap();
    let url = format!("/api/v1/conversations/{id}/messages");
    let refused = app
        .post(
            &url,
            Some(&alice),
            json!({"content": "look", "attachments": [bobs]}),
        )
        .await;
    refused.assert_error(422, "attachment_not_found");
    let many: Vec<Value> = (0..9).map(|_| json!(uuid::Uuid::now_v7())).collect();
    let refused = app
        .post(
            &url,
            Some(&alice),
            json!({"content": "look", "attachments": many}),
        )
        .await;
    refused.assert_error(422, "too_many_attachments");
    let refused = app
        .post(
            &url,
            Some(&alice),
            json!({"content": "", "attachments": []}),
        )
        .await;
    refused.assert_error(422, "empty_message");
    // Nothing was stored by the refusals.
    assert!(path(&app, &alice, id).await.is_empty());
    app.stop().await;
}
