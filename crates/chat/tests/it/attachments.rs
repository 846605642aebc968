//! Attachments through the chat service over a fake files port: what is checked when a
//! message is sent, what a model is given (image parts, text blocks within a budget, the
//! image cap over a whole history), what a deleted conversation deletes, and what a share
//! link shows.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use confab_chat::ChatError;
use confab_chat::domain::{Attachment, ConversationInput, MessageStatus};
use confab_chat::ports::{FileAccess, FileAccessError, FileInput, ImageSize};
use confab_chat::service::{MAX_IMAGES_SENT, SendInput};
use confab_model_client::types::Role;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::harness::{Harness, Step, quiet_settings};

/// A file of the fake: what describing it answers and what a model is given.
#[derive(Clone)]
struct FakeFile {
    owner: Uuid,
    attachment: Attachment,
    /// `Err` for a pending or infected file.
    state: Result<(), FileAccessError>,
    input: FileInput,
}

#[derive(Default)]
struct FakeFiles {
    files: Mutex<HashMap<Uuid, FakeFile>>,
    /// Each `model_input` call's byte limit.
    limits: Mutex<Vec<usize>>,
    down: Mutex<bool>,
}

impl FakeFiles {
    fn add(&self, owner: Uuid, name: &str, kind: &str, input: FileInput) -> Uuid {
        self.add_in_state(owner, name, kind, input, |_| Ok(()))
    }

    fn add_in_state(
        &self,
        owner: Uuid,
        name: &str,
        kind: &str,
        input: FileInput,
        state: impl Fn(Uuid) -> Result<(), FileAccessError>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let content_type = match kind {
            "image" => "image/png",
            "markdown" => "text/markdown",
            "pdf" => "application/pdf",
            _ => "audio/mpeg",
        };
        self.files.lock().insert(
            id,
            FakeFile {
                owner,
                attachment: Attachment {
                    file_id: id,
                    name: name.into(),
                    content_type: content_type.into(),
                    kind: kind.into(),
                    size: 1234,
                },
                state: state(id),
                input,
            },
        );
        id
    }

    fn get(&self, user_id: Uuid, id: Uuid) -> Result<FakeFile, FileAccessError> {
        if *self.down.lock() {
            return Err(FileAccessError::Unavailable("files are down".into()));
        }
        self.files
            .lock()
            .get(&id)
            .filter(|f| f.owner == user_id)
            .cloned()
            .ok_or(FileAccessError::NotFound(id))
    }
}

#[async_trait]
impl FileAccess for FakeFiles {
    async fn describe(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Attachment>, FileAccessError> {
        ids.iter()
            .map(|id| {
                let file = self.get(user_id, *id)?;
                file.state.clone()?;
                Ok(file.attachment)
            })
            .collect()
    }

    async fn model_input(
        &self,
        user_id: Uuid,
        id: Uuid,
        max_text_bytes: usize,
    ) -> Result<FileInput, FileAccessError> {
        self.limits.lock().push(max_text_bytes);
        Ok(self.get(user_id, id)?.input)
    }

    async fn image(
        &self,
        user_id: Uuid,
        id: Uuid,
        size: ImageSize,
    ) -> Result<(String, Bytes), FileAccessError> {
        let file = self.get(user_id, id)?;
        match (file.input, size) {
            (FileInput::Image { media_type, data }, ImageSize::Preview) => Ok((media_type, data)),
            (FileInput::Image { media_type, .. }, ImageSize::Thumbnail) => {
                Ok((media_type, Bytes::from_static(b"thumb")))
            }
            _ => Err(FileAccessError::NotFound(id)),
        }
    }

    async fn delete(&self, user_id: Uuid, ids: &[Uuid]) -> Result<(), FileAccessError> {
        let mut files = self.files.lock();
        for id in ids {
            if files.get(id).is_some_and(|f| f.owner == user_id) {
                files.remove(id);
            }
        }
        Ok(())
    }
}

fn png() -> FileInput {
    FileInput::Image {
        media_type: "image/png".into(),
        data: Bytes::from_static(b"\x89PNG fake"),
    }
}

fn text(text: &str) -> FileInput {
    FileInput::Text {
        text: text.into(),
        truncated: false,
    }
}

async fn send(
    h: &Harness,
    conversation: Uuid,
    content: &str,
    attachments: Vec<Uuid>,
) -> Result<confab_chat::service::Sent, ChatError> {
    h.service
        .send(
            &h.user,
            conversation,
            SendInput {
                content: content.into(),
                parent_id: None,
                from_root: false,
                model: None,
                attachments,
            },
        )
        .await
}

async fn harness() -> (Harness, Arc<FakeFiles>) {
    let files = Arc::new(FakeFiles::default());
    let h = Harness::with_files(quiet_settings(), files.clone()).await;
    (h, files)
}

#[tokio::test]
async fn attached_files_are_stored_with_the_message_and_given_to_the_model() {
    let (h, files) = harness().await;
    let me = h.user.user_id;
    let image = files.add(me, "cat.png", "image", png());
    let notes = files.add(me, "notes.md", "markdown", text("# Plan\nBake bread."));
    let song = files.add(me, "song.mp3", "audio", FileInput::Unreadable);
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("A cat."), Step::Finish]);
    // A repeated id counts once; the order is kept.
    let sent = send(&h, c, "What is this?", vec![image, notes, song, image])
        .await
        .unwrap();
    let names: Vec<&str> = sent
        .user_message
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["cat.png", "notes.md", "song.mp3"]);
    let done = h.followed(c, sent.assistant_message.id).await;
    assert_eq!(done.status, MessageStatus::Complete);

    let request = h.model.requests.lock()[0].clone();
    let question = request.messages.last().unwrap();
    assert_eq!(question.role, Role::User);
    assert_eq!(question.images.len(), 1);
    assert_eq!(question.images[0].media_type, "image/png");
    assert_eq!(&*question.images[0].base64, "iVBORyBmYWtl");
    assert_eq!(
        question.content,
        "[Attached image: cat.png]\n\n[Attached file: notes.md]\n# Plan\nBake bread.\n\
         [End of notes.md]\n\n[Attached file: song.mp3 (audio/mpeg, 1234 bytes); its content \
         cannot be read here]\n\nWhat is this?"
    );
    // Three files share half of the 4,096-token window: 2,048 bytes each.
    assert_eq!(*files.limits.lock(), vec![2048, 2048, 2048]);

    // Stored: the conversation's messages carry them, and a later turn sends them again.
    let path = h.service.active_path(&h.user, c).await.unwrap();
    assert_eq!(path[0].0.attachments, sent.user_message.attachments);
    h.model.script(vec![Step::Delta("Yes."), Step::Finish]);
    let again = send(&h, c, "And now?", Vec::new()).await.unwrap();
    h.followed(c, again.assistant_message.id).await;
    let request = h.model.requests.lock()[1].clone();
    assert_eq!(request.messages.len(), 3);
    assert_eq!(request.messages[0].images.len(), 1);
    assert!(request.messages[2].images.is_empty());
    h.settle().await;
}

