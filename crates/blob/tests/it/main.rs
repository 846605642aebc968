//! The BlobStore contract, run against every backend: memory, a local directory, and an
//! S3-compatible server when scripts/test.sh started one (`s3s-fs`, which checks signatures and
//! presigned URLs' expiry; `TEST_S3_ENDPOINT`, `TEST_S3_BUCKET`, `TEST_S3_ACCESS_KEY`,
//! `TEST_S3_SECRET_KEY`). Without those variables the S3 runs say so and pass.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: panics are failures, skips are said"
)]

mod contract;
mod encrypted;

use std::time::Duration;

use confab_blob::{BlobError, BlobKey, BlobStore, ObjectBlobs, S3Target};
use confab_core::config::{S3Config, Secret};

/// An S3 store under a fresh prefix of the test bucket, or `None` (after saying why).
pub fn s3(test: &str) -> Option<ObjectBlobs> {
    s3_with(test, None)
}

fn s3_with(test: &str, secret: Option<&str>) -> Option<ObjectBlobs> {
    let (Ok(endpoint), Ok(bucket), Ok(access), Ok(key)) = (
        std::env::var("TEST_S3_ENDPOINT"),
        std::env::var("TEST_S3_BUCKET"),
        std::env::var("TEST_S3_ACCESS_KEY"),
        std::env::var("TEST_S3_SECRET_KEY"),
    ) else {
        eprintln!("{test}: skipped on S3: TEST_S3_ENDPOINT is not set (scripts/test.sh sets it)");
        return None;
    };
    let config = S3Config {
        endpoint: Some(endpoint),
        access_key_id: Some(Secret::new(access)),
        secret_access_key: Some(Secret::new(secret.unwrap_or(&key))),
        timeout_secs: 10,
        ..S3Config::default()
    };
    let prefix = format!("t/{}", uuid::Uuid::now_v7().simple());
    Some(
        ObjectBlobs::s3(
            &config,
            S3Target {
                bucket: &bucket,
                prefix: &prefix,
            },
        )
        .expect("an S3 store"),
    )
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                crate::contract::$name(&confab_blob::ObjectBlobs::memory()).await;
            })*
        }
        mod local {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = confab_blob::ObjectBlobs::local(dir.path()).unwrap();
                crate::contract::$name(&store).await;
                crate::contract::no_staged_files_left(dir.path());
            })*
        }
        mod s3 {
            $(#[tokio::test]
            async fn $name() {
                if let Some(store) = crate::s3(stringify!($name)) {
                    crate::contract::$name(&store).await;
                }
            })*
        }
        mod encrypted_memory {
            $(#[tokio::test]
            async fn $name() {
                let store = crate::encrypted::over(confab_blob::ObjectBlobs::memory());
                crate::contract::$name(&store).await;
            })*
        }
        mod encrypted_local {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = confab_blob::ObjectBlobs::local(dir.path()).unwrap();
                crate::contract::$name(&crate::encrypted::over(store)).await;
                crate::contract::no_staged_files_left(dir.path());
            })*
        }
        mod encrypted_s3 {
            $(#[tokio::test]
            async fn $name() {
                if let Some(store) = crate::s3(stringify!($name)) {
                    crate::contract::$name(&crate::encrypted::over(store)).await;
                }
            })*
        }
    };
}

contract_tests!(
    bytes_round_trip_and_replace,
    missing_blobs_are_not_found_and_deleting_them_is_fine,
    streamed_writes_of_many_parts_arrive_whole,
    a_failing_body_leaves_nothing_behind,
    a_dropped_write_leaves_nothing_behind,
    ranges_are_served_and_checked,
    listing_is_by_whole_segments_in_key_order,
    presigned_links_are_s3s_alone,
);

#[tokio::test]
async fn s3_refuses_a_wrong_secret() {
    let Some(store) = s3_with("s3_refuses_a_wrong_secret", Some("not-the-secret")) else {
        return;
    };
    let key = BlobKey::new("x").unwrap();
    let error = store.put(&key, "x".into()).await.unwrap_err();
    assert!(matches!(error, BlobError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn s3_presigned_links_read_and_expire() {
    let Some(store) = s3("s3_presigned_links_read_and_expire") else {
        return;
    };
    let key = BlobKey::new("shared/photo.jpg").unwrap();
    store.put(&key, "pixels".into()).await.unwrap();
    let client = reqwest::Client::new();
    let url = store
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("S3 signs");
    let response = client.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "pixels");
    // A link for another key does not read this one: the signature covers the path.
    let tampered = url.as_str().replace("photo.jpg", "other.jpg");
    let response = client.get(tampered).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let short = store
        .presign_get(&key, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = client.get(short.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 403, "an expired link reads nothing");
}

#[test]
fn stores_say_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let local = ObjectBlobs::local(dir.path()).unwrap();
    assert_eq!(local.location(), format!("file://{}", dir.path().display()));
    assert_eq!(ObjectBlobs::memory().location(), "memory://");
}

/// A write cut off by a killed process leaves a staged file (`<target>#<n>`) that no listing
/// shows; the sweep removes those older than its threshold, and nothing else.
#[tokio::test]
async fn the_sweep_removes_old_staged_files_of_killed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobs::local(dir.path()).unwrap();
    store
        .put(&BlobKey::new("files/a/kept").unwrap(), "whole".into())
        .await
        .unwrap();
    let folder = dir.path().join("files/a");
    let old = folder.join("cut#1");
    let young = folder.join("writing#2");
    std::fs::write(&old, b"half").unwrap();
    std::fs::write(&young, b"half").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let listed = store.list(None).await.unwrap();
    assert_eq!(listed.len(), 1, "staged files are not blobs: {listed:?}");
    assert_eq!(
        store
            .sweep_incomplete(Duration::from_secs(600))
            .await
            .unwrap(),
        1
    );
    assert!(!old.exists() && young.exists());
    assert_eq!(
        store.list(None).await.unwrap().len(),
        1,
        "the whole blob stays"
    );
    assert_eq!(
        ObjectBlobs::memory()
            .sweep_incomplete(Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}
