//! The files service over HTTP: uploads typed by content, limited per file and per user
//! (exactly, under concurrent uploads), isolated between users, served with safe headers and
//! byte ranges, shared through signed links (tampered, expired and revoked ones refused),
//! image variants, a pixel bomb refused, nothing left behind by a refused or truncated
//! upload; with a real clamd (`TEST_CLAMD_ADDRESS`, started by scripts/test.sh): EICAR
//! quarantined, clean files served after their scan, and a scanner outage keeping files
//! pending until it returns.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{PASSWORD, Response, TestApp};
use crate::routes::{BOUNDARY, multipart, png};

async fn user(app: &TestApp, email: &str) -> String {
    app.register(email).await;
    app.login(email, PASSWORD).await.0
}

pub(crate) async fn put_raw(
    app: &TestApp,
    token: &str,
    name: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> Response {
    let mut request = app
        .client
        .put(
            reqwest::Url::parse_with_params(&app.url("/api/v1/files/raw"), [("name", name)])
                .unwrap(),
        )
        .bearer_auth(token)
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Response::read(request.send().await.unwrap()).await
}

async fn post_multipart(app: &TestApp, token: &str, body: Vec<u8>) -> Response {
    let request = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    Response::read(request.send().await.unwrap()).await
}

/// Every blob stored under the data directory's `blobs/files`.
fn blob_count(dir: &Path) -> usize {
    files_under(&dir.join("blobs/files"))
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

/// A PNG whose header announces `width` × `height`, with an (empty) image stream: what a
/// decompression bomb looks like before its pixels are inflated.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut bytes, b"IHDR", &ihdr);
    // A zlib stream of one empty stored block.
    chunk(
        &mut bytes,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
    );
    chunk(&mut bytes, b"IEND", &[]);
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn wait_for(app: &TestApp, token: &str, id: &str, what: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let file = app.get(&format!("/api/v1/files/{id}"), Some(token)).await;
        assert_eq!(file.status, 200, "{}", file.text);
        if what(&file.body) {
            return file.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("file {id} never reached the expected state");
}

#[tokio::test]
async fn uploads_are_typed_limited_served_safely_and_isolated() {
    let app = TestApp::start_with(|config| {
        config.files.max_file_bytes = 64 * 1024;
        config.bus.job_poll_ms = 20;
    })
    .await;
    let data_dir = app.data_dir().to_path_buf();
    let alice = user(&app, "alice@example.com").await;
    let bob = user(&app, "bob@example.com").await;

    // A text file through multipart: stored unscanned (no clamd here), served inline as
    // plain text with nosniff and a sandboxing CSP.
    let made = post_multipart(&app, &alice, multipart("notes.txt", b"hello files")).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.body["state"], "unscanned");
    assert_eq!(made.body["kind"], "text");
    assert_eq!(made.body["size"], 11);
    let id = made.body["id"].as_str().unwrap().to_owned();
    let content = app
        .get(&format!("/api/v1/files/{id}/content"), Some(&alice))
        .await;
    assert_eq!(content.status, 200);
    assert_eq!(content.text, "hello files");
    assert_eq!(
        content.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(content.header("x-content-type-options"), Some("nosniff"));
    assert!(
        content
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        content
            .header("content-disposition")
            .unwrap()
            .starts_with("inline")
    );

    // One byte range, and one past the end.
    let ranged = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}/content")))
        .bearer_auth(&alice)
        .header("range", "bytes=6-")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], "bytes 6-10/11");
    assert_eq!(ranged.text().await.unwrap(), "files");
    let past = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}/content")))
        .bearer_auth(&alice)
        .header("range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */11");

    // Another user's ids answer as missing ones.
    for (method, path) in [
        (Method::GET, format!("/api/v1/files/{id}")),
        (Method::GET, format!("/api/v1/files/{id}/content")),
        (Method::DELETE, format!("/api/v1/files/{id}")),
        (Method::GET, format!("/api/v1/files/{id}/links")),
    ] {
        app.call(method, &path, Some(&bob), None)
            .await
            .assert_error(404, "not_found");
    }

    // HTML is stored as text and never served as HTML.
    let html = put_raw(
        &app,
        &alice,
        "page.html",
        None,
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    assert_eq!(html.status, 201, "{}", html.text);
    let html_id = html.body["id"].as_str().unwrap();
    let served = app
        .get(&format!("/api/v1/files/{html_id}/content"), Some(&alice))
        .await;
    assert!(
        !served.header("content-type").unwrap().contains("html"),
        "{:?}",
        served.headers
    );

    // Bad inputs: each refused with its code, nothing stored.
    let before = app.get("/api/v1/files/usage", Some(&alice)).await.body["usage"].clone();
    let blobs_before = blob_count(&data_dir);
    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
    put_raw(&app, &alice, "photo.png", None, pdf.clone())
        .await
        .assert_error(422, "file_type_mismatch");
    put_raw(
        &app,
        &alice,
        "notes.txt",
        Some("image/png"),
        b"plain words".to_vec(),
    )
    .await
    .assert_error(422, "file_type_mismatch");
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x00\x00"
        .iter()
        .copied()
        .chain([0u8; 40])
        .collect();
    put_raw(&app, &alice, "bundle.zip", None, zip)
        .await
        .assert_error(422, "file_type_not_allowed");
    put_raw(&app, &alice, "empty.txt", None, Vec::new())
        .await
        .assert_error(422, "file_empty");
    for name in [
        "../../etc/passwd",
        "a/b.txt",
        "evil\u{202e}txt.exe",
        "bell\u{7}.txt",
        "..",
    ] {
        put_raw(&app, &alice, name, None, b"x".to_vec())
            .await
            .assert_error(422, "invalid_file_name");
    }
    put_raw(&app, &alice, "big.txt", None, vec![b'a'; 64 * 1024 + 1])
        .await
        .assert_error(413, "file_too_large");
    // Streamed without a length: stopped by the meter, not by the header check.
    let chunks =
        futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 8 * 1024])));
    let streamed = app
        .client
        .put(app.url("/api/v1/files/raw?name=stream.txt"))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    Response::read(streamed)
        .await
        .assert_error(413, "file_too_large");
    put_raw(&app, &alice, "bomb.png", None, png_header(100_000, 100_000))
        .await
        .assert_error(422, "image_too_large");
    // A multipart body cut off before its end.
    let mut cut = multipart("cut.txt", &[b'z'; 4000]);
    cut.truncate(cut.len() - 20);
    post_multipart(&app, &alice, cut)
        .await
        .assert_error(400, "upload_incomplete");
    let after = app.get("/api/v1/files/usage", Some(&alice)).await.body["usage"].clone();
    assert_eq!(before, after, "no refused upload counted");
    assert_eq!(
        blob_count(&data_dir),
        blobs_before,
        "no refused upload left a blob"
    );

    // An image: typed by content, its variants made by the job, without metadata.
    let image = put_raw(&app, &alice, "dot.png", Some("image/png"), png()).await;
    assert_eq!(image.status, 201, "{}", image.text);
    assert_eq!(image.body["kind"], "image");
    let image_id = image.body["id"].as_str().unwrap().to_owned();
    let ready = wait_for(&app, &alice, &image_id, |f| f["has_thumbnail"] == true).await;
    assert_eq!(ready["width"], 2);
    let thumb = app
        .get(&format!("/api/v1/files/{image_id}/thumbnail"), Some(&alice))
        .await;
    assert_eq!(thumb.status, 200);
    assert!(thumb.header("content-type").unwrap().starts_with("image/"));

    // Listing, newest first, with a cursor; deleting gives the room back.
    let page = app.get("/api/v1/files?limit=2", Some(&alice)).await;
    assert_eq!(page.body["files"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["files"][0]["id"], image_id.as_str());
    let next = page.body["next"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/files?before={next}"), Some(&alice))
        .await;
    assert_eq!(rest.body["files"].as_array().unwrap().len(), 1);
    let usage = app.get("/api/v1/files/usage", Some(&alice)).await;
    assert_eq!(usage.body["usage"]["files"], 3);
    assert_eq!(usage.body["scanning"], false);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/files/{image_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let usage = app.get("/api/v1/files/usage", Some(&alice)).await;
    assert_eq!(usage.body["usage"]["files"], 2);
    app.get(&format!("/api/v1/files/{image_id}"), Some(&alice))
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_never_pass_the_quota() {
    let app = TestApp::start_with(|config| {
        config.files.quota_bytes = 1000;
        config.files.uploads_per_user = 64;
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    let uploads = (0..20).map(|i| {
        let (app, alice) = (&app, alice.clone());
        async move { put_raw(app, &alice, &format!("n{i}.txt"), None, vec![b'q'; 100]).await }
    });
    let results = futures::future::join_all(uploads).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    for refused in results.iter().filter(|r| r.status != 201) {
        refused.assert_error(413, "quota_exceeded");
    }
    assert_eq!(created, 10, "exactly the quota's worth");
    let usage = app.get("/api/v1/files/usage", Some(&alice)).await;
    assert_eq!(usage.body["usage"], json!({"bytes": 1000, "files": 10}));
    println!("20 concurrent uploads of 100 bytes against a 1000-byte quota: {created} stored");
    app.stop().await;
}

#[tokio::test]
async fn share_links_are_signed_expire_and_can_be_revoked() {
    let app = TestApp::start_with(|config| {
        config.files.link_key = Some(confab_core::config::Secret::new(
            "a link key for tests".to_owned(),
        ));
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    let made = put_raw(&app, &alice, "notes.txt", None, b"shared words".to_vec()).await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    let link = app
        .post(
            &format!("/api/v1/files/{id}/links"),
            Some(&alice),
            json!({"hours": 2}),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let url = link.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/f/"));

    // Anyone with the link reads the file, without signing in.
    let shared = app.get(&url, None).await;
    assert_eq!(shared.status, 200);
    assert_eq!(shared.text, "shared words");
    assert_eq!(shared.header("x-content-type-options"), Some("nosniff"));

    // A tampered token, and garbage.
    let token = url.trim_start_matches("/f/");
    let mut tampered: Vec<char> = token.chars().collect();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    app.get(&format!("/f/{tampered}"), None)
        .await
        .assert_error(403, "link_invalid");
    app.get("/f/not-a-token", None)
        .await
        .assert_error(403, "link_invalid");

    // An expired one, signed with the same key.
    let signer = confab_files::domain::links::LinkSigner::new(b"a link key for tests");
    let link_id: uuid::Uuid = link.body["id"].as_str().unwrap().parse().unwrap();
    let stale = signer.sign(link_id, confab_core::now_ms() - 1000);
    app.get(&format!("/f/{stale}"), None)
        .await
        .assert_error(403, "link_expired");

    // Hours out of bounds.
    for hours in [0, 24 * 365] {
        app.post(
            &format!("/api/v1/files/{id}/links"),
            Some(&alice),
            json!({"hours": hours}),
        )
        .await
        .assert_error(422, "invalid_hours");
    }
    let links = app
        .get(&format!("/api/v1/files/{id}/links"), Some(&alice))
        .await;
    assert_eq!(links.body["links"].as_array().unwrap().len(), 1);
    assert!(
        links.body["links"][0]["url"].is_null(),
        "the URL is shown once"
    );

    // Revoked: refused from then on.
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

    // A new link dies with its file.
    let again = app
        .post(
            &format!("/api/v1/files/{id}/links"),
            Some(&alice),
            json!({"hours": 1}),
        )
        .await;
    let again = again.body["url"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&again, None).await.status, 200);
    app.call(
        Method::DELETE,
        &format!("/api/v1/files/{id}"),
        Some(&alice),
        None,
    )
    .await;
    app.get(&again, None)
        .await
        .assert_error(403, "link_revoked");
    app.stop().await;
}

fn eicar() -> Vec<u8> {
    // Built from pieces so this source file is not itself a test signature.
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

#[tokio::test]
async fn clamd_quarantines_viruses_and_nothing_is_served_unscanned() {
    let Ok(clamd) = std::env::var("TEST_CLAMD_ADDRESS") else {
        eprintln!("TEST_CLAMD_ADDRESS is not set (scripts/test.sh starts clamd): skipped");
        return;
    };
    // clamd behind a relay this test opens only after the first upload: a scanner outage.
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    drop(relay);
    let app = TestApp::start_with(|config| {
        config.files.clamd_address = Some(format!("tcp://{relay_addr}"));
        config.files.clamd_timeout_secs = 5;
        config.bus.job_poll_ms = 20;
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    let admin = alice.clone(); // The first user is the admin.

    // Scanner down: the file waits, pending, and is not served.
    let waiting = put_raw(&app, &alice, "notes.txt", None, b"clean words".to_vec()).await;
    assert_eq!(waiting.status, 201, "{}", waiting.text);
    assert_eq!(waiting.body["state"], "pending");
    let waiting_id = waiting.body["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.get(&format!("/api/v1/files/{waiting_id}/content"), Some(&alice))
        .await
        .assert_error(409, "file_not_ready");
    app.post(
        &format!("/api/v1/files/{waiting_id}/links"),
        Some(&alice),
        json!({"hours": 1}),
    )
    .await
    .assert_error(409, "file_not_ready");

    // The scanner returns: the job's next attempt scans it clean.
    let relay = tokio::net::TcpListener::bind(relay_addr).await.unwrap();
    let target = clamd.trim_start_matches("tcp://").to_owned();
    let relaying = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = relay.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let started = std::time::Instant::now();
    wait_for(&app, &alice, &waiting_id, |f| f["state"] == "clean").await;
    println!(
        "scanner outage: the pending file was scanned clean {:?} after clamd returned",
        started.elapsed()
    );
    let content = app
        .get(&format!("/api/v1/files/{waiting_id}/content"), Some(&alice))
        .await;
    assert_eq!(content.text, "clean words");

    // EICAR: quarantined, never served, listed for admins, audited.
    let infected = put_raw(&app, &alice, "eicar.txt", None, eicar()).await;
    let infected_id = infected.body["id"].as_str().unwrap().to_owned();
    let quarantined = wait_for(&app, &alice, &infected_id, |f| f["state"] != "pending").await;
    assert_eq!(quarantined["state"], "infected");
    assert!(
        quarantined["threat"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("eicar"),
        "{quarantined}"
    );
    app.get(
        &format!("/api/v1/files/{infected_id}/content"),
        Some(&alice),
    )
    .await
    .assert_error(409, "file_quarantined");
    let listed = app
        .get("/api/v1/admin/files?state=infected", Some(&admin))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["files"][0]["id"], infected_id.as_str());
    let storage = app.get("/api/v1/admin/files/storage", Some(&admin)).await;
    assert_eq!(storage.body["scanner"]["configured"], true);
    assert_eq!(storage.body["scanner"]["reachable"], true);
    assert_eq!(storage.body["totals"]["by_state"]["infected"], 1);
    let audit = app
        .get("/api/v1/admin/audit?action=files.infected", Some(&admin))
        .await;
    assert!(audit.text.contains(&infected_id), "{}", audit.text);
    relaying.abort();
    app.stop().await;
}

#[tokio::test]
async fn files_live_in_s3_storage_when_configured() {
    let (Ok(endpoint), Ok(bucket), Ok(key), Ok(secret)) = (
        std::env::var("TEST_S3_ENDPOINT"),
        std::env::var("TEST_S3_BUCKET"),
        std::env::var("TEST_S3_ACCESS_KEY"),
        std::env::var("TEST_S3_SECRET_KEY"),
    ) else {
        eprintln!("skipped: TEST_S3_ENDPOINT is not set (scripts/test.sh starts s3s-fs)");
        return;
    };
    // A prefix of this test's own in the shared bucket.
    let prefix = format!("files-test-{}", uuid::Uuid::now_v7().simple());
    let app = TestApp::start_with(|config| {
        config.storage.backend = confab_core::config::StorageBackend::S3;
        config.storage.s3.bucket = Some(bucket);
        config.storage.s3.prefix = prefix;
        config.storage.s3.endpoint = Some(endpoint);
        config.storage.s3.access_key_id = Some(confab_core::config::Secret::new(key));
        config.storage.s3.secret_access_key = Some(confab_core::config::Secret::new(secret));
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
async fn a_client_that_goes_away_mid_upload_leaves_nothing() {
    let app = TestApp::start().await;
    let alice = user(&app, "alice@example.com").await;
    let data_dir = app.data_dir().to_path_buf();
    // 3 MiB arrive, then the client's body fails: the connection is cut mid-upload.
    let chunks = futures::stream::iter((0..4).map(|i| {
        if i < 3 {
            Ok(vec![b'w'; 1024 * 1024])
        } else {
            Err(std::io::Error::other("the client went away"))
        }
    }));
    let sent = app
        .client
        .put(app.url("/api/v1/files/raw?name=cut.txt"))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert!(sent.is_err(), "the request itself failed: {sent:?}");
    // The server notices and removes what it staged.
    for _ in 0..50 {
        if blob_count(&data_dir) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(blob_count(&data_dir), 0, "no blob left behind");
    let usage = app.get("/api/v1/files/usage", Some(&alice)).await;
    assert_eq!(usage.body["usage"], json!({"bytes": 0, "files": 0}));
    let list = app.get("/api/v1/files", Some(&alice)).await;
    assert_eq!(list.body["files"], json!([]));
    app.stop().await;
}

/// The real binary killed with SIGKILL while an upload streams in: after a restart nothing of
/// it is visible (no row, no usage) and no blob of it is listed.
#[tokio::test]
async fn kill_9_mid_upload_leaves_nothing_visible_after_a_restart() {
    use confab_testkit::{ConfabProcess, TestDb};
    let db = TestDb::new().await.unwrap();
    let env = [("CONFAB_DATABASE__URL", db.url.as_str())];
    let bin = crate::binary::bin();
    let server = ConfabProcess::spawn(bin, db.dir.path(), &env)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let register = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let login: Value = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    // 12 MiB arrive (more than one part), then the body stalls until the server dies.
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
    let mut sent_tx = Some(sent_tx);
    let chunks = futures::stream::unfold(0usize, move |i| {
        let done = (i == 12).then(|| sent_tx.take()).flatten();
        async move {
            if let Some(done) = done {
                let _ = done.send(());
                futures::future::pending::<()>().await;
            }
            Some((Ok::<_, std::io::Error>(vec![b'k'; 1024 * 1024]), i + 1))
        }
    });
    let upload = tokio::spawn(
        client
            .put(server.url("/api/v1/files/raw?name=big.txt"))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    );
    sent_rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().await.unwrap();
    assert!(upload.await.unwrap().is_err(), "the upload was cut");

    let server = ConfabProcess::spawn(bin, db.dir.path(), &env)
        .await
        .unwrap();
    let files: Value = client
        .get(server.url("/api/v1/files"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files["files"], json!([]), "{files}");
    let usage: Value = client
        .get(server.url("/api/v1/files/usage"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["usage"], json!({"bytes": 0, "files": 0}));
    // What the killed write staged is no blob (nothing lists it); the maintenance sweeps it.
    let store = confab_blob::ObjectBlobs::local(&db.dir.path().join("blobs")).unwrap();
    use confab_blob::BlobStore;
    assert!(store.list(None).await.unwrap().is_empty());
    let staged = blob_count(db.dir.path());
    assert_eq!(
        store.sweep_incomplete(Duration::ZERO).await.unwrap(),
        staged as u64
    );
    assert_eq!(blob_count(db.dir.path()), 0);
    println!("kill -9 mid-upload: {staged} staged file left, no blob; swept");
    server.terminate().await.unwrap();
}

async fn put_part(app: &TestApp, token: &str, id: &str, n: u32, bytes: Vec<u8>) -> Response {
    let request = app
        .client
        .put(app.url(&format!("/api/v1/files/uploads/{id}/parts/{n}")))
        .bearer_auth(token)
        .body(bytes);
    Response::read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn resumable_uploads_take_parts_in_any_order_and_resent() {
    let app = TestApp::start_with(|config| {
        config.files.part_bytes = 5 * 1024 * 1024;
        config.files.open_uploads_per_user = 2;
    })
    .await;
    let alice = user(&app, "alice@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let part = 5 * 1024 * 1024;
    let data: Vec<u8> = (0..2 * part + 1000)
        .map(|i| b'a' + (i % 23) as u8)
        .collect();
    let created = app
        .post(
            "/api/v1/files/uploads",
            Some(&alice),
            json!({"name": "long.txt", "size": data.len(), "content_type": "text/plain"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["parts"], 3);
    assert_eq!(created.body["part_bytes"], part);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let slice = |n: usize| data[n * part..((n + 1) * part).min(data.len())].to_vec();

    // The last part first, a wrong length refused, the first part twice.
    assert_eq!(put_part(&app, &alice, &id, 2, slice(2)).await.status, 204);
    put_part(&app, &alice, &id, 1, vec![b'x'; 10])
        .await
        .assert_error(422, "part_size_mismatch");
    put_part(&app, &alice, &id, 3, vec![b'x'; 10])
        .await
        .assert_error(422, "invalid_part");
    assert_eq!(put_part(&app, &alice, &id, 0, slice(0)).await.status, 204);
    assert_eq!(put_part(&app, &alice, &id, 0, slice(0)).await.status, 204);
    // Another user sees nothing of it.
    put_part(&app, &bob, &id, 1, slice(1))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/api/v1/files/uploads/{id}"), Some(&bob))
        .await
        .assert_error(404, "not_found");
    let status = app
        .get(&format!("/api/v1/files/uploads/{id}"), Some(&alice))
        .await;
    assert_eq!(status.body["received"], json!([0, 2]));
    let early = app
        .post(
            &format!("/api/v1/files/uploads/{id}/complete"),
            Some(&alice),
            json!({}),
        )
        .await;
    let message = early.assert_error(409, "parts_missing");
    assert!(
        early.text.contains("missing parts: 1"),
        "{message}: {}",
        early.text
    );

    assert_eq!(put_part(&app, &alice, &id, 1, slice(1)).await.status, 204);
    let file = app
        .post(
            &format!("/api/v1/files/uploads/{id}/complete"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(file.status, 201, "{}", file.text);
    assert_eq!(file.body["size"], data.len());
    let file_id = file.body["id"].as_str().unwrap();
    let content = app
        .client
        .get(app.url(&format!("/api/v1/files/{file_id}/content")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(content == data, "the parts were put together in order");
    app.get(&format!("/api/v1/files/uploads/{id}"), Some(&alice))
        .await
        .assert_error(404, "not_found");

    // Open uploads are capped; cancelling makes room and removes its parts.
    let open = |name: &'static str| {
        let (app, alice) = (&app, alice.clone());
        async move {
            app.post(
                "/api/v1/files/uploads",
                Some(&alice),
                json!({"name": name, "size": 10}),
            )
            .await
        }
    };
    let first = open("a.txt").await;
    assert_eq!(first.status, 201);
    assert_eq!(open("b.txt").await.status, 201);
    open("c.txt")
        .await
        .assert_error(429, "too_many_open_uploads");
    let first_id = first.body["id"].as_str().unwrap();
    assert_eq!(
        put_part(&app, &alice, first_id, 0, vec![b'q'; 10])
            .await
            .status,
        204
    );
    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/api/v1/files/uploads/{first_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 204);
    assert_eq!(open("c.txt").await.status, 201);
    assert_eq!(
        files_under(&app.data_dir().join("blobs/uploads")),
        0,
        "the cancelled upload's part is gone, the completed one's too"
    );

    // What a declared size says is checked before a byte is sent.
    app.post(
        "/api/v1/files/uploads",
        Some(&bob),
        json!({"name": "x.txt", "size": 0}),
    )
    .await
    .assert_error(422, "file_empty");
    app.post(
        "/api/v1/files/uploads",
        Some(&bob),
        json!({"name": "x.txt", "size": 1u64 << 40}),
    )
    .await
    .assert_error(413, "file_too_large");
    app.post(
        "/api/v1/files/uploads",
        Some(&bob),
        json!({"name": "../x", "size": 5}),
    )
    .await
    .assert_error(422, "invalid_file_name");
    app.stop().await;
}