#[tokio::test]
async fn files_only_no_text_is_a_message_titled_by_its_files() {
    let (h, files) = harness().await;
    let notes = files.add(h.user.user_id, "notes.md", "markdown", text("Bread."));
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("Bread."), Step::Finish]);
    let sent = send(&h, c, "  ", vec![notes]).await.unwrap();
    assert_eq!(sent.user_message.content, "");
    h.followed(c, sent.assistant_message.id).await;
    let conversation = h.service.conversation(&h.user, c).await.unwrap();
    assert_eq!(conversation.title, "notes.md");
    let request = h.model.requests.lock()[0].clone();
    assert_eq!(
        request.messages.last().unwrap().content,
        "[Attached file: notes.md]\nBread.\n[End of notes.md]"
    );
    // Nothing at all is still an empty message.
    let empty = send(&h, c, " ", Vec::new()).await.unwrap_err();
    assert!(
        matches!(
            empty,
            ChatError::Invalid {
                code: "empty_message",
                ..
            }
        ),
        "{empty:?}"
    );
    h.settle().await;
}

#[tokio::test]
async fn files_that_cannot_be_attached_are_refused_and_nothing_is_stored() {
    let (h, files) = harness().await;
    let me = h.user.user_id;
    let c = h.conversation(ConversationInput::default()).await;
    let someone_elses = files.add(Uuid::now_v7(), "theirs.md", "markdown", text("secret"));
    let pending = files.add_in_state(me, "new.pdf", "pdf", text("x"), |id| {
        Err(FileAccessError::NotReady(id))
    });
    let infected = files.add_in_state(me, "eicar.txt", "text", text("x"), |id| {
        Err(FileAccessError::Quarantined(id))
    });
    for (id, expected) in [
        (someone_elses, FileAccessError::NotFound(someone_elses)),
        (pending, FileAccessError::NotReady(pending)),
        (infected, FileAccessError::Quarantined(infected)),
    ] {
        let refused = send(&h, c, "look", vec![id]).await.unwrap_err();
        assert!(
            matches!(&refused, ChatError::Files(e) if *e == expected),
            "{refused:?}"
        );
    }
    let many: Vec<Uuid> = (0..9)
        .map(|i| files.add(me, &format!("{i}.md"), "markdown", text("x")))
        .collect();
    let refused = send(&h, c, "look", many).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ChatError::Invalid {
                code: "too_many_attachments",
                ..
            }
        ),
        "{refused:?}"
    );
    // The files service being down is a retryable failure, not a message without its files.
    let fine = files.add(me, "fine.md", "markdown", text("x"));
    *files.down.lock() = true;
    let refused = send(&h, c, "look", vec![fine]).await.unwrap_err();
    assert!(matches!(
        refused,
        ChatError::Files(FileAccessError::Unavailable(_))
    ));
    *files.down.lock() = false;
    assert!(h.service.active_path(&h.user, c).await.unwrap().is_empty());
    assert_eq!(h.model.calls(), 0);

    // Without a files service nothing can be attached.
    let bare = Harness::new(quiet_settings()).await;
    let c = bare.conversation(ConversationInput::default()).await;
    let refused = send(&bare, c, "look", vec![fine]).await.unwrap_err();
    assert!(matches!(
        refused,
        ChatError::Files(FileAccessError::Disabled)
    ));
}

