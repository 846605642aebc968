//! The model store without the engine: what a pull may fetch (the SSRF guard on the URL, the
//! resolved address and every redirect; https; the size cap; stalled downloads; local paths
//! only inside the import directory) and listings that read each GGUF header once.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use confab_core::config::InferenceConfig;
use confab_core::ssrf::{AddressClass, Refusal};
use confab_inference::models::{ModelStore, ModelStoreError, PullSettings, Source};
use futures::StreamExt;

/// A test server on `ip` counting the requests it gets: `/model.gguf` (a tiny GGUF),
/// `/redirect?to=<url>` (a 302), `/endless` (a body without a length that never ends) and
/// `/stall` (a few bytes, then silence).
async fn server(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let gguf = confab_testkit::tiny_gguf("served", 4096);
    let app = axum::Router::new()
        .route(
            "/model.gguf",
            axum::routing::get(move || {
                let gguf = gguf.clone();
                async move { gguf }
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| async move {
                    let to = q.into_iter().find(|(k, _)| k == "to").unwrap().1;
                    Response::builder()
                        .status(302)
                        .header("location", to)
                        .body(Body::empty())
                        .unwrap()
                },
            ),
        )
        .route(
            "/endless",
            axum::routing::get(|| async {
                let mut first = b"GGUF".to_vec();
                first.resize(1024, 0);
                let chunks = futures::stream::iter(
                    std::iter::once(first).chain(std::iter::repeat_with(|| vec![0u8; 1024])),
                )
                .map(Ok::<_, std::io::Error>);
                Response::new(Body::from_stream(chunks))
            }),
        )
        .route(
            "/stall",
            axum::routing::get(|| async {
                let chunks =
                    futures::stream::once(async { Ok::<_, std::io::Error>(b"GGUF".to_vec()) })
                        .chain(futures::stream::pending());
                Response::builder()
                    .header("content-length", "100000")
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            hits.clone(),
            |State(hits): State<Arc<AtomicUsize>>,
             request: axum::extract::Request,
             next: axum::middleware::Next| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            },
        ));
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

fn store(dir: &Path, tweak: impl FnOnce(&mut InferenceConfig)) -> ModelStore {
    let mut config = InferenceConfig::default();
    tweak(&mut config);
    ModelStore::from_config(dir, &config).unwrap()
}

/// Loopback test servers are internal addresses: allowed only when listed.
fn lab(config: &mut InferenceConfig) {
    config.pull_allow_private = vec!["127.0.0.1/32".into()];
    config.pull_allow_http = true;
}

async fn pull(store: &ModelStore, url: String) -> Result<String, ModelStoreError> {
    let source = Source::Url(url);
    store.check(&source).await?;
    store.pull(&source, None, |_| {}).await.map(|m| m.name)
}

fn refused_class(err: &ModelStoreError) -> AddressClass {
    match err {
        ModelStoreError::Forbidden(Refusal::Address { class, .. }) => *class,
        other => panic!("not an address refusal: {other:?}"),
    }
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_listed() {
    let (addr, hits) = server("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/model.gguf");

    let strict = store(dir.path(), |c| c.pull_allow_http = true);
    let err = pull(&strict, url.clone()).await.unwrap_err();
    assert_eq!(refused_class(&err), AddressClass::Loopback);
    assert!(
        err.to_string().contains("inference.pull_allow_private"),
        "says which setting allows it: {err}"
    );
    // The download itself refuses too (a pull resumed after a restart skips `check`).
    let err = strict
        .pull(&Source::Url(url.clone()), None, |_| {})
        .await
        .unwrap_err();
    assert_eq!(refused_class(&err), AddressClass::Loopback);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    assert_eq!(pull(&store(dir.path(), lab), url).await.unwrap(), "model");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
    let (addr, hits) = server("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://localhost:{}/model.gguf", addr.port());
    // Listing the address 127.0.0.1 alone would let `localhost` through; without it, the
    // name is judged by what it resolves to, at connect time.
    let strict = store(dir.path(), |c| c.pull_allow_http = true);
    let err = strict
        .pull(&Source::Url(url.clone()), None, |_| {})
        .await
        .unwrap_err();
    assert_eq!(refused_class(&err), AddressClass::Loopback);
    let message = err.to_string();
    assert!(
        message.contains("`localhost`") && !message.contains("127.0.0.1"),
        "names the host, not what it resolved to: {message}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // Listing the host name allows it.
    let named = store(dir.path(), |c| {
        c.pull_allow_http = true;
        c.pull_allow_private = vec!["localhost".into()];
    });
    assert_eq!(pull(&named, url).await.unwrap(), "model");
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let (addr, hits) = server("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let https_only = store(dir.path(), |c| {
        c.pull_allow_private = vec!["127.0.0.1".into()];
    });
    let err = pull(&https_only, format!("http://{addr}/model.gguf"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelStoreError::Forbidden(Refusal::Scheme { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("inference.pull_allow_http"),
        "{err}"
    );
    let err = pull(&https_only, "file:///etc/passwd".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelStoreError::Forbidden(Refusal::Scheme { .. })),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_redirect_hop_is_judged() {
    let (allowed, allowed_hits) = server("127.0.0.1").await;
    // Another loopback address: internal, and not listed.
    let (forbidden, forbidden_hits) = server("127.0.0.2").await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), lab);

    let to = format!("http://{forbidden}/model.gguf");
    let err = pull(&store, format!("http://{allowed}/redirect?to={to}"))
        .await
        .unwrap_err();
    assert_eq!(refused_class(&err), AddressClass::Loopback);
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        forbidden_hits.load(Ordering::SeqCst),
        0,
        "the hop was not followed"
    );

    // An allowed hop is followed (the model is named after the URL asked for).
    let ok = format!("http://{allowed}/model.gguf");
    assert_eq!(
        pull(&store, format!("http://{allowed}/redirect?to={ok}"))
            .await
            .unwrap(),
        "redirect"
    );
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn downloads_stop_at_the_size_cap() {
    let (addr, _) = server("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let small = store(dir.path(), |c| {
        lab(c);
        c.pull_max_bytes = 2048;
    });
    // Announced by Content-Length: refused before a byte is written.
    let err = pull(&small, format!("http://{addr}/model.gguf"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModelStoreError::TooLarge { limit: 2048 }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("inference.pull_max_bytes"),
        "{err}"
    );
    // Not announced, and endless: stopped once past the cap, the partial file removed.
    let err = pull(&small, format!("http://{addr}/endless"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelStoreError::TooLarge { .. }), "{err:?}");
    assert!(!dir.path().join(".partial/endless.gguf.partial").exists());
    assert!(small.list().unwrap().is_empty());
}

#[tokio::test]
async fn a_stalled_download_times_out() {
    let (addr, _) = server("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), |c| {
        lab(c);
        c.pull_read_timeout_secs = 1;
    });
    let pulled = tokio::time::timeout(
        Duration::from_secs(30),
        pull(&store, format!("http://{addr}/stall")),
    )
    .await
    .expect("the read timeout ended the pull");
    let err = pulled.unwrap_err();
    assert!(err.to_string().contains("stopped sending"), "{err}");
}

#[tokio::test]
async fn local_copies_stop_at_the_size_cap() {
    // `confab models pull /dev/zero` on the server must not fill the disk.
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), |c| c.pull_max_bytes = 1 << 20);
    let err = store
        .pull(&Source::Path("/dev/zero".into()), None, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ModelStoreError::TooLarge { .. }), "{err:?}");
}

#[test]
fn api_sources_never_name_server_paths_without_an_import_dir() {
    for path in [
        "/etc/passwd",
        "/dev/zero",
        "./model.gguf",
        "../x.gguf",
        "model.gguf",
    ] {
        let err = Source::parse_confined(path, None).unwrap_err();
        assert!(
            matches!(err, ModelStoreError::LocalPath(_)),
            "{path}: {err:?}"
        );
        assert!(err.to_string().contains("inference.import_dir"), "{err}");
    }
    assert!(matches!(
        Source::parse_confined("nonsense", None),
        Err(ModelStoreError::BadSource(_))
    ));
    assert!(matches!(
        Source::parse_confined("org/repo/file.gguf", None),
        Ok(Source::Url(url)) if url.starts_with("https://huggingface.co/org/repo/")
    ));
    // The CLI still takes any path on the server.
    assert_eq!(
        Source::parse("/dev/zero").unwrap(),
        Source::Path("/dev/zero".into())
    );
}

#[test]
fn api_sources_are_confined_to_the_import_dir() {
    let root = tempfile::tempdir().unwrap();
    let import = root.path().join("import");
    std::fs::create_dir_all(import.join("sub")).unwrap();
    std::fs::write(import.join("good.gguf"), b"GGUF").unwrap();
    std::fs::write(root.path().join("secret.gguf"), b"GGUF").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.gguf"), import.join("escape.gguf"))
        .unwrap();
    std::os::unix::fs::symlink("/dev/zero", import.join("zero.gguf")).unwrap();
    let real = std::fs::canonicalize(import.join("good.gguf")).unwrap();

    let confined = |text: &str| Source::parse_confined(text, Some(&import));
    assert_eq!(confined("good.gguf").unwrap(), Source::Path(real.clone()));
    assert_eq!(
        confined(import.join("good.gguf").to_str().unwrap()).unwrap(),
        Source::Path(real)
    );
    let outside = root.path().join("secret.gguf");
    for refused in [
        "escape.gguf",
        "../secret.gguf",
        outside.to_str().unwrap(),
        "zero.gguf",
        "sub",
        "missing.gguf",
        "/etc/passwd",
        "/dev/zero",
    ] {
        let err = confined(refused).unwrap_err();
        // One answer whether the file is outside, missing or special: no existence oracle.
        assert!(
            matches!(err, ModelStoreError::NotImportable(ref t) if t == refused),
            "{refused}: {err:?}"
        );
    }
}

#[tokio::test]
async fn listings_read_each_header_once_and_follow_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), |_| {});
    std::fs::write(
        dir.path().join("a.gguf"),
        confab_testkit::tiny_gguf("first", 0),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.gguf"),
        confab_testkit::tiny_gguf("bee", 0),
    )
    .unwrap();
    let names = |store: &ModelStore| {
        store
            .list()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&store), ["a", "b"]);
    assert_eq!(store.header_reads(), 2);
    for _ in 0..5 {
        assert_eq!(names(&store), ["a", "b"]);
        store.find("A").unwrap();
    }
    assert_eq!(
        store.header_reads(),
        2,
        "unchanged files are not read again"
    );

    // A file rewritten in place (new size and time) is read again, and only it.
    std::fs::write(
        dir.path().join("a.gguf"),
        confab_testkit::tiny_gguf("second", 64),
    )
    .unwrap();
    let a = store.find("a").unwrap();
    assert_eq!(a.meta.display_name.as_deref(), Some("second"));
    assert_eq!(store.header_reads(), 3);

    // The same size, only a newer modification time: read again.
    let file = std::fs::File::options()
        .write(true)
        .open(dir.path().join("b.gguf"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    store.list().unwrap();
    assert_eq!(store.header_reads(), 4);

    // A pull adds a file, a deletion removes one: both show in the next listing.
    let imported = dir.path().join("c-source.gguf");
    std::fs::write(&imported, confab_testkit::tiny_gguf("sea", 0)).unwrap();
    store
        .pull(&Source::Path(imported), None, |_| {})
        .await
        .unwrap();
    assert_eq!(names(&store), ["a", "b", "c-source"]);
    store.remove("b").unwrap();
    assert_eq!(names(&store), ["a", "c-source"]);
    let reads = store.header_reads();
    names(&store);
    assert_eq!(store.header_reads(), reads);
}

#[test]
fn default_pull_settings_are_strict() {
    let settings = PullSettings::default();
    assert_eq!(settings.max_bytes, 64 << 30);
    assert!(settings.import_dir.is_none());
    assert!(settings.policy.check_scheme("http").is_err());
    assert!(
        settings
            .policy
            .check_address("x", "10.0.0.1".parse().unwrap())
            .is_err()
    );
}
