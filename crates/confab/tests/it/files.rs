//! The files service over HTTP: uploads typed by content, limited per file and per user
//! (exactly, under concurrent uploads), isolated between users, served with safe headers and
//! byte ranges, shared through signed links (tampered, expired and revoked ones refused),
//! image variants, a pixel bomb refused, nothing left behind by a refused or truncated
//! upload. Scanning, storage faults and resumable uploads are in `files_more.rs`.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{PASSWORD, Response, TestApp};
use crate::routes::{BOUNDARY, multipart, png};

pub(crate) async fn user(app: &TestApp, email: &str) -> String {
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

pub(crate) async fn post_multipart(app: &TestApp, token: &str, body: Vec<u8>) -> Response {
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
pub(crate) fn blob_count(dir: &Path) -> usize {
    files_under(&dir.join("blobs/files"))
}

/// Every file under `dir`, at any depth.
pub(crate) fn files_under(dir: &Path) -> usize {
    files_in(dir).len()
}

/// The paths of every file under `dir`, at any depth.
pub(crate) fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_in(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// A PNG whose header announces `width` × `height`, with an (empty) image stream: what a
/// decompression bomb looks like before its pixels are inflated.
pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
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

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
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

pub(crate) async fn wait_for(
    app: &TestApp,
    token: &str,
    id: &str,
    what: impl Fn(&Value) -> bool,
) -> Value {
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

#[tokio::test]
async fn api_keys_need_the_files_scope() {
    let app = TestApp::start().await;
    let token = user(&app, "alice@example.com").await;
    let key = |scopes: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            let response = app
                .post(
                    "/api/v1/auth/api-keys",
                    Some(&token),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(response.status, 201, "{}", response.text);
            response.body["key"].as_str().unwrap().to_owned()
        }
    };
    let chat_only = key(json!(["chat"])).await;
    app.get("/api/v1/files", Some(&chat_only))
        .await
        .assert_error(403, "insufficient_scope");
    put_raw(&app, &chat_only, "a.txt", None, b"words".to_vec())
        .await
        .assert_error(403, "insufficient_scope");
    let files = key(json!(["files"])).await;
    let made = put_raw(&app, &files, "a.txt", None, b"words".to_vec()).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let listed = app.get("/api/v1/files", Some(&token)).await;
    assert_eq!(listed.body["files"].as_array().unwrap().len(), 1);
    app.stop().await;
}
