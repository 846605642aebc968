//! What other services ask of a user's files to attach them (`FilesService::attachable`,
//! `model_input`, `delete_many`), over the SQL store (SQLite, or PostgreSQL with
//! `TEST_BACKEND=postgres`) and memory blobs: files described in the order asked, the first
//! problem named by its id; text cut on a character boundary; images as their preview or, small
//! and without one yet, as they are; a PDF's text extracted once and kept beside it (and
//! deleted with it); what no model reads answered as such.

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use confab_blob::{BlobKey, BlobStore, ObjectBlobs};
use confab_core::audit::{AuditEvent, AuditLog, AuditLogError};
use confab_core::config::DatabaseConfig;
use confab_files::domain::{FileKind, FileRecord, FileState, Quota};
use confab_files::ports::FileStore;
use confab_files::service::{
    AttachProblem, FileJob, FilesDeps, FilesError, FilesService, FilesSettings, ModelInput, Upload,
};
use confab_files::store::{SqlFileStore, migrations};
use confab_store::Db;
use confab_testkit::TestDb;
use uuid::Uuid;

type TestResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const SENTENCE: &str = "Attached files reach the model as text.";

/// Audit records go nowhere here.
struct NoAudit;

#[async_trait]
impl AuditLog for NoAudit {
    async fn record(&self, _event: AuditEvent) -> Result<(), AuditLogError> {
        Ok(())
    }
}

struct World {
    service: Arc<FilesService>,
    store: Arc<SqlFileStore>,
    blobs: Arc<dyn BlobStore>,
    _db: TestDb,
}

async fn world() -> TestResult<World> {
    let test_db = TestDb::new().await?;
    let db = Db::connect(&test_db.url, &DatabaseConfig::default()).await?;
    migrations().run(&db).await?;
    confab_bus::migrations().run(&db).await?;
    let store = Arc::new(SqlFileStore::new(db.clone()));
    let blobs: Arc<dyn BlobStore> = Arc::new(ObjectBlobs::memory());
    let service = FilesService::new(
        FilesDeps {
            store: store.clone(),
            uploads: store.clone(),
            blobs: blobs.clone(),
            scanner: None,
            jobs: Arc::new(confab_bus::SqlJobQueue::new(db)),
            audit: Arc::new(NoAudit),
        },
        FilesSettings::default(),
    );
    Ok(World {
        service,
        store,
        blobs,
        _db: test_db,
    })
}

impl World {
    async fn upload(&self, owner: Uuid, name: &str, bytes: Vec<u8>) -> TestResult<FileRecord> {
        let upload = Upload {
            name: name.to_owned(),
            declared_type: None,
            body: Box::pin(futures::stream::iter([Ok(Bytes::from(bytes))])),
        };
        Ok(self.service.upload(owner, upload).await?)
    }

    /// A row without content, for states and sizes an upload does not make.
    async fn insert(&self, owner: Uuid, f: impl FnOnce(&mut FileRecord)) -> TestResult<Uuid> {
        let mut record = FileRecord {
            id: Uuid::now_v7(),
            owner,
            name: "x.png".into(),
            content_type: "image/png".into(),
            kind: FileKind::Image,
            size: 10,
            sha256: "ab".repeat(32),
            state: FileState::Unscanned,
            threat: None,
            width: None,
            height: None,
            variants: false,
            created_ms: 1,
            scanned_ms: None,
        };
        f(&mut record);
        let quota = Quota {
            max_bytes: u64::MAX >> 2,
            max_files: 1000,
        };
        self.store
            .insert(&record, quota)
            .await?
            .map_err(|_| "over quota")?;
        Ok(record.id)
    }

    async fn set_state(&self, id: Uuid, to: FileState) -> TestResult<()> {
        let threat = (to == FileState::Infected).then_some("Eicar-Test-Signature");
        let moved = self
            .store
            .set_state(id, FileState::Unscanned, to, threat, 2)
            .await?;
        if !moved {
            return Err("the file was not unscanned".into());
        }
        Ok(())
    }

    async fn has_blob(&self, key: String) -> TestResult<bool> {
        Ok(self.blobs.head(&BlobKey::new(key)?).await.is_ok())
    }
}

/// A PNG of `side`×`side` pixels.
fn png(side: u32) -> TestResult<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(side, side, image::Rgb([40, 120, 200]))
        .write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// A one-page PDF showing `sentence`.
