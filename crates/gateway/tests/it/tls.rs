//! Upstreams over TLS: the gateway reaches an `https://` instance whose certificate the
//! deployment's CA file vouches for (requests and WebSockets), and refuses to talk to one it
//! cannot verify.

use std::sync::Arc;
use std::time::Duration;

use confab_core::service_tls::ServiceTls;
use confab_testkit::tls::TestCa;
use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use uuid::Uuid;

use crate::support::*;

/// A fake service over HTTPS with a certificate `ca` signed.
async fn fake_over_tls(name: &str, ca: &TestCa) -> Fake {
    let pair = ca.server_cert((2099, 1, 1)).unwrap();
    let chain = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Fake::serve_tls(
        name,
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

#[tokio::test]
async fn https_upstreams_are_verified_with_the_ca_file() {
    let ca = TestCa::new("confab test CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let chat = fake_over_tls("chat", &ca).await;
    assert!(
        chat.url().starts_with("https://127.0.0.1:"),
        "{}",
        chat.url()
    );
    let config = config(&[("chat", vec![chat.url()])]);
    let user = Uuid::now_v7();

    let gw = start_trusting(
        &config,
        Arc::new(CountingLimiter::default()),
        ServiceTls::with_ca_file(&ca_file).unwrap(),
    )
    .await;
    let (status, _, body) = get_json(&gw.url("/api/v1/conversations?x=1"), Some(&jwt(user))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instance"], "chat");
    assert_eq!(body["uri"], "/api/v1/conversations?x=1");
    assert_eq!(chat.hits(), 1);
    // A WebSocket upgrade crosses the TLS connection to the service too.
    let url = format!("ws://{}/api/v1/ws?access_token=cfk_{user}", gw.addr);
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 101);
    let hello = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        hello.to_text().unwrap().contains("authorization"),
        "{hello:?}"
    );
    let hits = chat.hits();

    // A gateway that does not trust the CA never gets a request through to the service.
    let untrusting = start_trusting(
        &config,
        Arc::new(CountingLimiter::default()),
        ServiceTls::default(),
    )
    .await;
    let (status, _, body) =
        get_json(&untrusting.url("/api/v1/conversations"), Some(&jwt(user))).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(chat.hits(), hits, "no request reached the service");
}
