//! The checks each backend must pass.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use confab_blob::{BlobError, BlobKey, BlobStore, ByteStream, PART_BYTES};
use futures::{StreamExt, TryStreamExt};

fn key(k: &str) -> BlobKey {
    BlobKey::new(k).unwrap()
}

async fn read_all(store: &dyn BlobStore, k: &BlobKey) -> Vec<u8> {
    let read = store.get(k, None).await.unwrap();
    let chunks: Vec<Bytes> = read.body.try_collect().await.unwrap();
    chunks.concat()
}

/// A body of `len` bytes in chunks of `chunk` (a pattern that shows misplaced bytes).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn chunked(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

pub async fn bytes_round_trip_and_replace(store: &dyn BlobStore) {
    let k = key("files/one/original");
    let meta = store.put(&k, Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!((meta.key.as_str(), meta.size), ("files/one/original", 5));
    assert_eq!(read_all(store, &k).await, b"hello");
    let head = store.head(&k).await.unwrap();
    assert_eq!((head.key.as_str(), head.size), ("files/one/original", 5));
    assert!(head.modified_ms > 1_700_000_000_000, "{head:?}");
    // Replacing: the new bytes, whole.
    store.put(&k, Bytes::from_static(b"bye")).await.unwrap();
    assert_eq!(read_all(store, &k).await, b"bye");
    // An empty blob is a blob.
    let empty = key("files/empty");
    store.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(store.head(&empty).await.unwrap().size, 0);
    assert!(read_all(store, &empty).await.is_empty());
}

pub async fn missing_blobs_are_not_found_and_deleting_them_is_fine(store: &dyn BlobStore) {
    let k = key("nothing/here");
    assert!(matches!(store.head(&k).await, Err(BlobError::NotFound(_))));
    assert!(matches!(
        store.get(&k, None).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&k, Some(0..1)).await,
        Err(BlobError::NotFound(_))
    ));
    store.delete(&k).await.unwrap();
    let there = key("a/b");
    store.put(&there, Bytes::from_static(b"x")).await.unwrap();
    store.delete(&there).await.unwrap();
    assert!(matches!(
        store.head(&there).await,
        Err(BlobError::NotFound(_))
    ));
    store.delete(&there).await.unwrap();
    assert!(store.list(None).await.unwrap().is_empty());
}

pub async fn streamed_writes_of_many_parts_arrive_whole(store: &dyn BlobStore) {
    // Two and a half parts, in odd-sized chunks.
    let data = pattern(PART_BYTES * 2 + PART_BYTES / 2 + 7);
    let k = key("big/blob");
    let meta = store
        .put_stream(&k, chunked(data.clone(), 300_001))
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(store.head(&k).await.unwrap().size, data.len() as u64);
    assert!(read_all(store, &k).await == data, "the bytes differ");
    // A short streamed body is one write.
    let small = key("big/small");
    store
        .put_stream(&small, chunked(b"tiny body".to_vec(), 2))
        .await
        .unwrap();
    assert_eq!(read_all(store, &small).await, b"tiny body");
    // So is an empty one.
    let none = key("big/none");
    store
        .put_stream(&none, futures::stream::empty().boxed())
        .await
        .unwrap();
    assert_eq!(store.head(&none).await.unwrap().size, 0);
}

/// A body that yields `good` bytes, then fails.
fn failing_after(good: usize) -> ByteStream {
    let data = pattern(good);
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .chain(std::iter::once(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the client went away",
        ))))
        .collect();
    futures::stream::iter(chunks).boxed()
}

pub async fn a_failing_body_leaves_nothing_behind(store: &dyn BlobStore) {
    // Within the first part, and after parts were sent.
    for (name, good) in [("early", 1000), ("late", PART_BYTES * 2 + 5)] {
        let k = key(&format!("fail/{name}"));
        let error = store.put_stream(&k, failing_after(good)).await.unwrap_err();
        assert!(matches!(error, BlobError::Body(_)), "{error:?}");
        assert!(
            matches!(store.head(&k).await, Err(BlobError::NotFound(_))),
            "{name}: something is visible"
        );
    }
    // A failed replacement keeps the old blob whole.
    let k = key("fail/replace");
    store.put(&k, Bytes::from_static(b"old")).await.unwrap();
    store
        .put_stream(&k, failing_after(PART_BYTES + 1))
        .await
        .unwrap_err();
    assert_eq!(read_all(store, &k).await, b"old");
    let listed: Vec<String> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, ["fail/replace"]);
}

pub async fn a_dropped_write_leaves_nothing_behind(store: &dyn BlobStore) {
    let k = key("dropped/blob");
    // A body that sends two parts' worth, then never ends: the caller gives up.
    let data = pattern(PART_BYTES * 2 + 1);
    let body = chunked(data, 1 << 20)
        .chain(futures::stream::pending())
        .boxed();
    let write = store.put_stream(&k, body);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), write)
            .await
            .is_err(),
        "the write waits for the rest of the body"
    );
    // The abort runs in the background.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(store.head(&k).await, Err(BlobError::NotFound(_))));
    assert!(store.list(None).await.unwrap().is_empty());
}

pub async fn ranges_are_served_and_checked(store: &dyn BlobStore) {
    let k = key("ranged");
    store
        .put(&k, Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let read = store.get(&k, Some(2..5)).await.unwrap();
    assert_eq!(read.range, 2..5);
    assert_eq!(read.meta.size, 10);
    let body: Vec<Bytes> = read.body.try_collect().await.unwrap();
    assert_eq!(body.concat(), b"234");
    // A range that runs past the end is served to the end.
    let read = store.get(&k, Some(8..100)).await.unwrap();
    assert_eq!(read.range, 8..10);
    let body: Vec<Bytes> = read.body.try_collect().await.unwrap();
    assert_eq!(body.concat(), b"89");
    // One that starts at or past the end, or is empty, is refused.
    for range in [10..12, 50..60, 3..3] {
        match store.get(&k, Some(range.clone())).await {
            Err(BlobError::InvalidRange { size: 10, .. }) => {}
            other => panic!("{range:?}: {other:?}"),
        }
    }
}

pub async fn listing_is_by_whole_segments_in_key_order(store: &dyn BlobStore) {
    for k in ["a/b/2", "a/b/1", "a/bc/1", "a/b/c/d", "z"] {
        store.put(&key(k), Bytes::from_static(b"x")).await.unwrap();
    }
    let keys = |listed: Vec<confab_blob::BlobMeta>| -> Vec<String> {
        listed.into_iter().map(|m| m.key).collect()
    };
    assert_eq!(
        keys(store.list(Some(&key("a/b"))).await.unwrap()),
        ["a/b/1", "a/b/2", "a/b/c/d"]
    );
    assert_eq!(
        keys(store.list(None).await.unwrap()),
        ["a/b/1", "a/b/2", "a/b/c/d", "a/bc/1", "z"]
    );
    assert!(store.list(Some(&key("nope"))).await.unwrap().is_empty());
}

pub async fn presigned_links_are_s3s_alone(store: &dyn BlobStore) {
    let k = key("p");
    store.put(&k, Bytes::from_static(b"x")).await.unwrap();
    let url = store
        .presign_get(&k, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(url.is_some(), store.location().starts_with("s3://"));
}

/// No staged file (a write that did not finish) is left in a local store's directory.
pub fn no_staged_files_left(dir: &Path) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !name.contains('#'),
                    "a staged file is left: {}",
                    path.display()
                );
            }
        }
    }
}