fn pdf(sentence: &str) -> TestResult<Vec<u8>> {
    Ok(confab_testkit::pdf(&[sentence])?)
}

#[tokio::test]
async fn files_are_described_in_order_and_the_first_problem_is_named() {
    let w = world().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let notes = w.upload(ada, "notes.txt", b"notes".to_vec()).await.unwrap();
    let photo = w.upload(ada, "dot.png", png(2).unwrap()).await.unwrap();
    let theirs = w
        .upload(bob, "theirs.txt", b"bob's".to_vec())
        .await
        .unwrap();

    let described = w
        .service
        .attachable(ada, &[photo.id, notes.id])
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<Uuid> = described.iter().map(|f| f.id).collect();
    assert_eq!(ids, [photo.id, notes.id]);
    assert_eq!(described[0].kind, FileKind::Image);
    assert_eq!(described[1].name, "notes.txt");
    assert_eq!(described[1].size, 5);
    assert!(
        w.service
            .attachable(ada, &[])
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );

    // Another user's file and a missing one are not found, by id.
    let missing = Uuid::now_v7();
    assert_eq!(
        w.service
            .attachable(ada, &[notes.id, theirs.id])
            .await
            .unwrap(),
        Err(AttachProblem::NotFound(theirs.id))
    );
    assert_eq!(
        w.service.attachable(ada, &[missing]).await.unwrap(),
        Err(AttachProblem::NotFound(missing))
    );

    // Pending and infected files, and the first problem in the order asked wins.
    let pending = w.upload(ada, "a.txt", b"a".to_vec()).await.unwrap();
    w.set_state(pending.id, FileState::Pending).await.unwrap();
    let infected = w.upload(ada, "b.txt", b"b".to_vec()).await.unwrap();
    w.set_state(infected.id, FileState::Infected).await.unwrap();
    assert_eq!(
        w.service
            .attachable(ada, &[notes.id, pending.id, infected.id])
            .await
            .unwrap(),
        Err(AttachProblem::NotReady(pending.id))
    );
    assert_eq!(
        w.service
            .attachable(ada, &[infected.id, pending.id])
            .await
            .unwrap(),
        Err(AttachProblem::Quarantined(infected.id))
    );
    // Pending and infected files give models nothing either.
    assert!(matches!(
        w.service.model_input(ada, pending.id, 100).await,
        Err(FilesError::NotReady)
    ));
    assert!(matches!(
        w.service.model_input(ada, infected.id, 100).await,
        Err(FilesError::Quarantined { .. })
    ));
    assert!(matches!(
        w.service.model_input(bob, notes.id, 100).await,
        Err(FilesError::NotFound(_))
    ));
}

#[tokio::test]
async fn text_is_cut_on_a_character_boundary() {
    let w = world().await.unwrap();
    let ada = Uuid::now_v7();
    // "naïve café": the limit of 3 falls inside "ï" (bytes 2 and 3).
    let text = w
        .upload(ada, "words.txt", "naïve café".as_bytes().to_vec())
        .await
        .unwrap();
    let input = |max| w.service.model_input(ada, text.id, max);
    assert_eq!(
        input(3).await.unwrap(),
        ModelInput::Text {
            text: "na".into(),
            truncated: true
        }
    );
    assert_eq!(
        input(4).await.unwrap(),
        ModelInput::Text {
            text: "naï".into(),
            truncated: true
        }
    );
    assert_eq!(
        input(1000).await.unwrap(),
        ModelInput::Text {
            text: "naïve café".into(),
            truncated: false
        }
    );
    let markdown = w
        .upload(ada, "readme.md", b"# Title\n\nSome *text*.".to_vec())
        .await
        .unwrap();
    assert_eq!(markdown.kind, FileKind::Markdown);
    assert_eq!(
        w.service.model_input(ada, markdown.id, 7).await.unwrap(),
        ModelInput::Text {
            text: "# Title".into(),
            truncated: true
        }
    );
}

