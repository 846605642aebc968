//! Encryption at rest ([`EncryptedBlobs`]): beyond the contract (run against it over memory, a
//! local directory and S3 in main.rs), what is stored is unreadable without the key, and an
//! altered, truncated, reordered or moved blob fails to read rather than reading wrong.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_blob::{
    BlobError, BlobKey, BlobStore, ByteStream, EncryptedBlobs, HEADER_BYTES, ObjectBlobs,
    SEGMENT_BYTES, plain_size, stored_size,
};
use futures::{StreamExt, TryStreamExt};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210-test";
const SEALED: usize = SEGMENT_BYTES + 16;

/// `inner`, encrypted under the test secret.
pub fn over(inner: ObjectBlobs) -> EncryptedBlobs {
    EncryptedBlobs::new(Arc::new(inner), SECRET).unwrap()
}

/// An encrypted memory store, and the store under it.
fn stores() -> (EncryptedBlobs, Arc<dyn BlobStore>) {
    let inner: Arc<dyn BlobStore> = Arc::new(ObjectBlobs::memory());
    (EncryptedBlobs::new(inner.clone(), SECRET).unwrap(), inner)
}

fn key(k: &str) -> BlobKey {
    BlobKey::new(k).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn chunked(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn read(
    store: &dyn BlobStore,
    k: &BlobKey,
    range: Option<std::ops::Range<u64>>,
) -> Result<Vec<u8>, String> {
    let read = store.get(k, range).await.map_err(|e| e.to_string())?;
    let chunks: Vec<Bytes> = read.body.try_collect().await.map_err(|e| e.to_string())?;
    Ok(chunks.concat())
}

async fn stored(inner: &dyn BlobStore, k: &BlobKey) -> Vec<u8> {
    read(inner, k, None).await.unwrap()
}

#[test]
fn sizes_convert_both_ways_and_odd_sizes_are_refused() {
    for plain in [
        0,
        1,
        100,
        SEGMENT_BYTES - 1,
        SEGMENT_BYTES,
        SEGMENT_BYTES + 1,
        3 * SEGMENT_BYTES,
        3 * SEGMENT_BYTES + 17,
    ] {
        let plain = plain as u64;
        assert_eq!(plain_size(stored_size(plain)), Some(plain), "{plain}");
    }
    assert_eq!(stored_size(0), (HEADER_BYTES + 16) as u64);
    let header = HEADER_BYTES as u64;
    for odd in [
        0,
        header - 1,
        header,
        header + 15,
        header + SEALED as u64 + 16,
    ] {
        assert_eq!(plain_size(odd), None, "{odd}");
    }
}

#[test]
fn short_secrets_are_refused() {
    let inner: Arc<dyn BlobStore> = Arc::new(ObjectBlobs::memory());
    let error = EncryptedBlobs::new(inner.clone(), "too short").unwrap_err();
    assert_eq!(error.min, 32);
    assert!(EncryptedBlobs::new(inner, &"x".repeat(32)).is_ok());
}

#[tokio::test]
async fn what_is_stored_is_not_the_plaintext() {
    let (store, inner) = stores();
    let secret_text = b"the launch code is 0000; tell no one. ".repeat(5000);
    let k = key("files/secret");
    let meta = store
        .put(&k, Bytes::from(secret_text.clone()))
        .await
        .unwrap();
    assert_eq!(meta.size, secret_text.len() as u64);
    let raw = stored(&*inner, &k).await;
    assert_eq!(raw.len() as u64, stored_size(secret_text.len() as u64));
    assert!(raw.starts_with(b"CFE1"));
    assert!(
        !raw.windows(12).any(|w| w == b"launch code "),
        "the plaintext shows in what is stored"
    );
    assert_eq!(read(&store, &k, None).await.unwrap(), secret_text);
    // The same plaintext twice is stored differently (a fresh data key each time).
    store
        .put(&k, Bytes::from(secret_text.clone()))
        .await
        .unwrap();
    assert_ne!(stored(&*inner, &k).await, raw);
    assert_eq!(store.location(), "encrypted+memory://");
    assert_eq!(
        store
            .presign_get(&k, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn ranges_inside_across_and_at_the_end() {
    let (store, _) = stores();
    let data = pattern(3 * SEGMENT_BYTES + 1000);
    let len = data.len() as u64;
    let k = key("ranged/big");
    store.put(&k, Bytes::from(data.clone())).await.unwrap();
    let seg = SEGMENT_BYTES as u64;
    for range in [
        0..1,
        10..100,
        seg - 10..seg + 10,
        seg..2 * seg,
        100..2 * seg + 5,
        0..len,
        len - 5..len,
        3 * seg..len,
        len - 1..len,
    ] {
        let got = store.get(&k, Some(range.clone())).await.unwrap();
        assert_eq!(got.range, range, "{range:?}");
        assert_eq!(got.meta.size, len);
        let body: Vec<Bytes> = got.body.try_collect().await.unwrap();
        assert!(
            body.concat() == data[range.start as usize..range.end as usize],
            "{range:?}: the bytes differ"
        );
    }
    // Past the end: served to the end; starting at or past it, or empty: refused.
    let got = store.get(&k, Some(len - 3..len + 1000)).await.unwrap();
    assert_eq!(got.range, len - 3..len);
    let body: Vec<Bytes> = got.body.try_collect().await.unwrap();
    assert_eq!(body.concat(), data[data.len() - 3..]);
    for range in [len..len + 1, len + 100..len + 200, 5..5] {
        match store.get(&k, Some(range.clone())).await {
            Err(BlobError::InvalidRange { size, .. }) => assert_eq!(size, len),
            other => panic!("{range:?}: {other:?}"),
        }
    }
    // An empty blob: whole, it reads empty; any range is refused.
    let empty = key("ranged/empty");
    store.put(&empty, Bytes::new()).await.unwrap();
    assert!(read(&store, &empty, None).await.unwrap().is_empty());
    assert!(matches!(
        store.get(&empty, Some(0..1)).await,
        Err(BlobError::InvalidRange { size: 0, .. })
    ));
}

#[tokio::test]
async fn altered_blobs_fail_to_read() {
    let (store, inner) = stores();
    let data = pattern(2 * SEGMENT_BYTES + 500);
    let k = key("altered/blob");
    store.put(&k, Bytes::from(data.clone())).await.unwrap();
    let original = stored(&*inner, &k).await;
    let seg = SEGMENT_BYTES as u64;

    // A ciphertext byte flipped, in the first segment and in the last.
    for at in [HEADER_BYTES + 5, original.len() - 20, original.len() - 1] {
        let mut flipped = original.clone();
        flipped[at] ^= 0x01;
        inner.put(&k, Bytes::from(flipped)).await.unwrap();
        assert!(read(&store, &k, None).await.is_err(), "flipped at {at}");
        let segment_range = if at < HEADER_BYTES + SEALED {
            0..10
        } else {
            2 * seg..2 * seg + 10
        };
        assert!(
            read(&store, &k, Some(segment_range)).await.is_err(),
            "flipped at {at}, ranged"
        );
    }
    // The wrapped data key altered: refused before anything streams.
    let mut flipped = original.clone();
    flipped[20] ^= 0x80;
    inner.put(&k, Bytes::from(flipped)).await.unwrap();
    match store.get(&k, None).await {
        Err(BlobError::Unavailable(why)) => assert!(why.contains("cannot be decrypted"), "{why}"),
        other => panic!("{other:?}"),
    }

    // Truncated by its last segment: the one before it was not sealed as the last.
    let truncated = original[..HEADER_BYTES + 2 * SEALED].to_vec();
    inner.put(&k, Bytes::from(truncated)).await.unwrap();
    assert!(read(&store, &k, None).await.is_err());
    assert!(read(&store, &k, Some(seg + 5..seg + 10)).await.is_err());
    // Truncated by a byte.
    inner
        .put(&k, Bytes::copy_from_slice(&original[..original.len() - 1]))
        .await
        .unwrap();
    assert!(read(&store, &k, None).await.is_err());

    // Two segments swapped.
    let mut swapped = original[..HEADER_BYTES].to_vec();
    swapped.extend_from_slice(&original[HEADER_BYTES + SEALED..HEADER_BYTES + 2 * SEALED]);
    swapped.extend_from_slice(&original[HEADER_BYTES..HEADER_BYTES + SEALED]);
    swapped.extend_from_slice(&original[HEADER_BYTES + 2 * SEALED..]);
    inner.put(&k, Bytes::from(swapped)).await.unwrap();
    assert!(read(&store, &k, None).await.is_err());
    assert!(read(&store, &k, Some(0..10)).await.is_err());

    // Not an encrypted blob at all (stored before encryption was on).
    inner.put(&k, Bytes::from_static(b"plain")).await.unwrap();
    assert!(matches!(
        store.get(&k, None).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(matches!(
        store.get(&k, Some(0..2)).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(matches!(
        store.head(&k).await,
        Err(BlobError::Unavailable(_))
    ));

    // Restored, it reads again.
    inner.put(&k, Bytes::from(original)).await.unwrap();
    assert!(read(&store, &k, None).await.unwrap() == data);
}

#[tokio::test]
async fn a_blob_copied_to_another_key_or_read_with_another_key_fails() {
    let (store, inner) = stores();
    let k = key("owner/a/file");
    store
        .put(&k, Bytes::from_static(b"private words"))
        .await
        .unwrap();
    let raw = stored(&*inner, &k).await;
    let moved = key("owner/b/file");
    inner.put(&moved, Bytes::from(raw)).await.unwrap();
    for range in [None, Some(0..3)] {
        match store.get(&moved, range).await {
            Err(BlobError::Unavailable(why)) => {
                assert!(why.contains("cannot be decrypted"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
    let other = EncryptedBlobs::new(inner.clone(), OTHER_SECRET).unwrap();
    for range in [None, Some(0..3)] {
        assert!(matches!(
            other.get(&k, range).await,
            Err(BlobError::Unavailable(_))
        ));
    }
    assert_eq!(read(&store, &k, None).await.unwrap(), b"private words");
}

#[tokio::test]
async fn streamed_writes_round_trip() {
    let (store, inner) = stores();
    for (name, len, chunk) in [
        ("odd", (1 << 20) + 12_345, 7_777),
        ("segments", 4 * SEGMENT_BYTES, SEGMENT_BYTES),
        ("one-big-chunk", 3 * SEGMENT_BYTES + 1, 4 * SEGMENT_BYTES),
        ("small", 10, 3),
    ] {
        let data = pattern(len);
        let k = key(&format!("streamed/{name}"));
        let meta = store.put_stream(&k, chunked(&data, chunk)).await.unwrap();
        assert_eq!(meta.size, len as u64, "{name}");
        assert_eq!(store.head(&k).await.unwrap().size, len as u64, "{name}");
        assert_eq!(
            inner.head(&k).await.unwrap().size,
            stored_size(len as u64),
            "{name}"
        );
        assert!(
            read(&store, &k, None).await.unwrap() == data,
            "{name}: the bytes differ"
        );
        let mid = len as u64 / 2;
        assert!(
            read(&store, &k, Some(mid..mid + 3)).await.unwrap()
                == data[mid as usize..mid as usize + 3],
            "{name}: ranged"
        );
    }
    // Whole writes and streamed writes are the same format.
    let data = pattern(2 * SEGMENT_BYTES);
    let k = key("streamed/whole");
    store.put(&k, Bytes::from(data.clone())).await.unwrap();
    assert_eq!(
        inner.head(&k).await.unwrap().size,
        stored_size(data.len() as u64)
    );
}

#[tokio::test]
async fn head_and_list_give_plaintext_sizes() {
    let (store, inner) = stores();
    for (k, len) in [("l/a", 0), ("l/b", 5), ("l/c", SEGMENT_BYTES + 3)] {
        store.put(&key(k), Bytes::from(pattern(len))).await.unwrap();
        assert_eq!(store.head(&key(k)).await.unwrap().size, len as u64);
    }
    let sizes: Vec<(String, u64)> = store
        .list(Some(&key("l")))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    assert_eq!(
        sizes,
        [
            ("l/a".to_owned(), 0),
            ("l/b".to_owned(), 5),
            ("l/c".to_owned(), SEGMENT_BYTES as u64 + 3)
        ]
    );
    // A stored size no encryption makes is still listed (so it can be deleted).
    inner
        .put(&key("l/d"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(store.list(Some(&key("l"))).await.unwrap().len(), 4);
    store.delete(&key("l/d")).await.unwrap();
    assert!(matches!(
        store.head(&key("l/d")).await,
        Err(BlobError::NotFound(_))
    ));
}
