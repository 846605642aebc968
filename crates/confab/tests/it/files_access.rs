//! The contract of chat's `FileAccess` port, run against both adapters: `LocalFileAccess`
//! over the files service in the process, and `RemoteFiles` over that service's internal
//! routes, served on 127.0.0.1 with a real services secret. Files are described in the order
//! asked and the first problem names its file (another user's is not found, a pending one is
//! not ready, an infected one quarantined); a model gets an image's preview, a Markdown file's
//! text cut at the limit, a PDF's extracted text, nothing from audio; images come as their
//! thumbnail and preview; deleted files are gone. And the internal routes refuse a user's own
//! token.

use std::sync::Arc;

use confab::app::LocalFileAccess;
use confab::remote_files::RemoteFiles;
use confab_chat::ports::{FileAccess, FileAccessError, FileInput, ImageSize};
use confab_core::auth::ServiceTokens;
use confab_core::config::Secret;
use confab_files::FilesService;
use confab_files::domain::{FileRecord, FileState, Variant};
use confab_files::ports::FileStore;
use confab_files::service::{FileJob, Upload};
use serde_json::json;
use uuid::Uuid;

use crate::common::{PASSWORD, TestApp, test_config};
use crate::routes::png;

const SECRET: &str = "files-access-secret-0123456789abcdef";

const SENTENCE: &str = "Confab reads the text of attached PDF files.";

/// The all-in-one app with a services secret, served, and a handle on its files service.
struct World {
    app: TestApp,
    files: Arc<FilesService>,
}

async fn world() -> World {
    let (mut config, db) = test_config().await;
    config.services.token = Some(Secret::new(SECRET));
    let app = confab::app::build(&config).await.unwrap();
    let files = app.files.clone();
    World {
        app: TestApp::serve(app, config, db).await,
        files,
    }
}

impl World {
    async fn upload(&self, owner: Uuid, name: &str, bytes: Vec<u8>) -> FileRecord {
        let upload = Upload {
            name: name.to_owned(),
            declared_type: None,
            body: Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(bytes))])),
        };
        self.files.upload(owner, upload).await.unwrap()
    }

    /// Moves an unscanned file to `to`, as a scan would (there is no clamd here).
    async fn set_state(&self, id: Uuid, to: FileState) {
        let store = confab_files::SqlFileStore::new(self.app.db.clone());
        let threat = (to == FileState::Infected).then_some("Eicar-Test-Signature");
        assert!(
            store
                .set_state(id, FileState::Unscanned, to, threat, 1)
                .await
                .unwrap()
        );
    }
}

/// A one-page PDF showing `sentence`.
fn pdf(sentence: &str) -> Vec<u8> {
    confab_testkit::pdf(&[sentence]).expect("a test PDF")
}

/// A WAV header: audio, which no model here reads.
const WAV: &[u8] = b"RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0";