#[tokio::test]
async fn images_are_given_as_their_preview_or_small_originals() {
    let w = world().await.unwrap();
    let ada = Uuid::now_v7();
    let original = png(4).unwrap();
    let photo = w.upload(ada, "dot.png", original.clone()).await.unwrap();
    // No variants yet: the small original as it is.
    assert_eq!(
        w.service.model_input(ada, photo.id, 100).await.unwrap(),
        ModelInput::Image {
            content_type: "image/png".into(),
            bytes: original.clone().into()
        }
    );
    // With its variants: the preview.
    w.service.run_variants(&FileJob { file_id: photo.id }).await;
    let (_, preview, preview_type) = w
        .service
        .variant(ada, photo.id, confab_files::domain::Variant::Preview)
        .await
        .unwrap();
    assert_eq!(
        w.service.model_input(ada, photo.id, 100).await.unwrap(),
        ModelInput::Image {
            content_type: preview_type.into(),
            bytes: preview
        }
    );
    // A large image whose preview is not made yet is not ready; a type no job decodes is
    // unreadable.
    let large = w.insert(ada, |f| f.size = 6 * 1024 * 1024).await.unwrap();
    assert!(matches!(
        w.service.model_input(ada, large, 100).await,
        Err(FilesError::Preparing)
    ));
    let bitmap = w
        .insert(ada, |f| f.content_type = "image/bmp".into())
        .await
        .unwrap();
    assert_eq!(
        w.service.model_input(ada, bitmap, 100).await.unwrap(),
        ModelInput::Unreadable
    );
}

#[tokio::test]
async fn a_pdfs_text_is_extracted_once_kept_and_deleted_with_it() {
    let w = world().await.unwrap();
    let ada = Uuid::now_v7();
    let doc = w
        .upload(ada, "paper.pdf", pdf(SENTENCE).unwrap())
        .await
        .unwrap();
    assert_eq!(doc.kind, FileKind::Pdf);
    let ModelInput::Text { text, truncated } =
        w.service.model_input(ada, doc.id, 10_000).await.unwrap()
    else {
        panic!("a PDF with text is text");
    };
    assert!(text.contains(SENTENCE), "{text:?}");
    assert!(!truncated);
    assert!(
        w.has_blob(doc.text_key()).await.unwrap(),
        "the text is kept"
    );
    // Read again from what was kept, cut at a small limit.
    let ModelInput::Text { text, truncated } = w.service.model_input(ada, doc.id, 8).await.unwrap()
    else {
        panic!("a PDF with text is text");
    };
    assert!(
        text.len() <= 8 && SENTENCE.starts_with(text.trim_start()),
        "{text:?}"
    );
    assert!(truncated);

    // A PDF no parser reads is unreadable (and remembered as such); so is one too large.
    let broken = w
        .upload(
            ada,
            "broken.pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec(),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            w.service.model_input(ada, broken.id, 100).await.unwrap(),
            ModelInput::Unreadable
        );
    }
    let huge = w
        .insert(ada, |f| {
            f.kind = FileKind::Pdf;
            f.content_type = "application/pdf".into();
            f.size = confab_files::service::PDF_MAX_BYTES + 1;
        })
        .await
        .unwrap();
    assert_eq!(
        w.service.model_input(ada, huge, 100).await.unwrap(),
        ModelInput::Unreadable
    );

    // Audio is unreadable.
    let wav = w
        .upload(
            ada,
            "a.wav",
            b"RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        w.service.model_input(ada, wav.id, 100).await.unwrap(),
        ModelInput::Unreadable
    );

    // Deleted with its file.
    w.service.delete(ada, doc.id).await.unwrap();
    assert!(!w.has_blob(doc.text_key()).await.unwrap());
    assert!(!w.has_blob(doc.blob_key()).await.unwrap());
}

#[tokio::test]
async fn several_files_are_deleted_skipping_those_gone() {
    let w = world().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let one = w.upload(ada, "one.txt", b"1".to_vec()).await.unwrap();
    let two = w.upload(ada, "two.txt", b"2".to_vec()).await.unwrap();
    let theirs = w.upload(bob, "three.txt", b"3".to_vec()).await.unwrap();
    let deleted = w
        .service
        .delete_many(ada, &[one.id, Uuid::now_v7(), two.id, theirs.id, one.id])
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(
        w.service.attachable(ada, &[one.id]).await.unwrap(),
        Err(AttachProblem::NotFound(one.id))
    );
    assert!(!w.has_blob(two.blob_key()).await.unwrap());
    // Another user's file stays.
    assert!(
        w.service
            .attachable(bob, &[theirs.id])
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(w.service.usage(ada).await.unwrap().files, 0);
}