#[tokio::test]
async fn a_request_carries_at_most_the_newest_images_and_names_the_rest() {
    let (h, files) = harness().await;
    // A window wide enough for every image: the cap, not the window, leaves some out.
    *h.model.context_tokens.lock() = 200_000;
    let me = h.user.user_id;
    let c = h.conversation(ConversationInput::default()).await;
    for round in 0..3 {
        let images: Vec<Uuid> = (0..8)
            .map(|i| files.add(me, &format!("{round}-{i}.png"), "image", png()))
            .collect();
        h.model.script(vec![Step::Delta("ok"), Step::Finish]);
        let sent = send(&h, c, "more", images).await.unwrap();
        h.followed(c, sent.assistant_message.id).await;
    }
    let request = h.model.requests.lock()[2].clone();
    let shown: usize = request.messages.iter().map(|m| m.images.len()).sum();
    assert_eq!(shown, MAX_IMAGES_SENT);
    // The oldest turn's images are named, the two newest turns' sent.
    assert!(request.messages[0].images.is_empty());
    assert!(
        request.messages[0]
            .content
            .contains("[Attached image: 0-0.png; left out")
    );
    assert_eq!(request.messages[2].images.len(), 8);
    assert_eq!(request.messages[4].images.len(), 8);
    h.settle().await;
}

#[tokio::test]
async fn deleting_a_conversation_deletes_the_files_attached_only_there() {
    let (h, files) = harness().await;
    let me = h.user.user_id;
    let only_here = files.add(me, "here.md", "markdown", text("x"));
    let shared = files.add(me, "both.md", "markdown", text("y"));
    let kept_alone = files.add(me, "mine.md", "markdown", text("z"));
    let first = h.conversation(ConversationInput::default()).await;
    let second = h.conversation(ConversationInput::default()).await;
    for (c, ids) in [(first, vec![only_here, shared]), (second, vec![shared])] {
        h.model.script(vec![Step::Delta("ok"), Step::Finish]);
        let sent = send(&h, c, "keep", ids).await.unwrap();
        h.followed(c, sent.assistant_message.id).await;
    }
    h.service.delete(&h.user, first).await.unwrap();
    let left: Vec<Uuid> = {
        let files = files.files.lock();
        [only_here, shared, kept_alone]
            .into_iter()
            .filter(|id| files.contains_key(id))
            .collect()
    };
    assert_eq!(left, vec![shared, kept_alone]);
    // The last conversation that holds it takes it along (bulk deletion too).
    h.service
        .bulk(&h.user, &[second], confab_chat::domain::BulkAction::Delete)
        .await
        .unwrap();
    assert!(!files.files.lock().contains_key(&shared));
    h.settle().await;
}

#[tokio::test]
async fn a_share_link_shows_the_attachments_and_serves_only_their_images() {
    let (h, files) = harness().await;
    let me = h.user.user_id;
    let image = files.add(me, "cat.png", "image", png());
    let notes = files.add(me, "notes.md", "markdown", text("x"));
    let other_image = files.add(me, "dog.png", "image", png());
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("A cat."), Step::Finish]);
    let sent = send(&h, c, "", vec![image, notes]).await.unwrap();
    h.followed(c, sent.assistant_message.id).await;
    let link = h.service.share(&h.user, c).await.unwrap();
    let shared = h.service.shared(&link.token).await.unwrap();
    assert_eq!(shared.messages[0].attachments.len(), 2);
    let (kind, bytes) = h
        .service
        .shared_image(&link.token, image, ImageSize::Thumbnail)
        .await
        .unwrap();
    assert_eq!((kind.as_str(), &bytes[..]), ("image/png", &b"thumb"[..]));
    // A file of the owner's that is not in the snapshot, or not an image, is not served.
    for id in [other_image, notes] {
        let refused = h
            .service
            .shared_image(&link.token, id, ImageSize::Preview)
            .await
            .unwrap_err();
        assert!(matches!(refused, ChatError::NotFound(_)), "{refused:?}");
    }
    h.service.revoke_share(&h.user, &link.token).await.unwrap();
    assert!(
        h.service
            .shared_image(&link.token, image, ImageSize::Thumbnail)
            .await
            .is_err()
    );
    h.settle().await;
}
