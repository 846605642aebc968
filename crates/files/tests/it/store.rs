//! The contract of [`FileStore`], run on [`SqlFileStore`] over the backend under test (SQLite
//! by default, PostgreSQL with `TEST_BACKEND=postgres`): every owner-facing method names the
//! owner and another owner's ids find nothing; listings are newest first with an exclusive
//! cursor; usage moves with inserts and deletes, a refused insert writes nothing, and
//! concurrent inserts never pass the quota; states move only from the expected one; links go
//! with their file; every caller gets the first link key; an owner is forgotten only without
//! files.
//! The resumable uploads' part is in `uploads.rs`.

use std::error::Error;
use std::sync::Arc;

use confab_core::config::DatabaseConfig;
use confab_files::domain::{FileKind, FileRecord, FileState, LinkRecord, Quota, Usage};
use confab_files::ports::{FileStore, OverQuota};
use confab_files::store::{SqlFileStore, migrations};
use confab_store::{Db, StoreError};
use confab_testkit::TestDb;
use tokio::task::JoinSet;
use uuid::Uuid;

const ROOMY: Quota = Quota {
    max_bytes: 1 << 40,
    max_files: 10_000,
};

/// A store over a fresh, migrated database, and the database (dropped at the test's end).
async fn sql_store() -> Result<(Arc<dyn FileStore>, TestDb), Box<dyn Error + Send + Sync>> {
    let test_db = TestDb::new().await?;
    let db = Db::connect(&test_db.url, &DatabaseConfig::default()).await?;
    migrations().run(&db).await?;
    Ok((Arc::new(SqlFileStore::new(db)), test_db))
}

fn record(owner: Uuid, size: u64) -> FileRecord {
    FileRecord {
        id: Uuid::now_v7(),
        owner,
        name: "notes.txt".into(),
        content_type: "text/plain".into(),
        kind: FileKind::Text,
        size,
        sha256: "ab".repeat(32),
        state: FileState::Pending,
        threat: None,
        width: None,
        height: None,
        variants: false,
        created_ms: 1_700_000_000_000,
        scanned_ms: None,
    }
}

/// `n` records of `owner` whose ids are in creation order, oldest first.
fn records(owner: Uuid, n: usize) -> Vec<FileRecord> {
    let mut ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    ids.sort();
    ids.into_iter()
        .map(|id| FileRecord {
            id,
            ..record(owner, 10)
        })
        .collect()
}

fn ids(files: &[FileRecord]) -> Vec<Uuid> {
    files.iter().map(|f| f.id).collect()
}