/// The contract, on the adapter `make` builds over the world.
async fn contract(make: impl FnOnce(&World) -> Arc<dyn FileAccess>) {
    let w = world().await;
    let access = make(&w);
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let photo = w.upload(ada, "photo.png", png()).await;
    w.files.run_variants(&FileJob { file_id: photo.id }).await;
    let notes = w
        .upload(
            ada,
            "notes.md",
            b"# Notes\n\nAbout the naive cafe.".to_vec(),
        )
        .await;
    let paper = w.upload(ada, "paper.pdf", pdf(SENTENCE)).await;
    let song = w.upload(ada, "song.wav", WAV.to_vec()).await;
    let theirs = w.upload(bob, "theirs.txt", b"bob's".to_vec()).await;
    let pending = w.upload(ada, "pending.txt", b"wait".to_vec()).await;
    w.set_state(pending.id, FileState::Pending).await;
    let infected = w.upload(ada, "infected.txt", b"bad".to_vec()).await;
    w.set_state(infected.id, FileState::Infected).await;

    // Described in the order asked.
    let described = access
        .describe(ada, &[paper.id, photo.id, notes.id])
        .await
        .unwrap();
    let summary: Vec<(Uuid, &str, &str, &str, u64)> = described
        .iter()
        .map(|a| {
            (
                a.file_id,
                a.name.as_str(),
                a.kind.as_str(),
                a.content_type.as_str(),
                a.size,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (paper.id, "paper.pdf", "pdf", "application/pdf", paper.size),
            (photo.id, "photo.png", "image", "image/png", photo.size),
            (
                notes.id,
                "notes.md",
                "markdown",
                "text/markdown",
                notes.size
            ),
        ]
    );
    assert!(access.describe(ada, &[]).await.unwrap().is_empty());
    // The first problem, by its file.
    assert_eq!(
        access.describe(ada, &[notes.id, theirs.id]).await,
        Err(FileAccessError::NotFound(theirs.id))
    );
    assert_eq!(
        access.describe(ada, &[notes.id, pending.id]).await,
        Err(FileAccessError::NotReady(pending.id))
    );
    assert_eq!(
        access
            .describe(ada, &[infected.id, pending.id, theirs.id])
            .await,
        Err(FileAccessError::Quarantined(infected.id))
    );

    // What a model is given.
    let (_, preview, preview_type) = w
        .files
        .variant(ada, photo.id, Variant::Preview)
        .await
        .unwrap();
    assert_eq!(
        access.model_input(ada, photo.id, 100).await.unwrap(),
        FileInput::Image {
            media_type: preview_type.to_owned(),
            data: preview.clone(),
        }
    );
    assert_eq!(
        access.model_input(ada, notes.id, 7).await.unwrap(),
        FileInput::Text {
            text: "# Notes".into(),
            truncated: true
        }
    );
    assert_eq!(
        access.model_input(ada, notes.id, 10_000).await.unwrap(),
        FileInput::Text {
            text: "# Notes\n\nAbout the naive cafe.".into(),
            truncated: false
        }
    );
    let FileInput::Text { text, truncated } =
        access.model_input(ada, paper.id, 10_000).await.unwrap()
    else {
        panic!("a PDF with text is read as text");
    };
    assert!(text.contains(SENTENCE), "{text:?}");
    assert!(!truncated);
    assert_eq!(
        access.model_input(ada, song.id, 100).await.unwrap(),
        FileInput::Unreadable
    );
    assert_eq!(
        access.model_input(ada, pending.id, 100).await,
        Err(FileAccessError::NotReady(pending.id))
    );
    assert_eq!(
        access.model_input(ada, infected.id, 100).await,
        Err(FileAccessError::Quarantined(infected.id))
    );
    assert_eq!(
        access.model_input(ada, theirs.id, 100).await,
        Err(FileAccessError::NotFound(theirs.id))
    );

    // Images for share pages.
    let (_, thumb, thumb_type) = w
        .files
        .variant(ada, photo.id, Variant::Thumb)
        .await
        .unwrap();
    assert_eq!(
        access
            .image(ada, photo.id, ImageSize::Thumbnail)
            .await
            .unwrap(),
        (thumb_type.to_owned(), thumb)
    );
    assert_eq!(
        access
            .image(ada, photo.id, ImageSize::Preview)
            .await
            .unwrap(),
        (preview_type.to_owned(), preview)
    );
    assert_eq!(
        access.image(ada, notes.id, ImageSize::Preview).await,
        Err(FileAccessError::NotFound(notes.id))
    );
    assert_eq!(
        access.image(bob, photo.id, ImageSize::Thumbnail).await,
        Err(FileAccessError::NotFound(photo.id))
    );

    // Deleted, skipping what is gone already; another user's files stay.
    access
        .delete(ada, &[notes.id, Uuid::now_v7(), photo.id, theirs.id])
        .await
        .unwrap();
    access.delete(ada, &[notes.id]).await.unwrap();
    access.delete(ada, &[]).await.unwrap();
    assert_eq!(
        access.describe(ada, &[notes.id]).await,
        Err(FileAccessError::NotFound(notes.id))
    );
    assert_eq!(
        access.describe(ada, &[photo.id]).await,
        Err(FileAccessError::NotFound(photo.id))
    );
    assert_eq!(access.describe(bob, &[theirs.id]).await.unwrap().len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn the_in_process_adapter_keeps_the_contract() {
    contract(|w| Arc::new(LocalFileAccess(w.files.clone()))).await;
}

#[tokio::test]
async fn the_http_adapter_keeps_the_contract() {
    contract(|w| {
        let tokens = ServiceTokens::new(SECRET.as_bytes()).unwrap();
        Arc::new(RemoteFiles::new(&w.app.url(""), tokens).unwrap())
    })
    .await;
}

#[tokio::test]
async fn the_internal_files_routes_refuse_a_users_token() {
    let w = world().await;
    let ada: Uuid = w.app.register("ada@example.com").await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (token, _) = w.app.login("ada@example.com", PASSWORD).await;
    let notes = w.upload(ada, "notes.txt", b"notes".to_vec()).await;
    let body = json!({"user_id": ada, "ids": [notes.id]});
    let model_input = format!(
        "/internal/v1/files/users/{ada}/files/{}/model-input?max_text_bytes=10",
        notes.id
    );
    for bearer in [Some(token.as_str()), None] {
        w.app
            .post("/internal/v1/files/attachable", bearer, body.clone())
            .await
            .assert_error(401, "unauthorized");
        w.app
            .get(&model_input, bearer)
            .await
            .assert_error(401, "unauthorized");
        w.app
            .post("/internal/v1/files/delete", bearer, body.clone())
            .await
            .assert_error(401, "unauthorized");
    }
    // An internal token is answered, with the wire format the HTTP adapter reads.
    let internal = ServiceTokens::new(SECRET.as_bytes())
        .unwrap()
        .mint_internal("chat")
        .unwrap();
    let described = w
        .app
        .post("/internal/v1/files/attachable", Some(&internal), body)
        .await;
    assert_eq!(described.status, 200, "{}", described.text);
    assert_eq!(
        described.body,
        json!({"items": [{
            "file_id": notes.id, "name": "notes.txt", "content_type": "text/plain",
            "kind": "text", "size": 5,
        }]})
    );
    let text = w.app.get(&model_input, Some(&internal)).await;
    assert_eq!(text.text, "notes");
    assert_eq!(text.header("x-confab-truncated"), Some("false"));
    let missing = Uuid::now_v7();
    let error = w
        .app
        .post(
            "/internal/v1/files/attachable",
            Some(&internal),
            json!({"user_id": ada, "ids": [missing]}),
        )
        .await;
    error.assert_error(404, "file_not_found");
    assert_eq!(error.body["error"]["details"], json!([missing]));

    // A files service that cannot be reached is unavailable, not a missing file.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = RemoteFiles::new(
        &format!("http://127.0.0.1:{port}"),
        ServiceTokens::new(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        down.describe(ada, &[notes.id]).await,
        Err(FileAccessError::Unavailable(_))
    ));
    w.app.stop().await;
}
