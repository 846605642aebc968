//! Files on S3-compatible storage (the s3s-fs server scripts/test.sh starts; skipped without
//! one): multipart uploads, ranges, variants and deletion through S3, and share links that
//! redirect to presigned URLs.

use reqwest::Method;
use serde_json::json;

use crate::common::TestApp;
use crate::files::{put_raw, user, wait_for};
use crate::routes::png;

/// The S3-compatible server scripts/test.sh started (s3s-fs).
struct S3 {
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
}

impl S3 {
    /// The server from `TEST_S3_*`; `None` (the test is skipped, and says so) without one.
    #[expect(
        clippy::print_stderr,
        reason = "a skipped test says why, as the others do"
    )]
    fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok();
        let s3 = (|| {
            Some(Self {
                endpoint: var("TEST_S3_ENDPOINT")?,
                bucket: var("TEST_S3_BUCKET")?,
                key: var("TEST_S3_ACCESS_KEY")?,
                secret: var("TEST_S3_SECRET_KEY")?,
            })
        })();
        if s3.is_none() {
            eprintln!("skipped: TEST_S3_ENDPOINT is not set (scripts/test.sh starts s3s-fs)");
        }
        s3
    }

    /// Files stored in the bucket, under a prefix of this test's own.
    fn store_files(&self, config: &mut confab_core::config::Config) {
        config.storage.backend = confab_core::config::StorageBackend::S3;
        config.storage.s3.bucket = Some(self.bucket.clone());
        config.storage.s3.prefix = format!("files-test-{}", uuid::Uuid::now_v7().simple());
        config.storage.s3.endpoint = Some(self.endpoint.clone());
        config.storage.s3.access_key_id = Some(confab_core::config::Secret::new(self.key.clone()));
        config.storage.s3.secret_access_key =
            Some(confab_core::config::Secret::new(self.secret.clone()));
    }
}

#[tokio::test]
async fn files_live_in_s3_storage_when_configured() {
    let Some(s3) = S3::from_env() else {
        return;
    };
    let app = TestApp::start_with(|config| {
        s3.store_files(config);
        config.bus.job_poll_ms = 20;
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    // Larger than one 8 MiB part: a multipart upload to S3.
    let big: Vec<u8> = (0..9 * 1024 * 1024)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let made = put_raw(&app, &alice, "letters.txt", None, big.clone()).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let id = made.body["id"].as_str().unwrap().to_owned();
    let ranged = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}/content")))
        .bearer_auth(&alice)
        .header("range", "bytes=8388600-8388615")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap(), big[8_388_600..8_388_616]);
    let image = put_raw(&app, &alice, "dot.png", None, png()).await;
    let image_id = image.body["id"].as_str().unwrap().to_owned();
    wait_for(&app, &alice, &image_id, |f| f["has_thumbnail"] == true).await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    app.get(&format!("/api/v1/files/{id}/content"), Some(&alice))
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn share_links_redirect_to_presigned_s3_urls_when_configured() {
    let Some(s3) = S3::from_env() else {
        return;
    };
    let app = TestApp::start_with(|config| {
        s3.store_files(config);
        config.files.presigned_links = true;
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    let made = put_raw(
        &app,
        &alice,
        "words.txt",
        None,
        b"straight from S3".to_vec(),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let id = made.body["id"].as_str().unwrap().to_owned();
    let link = app
        .post(
            &format!("/api/v1/files/{id}/links"),
            Some(&alice),
            json!({"hours": 1}),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let url = link.body["url"].as_str().unwrap().to_owned();
    let link_id = link.body["id"].as_str().unwrap().to_owned();

    // The link answers with a redirect to the storage, signed and short-lived.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = plain.get(app.url(&url)).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.headers()["cache-control"], "private, no-store");
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=60"), "{location}");
    let fetched = plain.get(&location).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap(), &b"straight from S3"[..]);
    // The storage checks the signature: a changed one is refused.
    let at = location.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &location[at..=at] == "0" { "1" } else { "0" };
    let forged = format!("{}{flipped}{}", &location[..at], &location[at + 1..]);
    assert_eq!(plain.get(&forged).send().await.unwrap().status(), 403);

    // A revoked link redirects nowhere.
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/files/{id}/links/{link_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    app.get(&url, None).await.assert_error(403, "link_revoked");
    app.stop().await;
}
