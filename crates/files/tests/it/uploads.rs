//! The contract of [`UploadStore`] on [`SqlFileStore`] (SQLite, or PostgreSQL with
//! `TEST_BACKEND=postgres`): an owner's open uploads are capped, exactly under concurrency;
//! parts are recorded once; another owner's ids find nothing; expired uploads are listed.

use std::error::Error;
use std::sync::Arc;

use confab_core::config::DatabaseConfig;
use confab_files::ports::{UploadRecord, UploadStore};
use confab_files::store::{SqlFileStore, migrations};
use confab_store::Db;
use confab_testkit::TestDb;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A store over a fresh database with both ports.
async fn upload_store() -> Result<(SqlFileStore, TestDb), Box<dyn Error + Send + Sync>> {
    let test_db = TestDb::new().await?;
    let db = Db::connect(&test_db.url, &DatabaseConfig::default()).await?;
    migrations().run(&db).await?;
    Ok((SqlFileStore::new(db), test_db))
}

fn upload(owner: Uuid, expires_ms: i64) -> UploadRecord {
    UploadRecord {
        id: Uuid::now_v7(),
        owner,
        name: "big.bin".into(),
        declared_type: Some("video/mp4".into()),
        size: 20 << 20,
        part_bytes: 8 << 20,
        created_ms: 1,
        expires_ms,
    }
}

#[tokio::test]
async fn uploads_are_capped_per_owner_and_keep_their_parts_once() {
    let (store, _db) = upload_store().await.unwrap();
    let owner = Uuid::now_v7();
    let first = upload(owner, 10_000);
    assert_eq!(first.parts(), 3);
    assert_eq!(first.part_len(2), Some(4 << 20));
    assert_eq!(first.part_len(3), None);
    assert!(store.create_upload(&first, 2).await.unwrap());
    assert!(
        store
            .create_upload(&upload(owner, 10_000), 2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_upload(&upload(owner, 10_000), 2)
            .await
            .unwrap(),
        "the cap"
    );
    assert!(
        store
            .create_upload(&upload(Uuid::now_v7(), 10_000), 2)
            .await
            .unwrap()
    );
    assert_eq!(
        store.upload(owner, first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.upload(Uuid::now_v7(), first.id).await.unwrap(),
        None,
        "another owner"
    );

    for n in [2, 0, 2] {
        store.add_part(first.id, n).await.unwrap();
    }
    assert_eq!(store.parts(first.id).await.unwrap(), vec![0, 2]);
    assert_eq!(store.owned_uploads(owner).await.unwrap().len(), 2);
    assert!(store.delete_upload(first.id).await.unwrap());
    assert!(!store.delete_upload(first.id).await.unwrap());
    assert!(store.parts(first.id).await.unwrap().is_empty());
    assert!(
        store
            .create_upload(&upload(owner, 10_000), 2)
            .await
            .unwrap(),
        "room again"
    );
}

#[tokio::test]
async fn concurrent_uploads_never_pass_the_open_cap() {
    let (store, _db) = upload_store().await.unwrap();
    let store = Arc::new(store);
    let owner = Uuid::now_v7();
    let mut set = JoinSet::new();
    for _ in 0..12 {
        let store = store.clone();
        set.spawn(async move {
            store
                .create_upload(&upload(owner, 10_000), 4)
                .await
                .unwrap()
        });
    }
    let created = set.join_all().await.into_iter().filter(|c| *c).count();
    assert_eq!(created, 4);
    assert_eq!(store.owned_uploads(owner).await.unwrap().len(), 4);
}

#[tokio::test]
async fn expired_uploads_are_listed_oldest_first() {
    let (store, _db) = upload_store().await.unwrap();
    let owner = Uuid::now_v7();
    let (late, early, live) = (upload(owner, 200), upload(owner, 100), upload(owner, 5_000));
    for u in [&late, &early, &live] {
        assert!(store.create_upload(u, 10).await.unwrap());
    }
    let expired = store.expired_uploads(1_000, 10).await.unwrap();
    assert_eq!(
        expired.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![early.id, late.id]
    );
    assert_eq!(store.expired_uploads(1_000, 1).await.unwrap().len(), 1);
}