#[tokio::test]
async fn files_belong_to_their_owner() {
    let (store, _db) = sql_store().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut photo = FileRecord {
        name: "cat.png".into(),
        content_type: "image/png".into(),
        kind: FileKind::Image,
        state: FileState::Infected,
        threat: Some("Eicar-Test-Signature".into()),
        width: Some(640),
        height: Some(480),
        variants: true,
        scanned_ms: Some(1_700_000_000_500),
        ..record(ada, u64::from(u32::MAX) + 7)
    };
    store.insert(&photo, ROOMY).await.unwrap().unwrap();

    assert_eq!(store.get(ada, photo.id).await.unwrap(), Some(photo.clone()));
    assert_eq!(store.get_any(photo.id).await.unwrap(), Some(photo.clone()));
    assert_eq!(store.get(bob, photo.id).await.unwrap(), None);
    assert_eq!(store.get_any(Uuid::now_v7()).await.unwrap(), None);
    assert!(store.list(bob, None, 10).await.unwrap().is_empty());
    assert!(store.owned(bob, 10).await.unwrap().is_empty());

    // Bob cannot delete it, nor link to it, nor see its links.
    assert_eq!(store.delete(bob, photo.id).await.unwrap(), None);
    let link = link_to(&photo, ada);
    store.insert_link(&link).await.unwrap();
    let stolen = LinkRecord {
        id: Uuid::now_v7(),
        owner: bob,
        ..link.clone()
    };
    assert!(matches!(
        store.insert_link(&stolen).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.links(bob, photo.id).await.unwrap().is_empty());
    assert!(!store.revoke_link(bob, link.id).await.unwrap());
    assert!(!store.link(link.id).await.unwrap().unwrap().revoked);
    assert_eq!(store.usage(bob).await.unwrap(), Usage::default());
    assert_eq!(store.get(ada, photo.id).await.unwrap(), Some(photo.clone()));

    // The same id twice is a conflict, and the usage counts the file once.
    photo.name = "again.png".into();
    assert!(matches!(
        store.insert(&photo, ROOMY).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.usage(ada).await.unwrap(),
        Usage {
            bytes: photo.size,
            files: 1
        }
    );
}

#[tokio::test]
async fn listings_are_newest_first_with_an_exclusive_cursor() {
    let (store, _db) = sql_store().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let files = records(ada, 5);
    // Inserted out of order: the order comes from the ids.
    for i in [2, 0, 4, 1, 3] {
        store.insert(&files[i], ROOMY).await.unwrap().unwrap();
    }
    store
        .insert(&record(bob, 10), ROOMY)
        .await
        .unwrap()
        .unwrap();
    let newest_first: Vec<Uuid> = ids(&files).into_iter().rev().collect();

    let all = store.list(ada, None, 10).await.unwrap();
    assert_eq!(ids(&all), newest_first);
    let page = store.list(ada, None, 2).await.unwrap();
    assert_eq!(ids(&page), newest_first[..2]);
    let next = store.list(ada, Some(page[1].id), 2).await.unwrap();
    assert_eq!(ids(&next), newest_first[2..4]);
    let last = store.list(ada, Some(next[1].id), 2).await.unwrap();
    assert_eq!(ids(&last), newest_first[4..]);
    assert!(
        store
            .list(ada, Some(files[0].id), 2)
            .await
            .unwrap()
            .is_empty()
    );

    // The purge's listing is oldest first.
    assert_eq!(ids(&store.owned(ada, 10).await.unwrap()), ids(&files));
    assert_eq!(ids(&store.owned(ada, 2).await.unwrap()), ids(&files[..2]));
}

#[tokio::test]
async fn usage_follows_inserts_and_deletes() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    assert_eq!(store.usage(ada).await.unwrap(), Usage::default());
    let (small, large) = (record(ada, 100), record(ada, 2_500));
    store.insert(&small, ROOMY).await.unwrap().unwrap();
    store.insert(&large, ROOMY).await.unwrap().unwrap();
    assert_eq!(
        store.usage(ada).await.unwrap(),
        Usage {
            bytes: 2_600,
            files: 2
        }
    );

    assert_eq!(
        store.delete(ada, large.id).await.unwrap(),
        Some(large.clone())
    );
    assert_eq!(store.get(ada, large.id).await.unwrap(), None);
    assert_eq!(
        store.usage(ada).await.unwrap(),
        Usage {
            bytes: 100,
            files: 1
        }
    );
    // A second delete finds nothing and gives nothing back.
    assert_eq!(store.delete(ada, large.id).await.unwrap(), None);
    assert_eq!(store.delete(ada, small.id).await.unwrap(), Some(small));
    assert_eq!(store.usage(ada).await.unwrap(), Usage::default());
}

#[tokio::test]
async fn an_insert_over_the_quota_writes_nothing() {
    let (store, _db) = sql_store().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let quota = Quota {
        max_bytes: 1_000,
        max_files: 3,
    };
    let first = record(ada, 600);
    store.insert(&first, quota).await.unwrap().unwrap();
    let held = Usage {
        bytes: 600,
        files: 1,
    };

    // By bytes: 600 + 401 > 1000.
    let too_big = record(ada, 401);
    assert_eq!(
        store.insert(&too_big, quota).await.unwrap(),
        Err(OverQuota { usage: held })
    );
    assert_eq!(store.get(ada, too_big.id).await.unwrap(), None);
    assert_eq!(store.usage(ada).await.unwrap(), held);

    // Exactly up to the limit passes.
    store
        .insert(&record(ada, 400), quota)
        .await
        .unwrap()
        .unwrap();
    store.insert(&record(ada, 0), quota).await.unwrap().unwrap();
    let full = Usage {
        bytes: 1_000,
        files: 3,
    };
    assert_eq!(store.usage(ada).await.unwrap(), full);

    // By count: a fourth file, even an empty one, is refused.
    let fourth = record(ada, 0);
    assert_eq!(
        store.insert(&fourth, quota).await.unwrap(),
        Err(OverQuota { usage: full })
    );
    assert_eq!(store.get(ada, fourth.id).await.unwrap(), None);
    assert_eq!(store.list(ada, None, 10).await.unwrap().len(), 3);
    assert_eq!(store.usage(ada).await.unwrap(), full);

    // A new owner refused on the first file leaves no usage row behind.
    let huge = record(bob, 1_001);
    assert_eq!(
        store.insert(&huge, quota).await.unwrap(),
        Err(OverQuota {
            usage: Usage::default()
        })
    );
    assert_eq!(store.usage(bob).await.unwrap(), Usage::default());
    let owners: Vec<Uuid> = store
        .storage(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(owner, _)| owner)
        .collect();
    assert_eq!(owners, [ada]);

    // An unlimited quota does not overflow.
    let unlimited = Quota {
        max_bytes: u64::MAX,
        max_files: u64::MAX,
    };
    store
        .insert(&record(bob, 5), unlimited)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_never_pass_the_quota() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    let quota = Quota {
        max_bytes: 1_000,
        max_files: 100,
    };
    let mut inserts = JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        inserts.spawn(async move { store.insert(&record(ada, 100), quota).await });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(outcome) = inserts.join_next().await {
        match outcome.unwrap().unwrap() {
            Ok(()) => stored += 1,
            Err(OverQuota { usage }) => {
                // Refused only once the room was really gone.
                assert_eq!(
                    usage,
                    Usage {
                        bytes: 1_000,
                        files: 10
                    }
                );
                refused += 1;
            }
        }
    }
    assert_eq!((stored, refused), (10, 10));
    assert_eq!(
        store.usage(ada).await.unwrap(),
        Usage {
            bytes: 1_000,
            files: 10
        }
    );
    assert_eq!(store.list(ada, None, 100).await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_never_pass_the_file_count() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    let quota = Quota {
        max_bytes: 1 << 30,
        max_files: 7,
    };
    let mut inserts = JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        inserts.spawn(async move { store.insert(&record(ada, 1), quota).await });
    }
    let mut stored = 0;
    while let Some(outcome) = inserts.join_next().await {
        if outcome.unwrap().unwrap().is_ok() {
            stored += 1;
        }
    }
    assert_eq!(stored, 7);
    assert_eq!(
        store.usage(ada).await.unwrap(),
        Usage { bytes: 7, files: 7 }
    );
}

#[tokio::test]
async fn states_move_only_from_the_expected_one() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    let (clean, infected) = (record(ada, 10), record(ada, 10));
    store.insert(&clean, ROOMY).await.unwrap().unwrap();
    store.insert(&infected, ROOMY).await.unwrap().unwrap();

    assert!(
        store
            .set_state(clean.id, FileState::Pending, FileState::Clean, None, 5)
            .await
            .unwrap()
    );
    // A second worker with the same expectation finds it moved already.
    assert!(
        !store
            .set_state(
                clean.id,
                FileState::Pending,
                FileState::Infected,
                Some("X"),
                6
            )
            .await
            .unwrap()
    );
    let got = store.get(ada, clean.id).await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.threat, got.scanned_ms),
        (FileState::Clean, None, Some(5))
    );

    assert!(
        store
            .set_state(
                infected.id,
                FileState::Pending,
                FileState::Infected,
                Some("Eicar-Test-Signature"),
                7
            )
            .await
            .unwrap()
    );
    let got = store.get(ada, infected.id).await.unwrap().unwrap();
    assert_eq!(got.state, FileState::Infected);
    assert_eq!(got.threat.as_deref(), Some("Eicar-Test-Signature"));
    assert_eq!(got.scanned_ms, Some(7));

    assert!(
        !store
            .set_state(
                Uuid::now_v7(),
                FileState::Pending,
                FileState::Clean,
                None,
                8
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn variants_are_recorded() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    let image = record(ada, 10);
    store.insert(&image, ROOMY).await.unwrap().unwrap();
    store.set_variants(image.id, 4_000, 3_000).await.unwrap();
    let got = store.get(ada, image.id).await.unwrap().unwrap();
    assert_eq!(
        (got.width, got.height, got.variants),
        (Some(4_000), Some(3_000), true)
    );
    assert!(matches!(
        store.set_variants(Uuid::now_v7(), 1, 1).await,
        Err(StoreError::NotFound)
    ));
}

fn link_to(file: &FileRecord, owner: Uuid) -> LinkRecord {
    LinkRecord {
        id: Uuid::now_v7(),
        file_id: file.id,
        owner,
        expires_ms: 1_800_000_000_000,
        created_ms: 1_700_000_000_000,
        revoked: false,
    }
}

#[tokio::test]
async fn links_are_listed_revoked_and_go_with_their_file() {
    let (store, _db) = sql_store().await.unwrap();
    let ada = Uuid::now_v7();
    let (doc, other) = (record(ada, 10), record(ada, 10));
    store.insert(&doc, ROOMY).await.unwrap().unwrap();
    store.insert(&other, ROOMY).await.unwrap().unwrap();
    let (first, second) = (link_to(&doc, ada), link_to(&doc, ada));
    let elsewhere = link_to(&other, ada);
    for link in [&first, &second, &elsewhere] {
        store.insert_link(link).await.unwrap();
    }
    assert!(matches!(
        store.insert_link(&first).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.insert_link(&link_to(&record(ada, 1), ada)).await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(store.link(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.links(ada, doc.id).await.unwrap(),
        [second.clone(), first.clone()]
    );

    assert!(store.revoke_link(ada, first.id).await.unwrap());
    assert!(store.link(first.id).await.unwrap().unwrap().revoked);
    assert!(!store.link(second.id).await.unwrap().unwrap().revoked);
    assert!(!store.revoke_link(ada, Uuid::now_v7()).await.unwrap());

    store.delete(ada, doc.id).await.unwrap().unwrap();
    assert_eq!(store.link(first.id).await.unwrap(), None);
    assert_eq!(store.link(second.id).await.unwrap(), None);
    assert!(store.links(ada, doc.id).await.unwrap().is_empty());
    assert_eq!(store.link(elsewhere.id).await.unwrap(), Some(elsewhere));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_caller_gets_the_first_link_key() {
    let (store, _db) = sql_store().await.unwrap();
    let first = store.link_key(&[1; 32]).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(store.link_key(&[2; 32]).await.unwrap(), first);

    // Replicas starting together on a fresh database agree on one of their keys.
    let (fresh, _db) = sql_store().await.unwrap();
    let mut callers = JoinSet::new();
    for n in 0..8u8 {
        let store = fresh.clone();
        callers.spawn(async move { store.link_key(&[n; 32]).await.unwrap() });
    }
    let keys: Vec<Vec<u8>> = callers.join_all().await;
    assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");
    assert!(keys[0].iter().all(|b| *b == keys[0][0]) && keys[0].len() == 32);
}

#[tokio::test]
async fn the_admin_views_span_owners() {
    let (store, _db) = sql_store().await.unwrap();
    let (ada, bob, cy) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let a = records(ada, 3);
    for f in &a {
        store.insert(f, ROOMY).await.unwrap().unwrap();
    }
    let big = record(bob, 5_000);
    store.insert(&big, ROOMY).await.unwrap().unwrap();
    let gone = record(cy, 1);
    store.insert(&gone, ROOMY).await.unwrap().unwrap();
    store.delete(cy, gone.id).await.unwrap().unwrap();
    for f in [&a[0], &a[2], &big] {
        assert!(
            store
                .set_state(f.id, FileState::Pending, FileState::Clean, None, 1)
                .await
                .unwrap()
        );
    }

    // Newest first, across owners, with the cursor.
    let clean = store.by_state(FileState::Clean, None, 10).await.unwrap();
    assert_eq!(ids(&clean), [big.id, a[2].id, a[0].id]);
    let page = store
        .by_state(FileState::Clean, Some(big.id), 1)
        .await
        .unwrap();
    assert_eq!(ids(&page), [a[2].id]);
    let pending = store.by_state(FileState::Pending, None, 10).await.unwrap();
    assert_eq!(ids(&pending), [a[1].id]);
    assert!(
        store
            .by_state(FileState::Infected, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Largest first; an owner with nothing left is not listed.
    let storage = store.storage(10).await.unwrap();
    assert_eq!(
        storage,
        [
            (
                bob,
                Usage {
                    bytes: 5_000,
                    files: 1
                }
            ),
            (
                ada,
                Usage {
                    bytes: 30,
                    files: 3
                }
            ),
        ]
    );
    assert_eq!(store.storage(1).await.unwrap().len(), 1);

    let (counts, bytes) = store.totals().await.unwrap();
    assert_eq!(
        counts,
        [
            (FileState::Pending, 1),
            (FileState::Clean, 3),
            (FileState::Infected, 0),
            (FileState::Unscanned, 0),
        ]
    );
    assert_eq!(bytes, 5_030);
}

#[tokio::test]
async fn an_empty_store_has_empty_totals() {
    let (store, _db) = sql_store().await.unwrap();
    let (counts, bytes) = store.totals().await.unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0));
    assert_eq!(counts.len(), FileState::ALL.len());
    assert_eq!(bytes, 0);
    assert!(store.storage(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_owner_is_forgotten_only_without_files() {
    let (store, _db) = sql_store().await.unwrap();
    let owner = Uuid::now_v7();
    let file = record(owner, 10);
    store.insert(&file, ROOMY).await.unwrap().unwrap();
    assert!(!store.forget_owner(owner).await.unwrap(), "a file is left");
    assert_eq!(store.usage(owner).await.unwrap().files, 1);
    store.delete(owner, file.id).await.unwrap().unwrap();
    assert!(store.forget_owner(owner).await.unwrap());
    assert_eq!(store.usage(owner).await.unwrap(), Usage::default());
    assert!(store.storage(10).await.unwrap().is_empty());
}
