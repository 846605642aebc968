//! HTTPS served by Confab itself (`[server.tls]`), with certificates made in the test: TLS 1.3
//! by default and 1.2 only when enabled, HSTS, the expiry gauge, the certificate swapped for
//! new handshakes when its files change, clear start-up errors naming the file, and the
//! clients between services trusting `services.ca_file` (and refusing without it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use confab_core::config::{Config, TlsVersion};
use confab_core::service_tls::ServiceTls;
use confab_testkit::tls::TestCa;
use rustls::SupportedProtocolVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::common::{TestApp, test_config};

/// A CA, the files of the certificate it signed for the server, and the CA file.
struct Files {
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl Files {
    fn new(not_after: (i32, u8, u8)) -> Self {
        let ca = TestCa::new("confab test CA").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).unwrap();
        let files = Self { ca, dir };
        files.issue(not_after);
        files
    }

    /// Writes a new server certificate and key over the old ones.
    fn issue(&self, not_after: (i32, u8, u8)) -> String {
        let pair = self.ca.server_cert(not_after).unwrap();
        pair.write(&self.cert(), &self.key()).unwrap();
        pair.cert_pem
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn apply(&self, config: &mut Config) {
        config.server.tls.cert = Some(self.cert());
        config.server.tls.key = Some(self.key());
        config.server.tls.reload_secs = 1;
    }
}

fn url(app: &TestApp, path: &str) -> String {
    format!("https://{}{path}", app.addr)
}

/// A TLS handshake limited to `versions`, trusting `ca_file`; the certificate the server
/// presented and the protocol ALPN chose.
async fn handshake(
    addr: SocketAddr,
    ca_file: &Path,
    versions: &[&'static SupportedProtocolVersion],
) -> std::io::Result<(CertificateDer<'static>, Option<Vec<u8>>)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::from(addr.ip());
    let stream = connector.connect(name, tcp).await?;
    let (_, connection) = stream.get_ref();
    let presented = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned())
        .unwrap();
    Ok((presented, connection.alpn_protocol().map(<[u8]>::to_vec)))
}

fn der_of(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn unix_day(year: i32, month: u8, day: u8) -> i64 {
    time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day)
        .unwrap()
        .midnight()
        .assume_utc()
        .unix_timestamp()
}

async fn expiry_gauge(client: &reqwest::Client, app: &TestApp) -> String {
    let text = client
        .get(url(app, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("confab_tls_cert_not_after_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no expiry gauge in {text}"))
        .to_owned()
}

#[tokio::test]
async fn https_with_tls13_hsts_the_expiry_gauge_and_reload_on_change() {
    let files = Files::new((2099, 1, 1));
    let app = TestApp::start_with(|config| files.apply(config)).await;
    let trusting = ServiceTls::with_ca_file(&files.ca_file())
        .unwrap()
        .client_builder()
        .build()
        .unwrap();

    let response = trusting.get(url(&app, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    // The API too, with cookies marked Secure.
    let body = serde_json::json!({"email": "tls@example.com", "password": crate::common::PASSWORD, "name": "tls"});
    let response = trusting
        .post(url(&app, "/api/v1/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .collect();
    assert!(!cookies.is_empty());
    for cookie in cookies {
        assert!(cookie.contains("Secure"), "{cookie}");
    }
    // TLS 1.3 with HTTP/2 offered by ALPN; TLS 1.2 is refused by default.
    let (_, alpn) = handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS13])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert!(
        handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS12])
            .await
            .is_err(),
        "TLS 1.2 is refused unless server.tls.min_version is 1.2"
    );
    // Plain HTTP on the TLS port gets nothing served.
    assert!(app.client.get(app.url("/healthz")).send().await.is_err());
    // A client that does not trust the CA is refused.
    let error = app
        .client
        .get(url(&app, "/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(
        expiry_gauge(&trusting, &app).await,
        format!(
            "confab_tls_cert_not_after_timestamp_seconds {}",
            unix_day(2099, 1, 1)
        )
    );

    // Replaced on disk: new handshakes get the new certificate, without a restart.
    let renewed = der_of(&files.issue((2098, 6, 1)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (presented, _) = handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS13])
            .await
            .unwrap();
        if presented == renewed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        expiry_gauge(&trusting, &app).await,
        format!(
            "confab_tls_cert_not_after_timestamp_seconds {}",
            unix_day(2098, 6, 1)
        )
    );
    // A broken replacement is not taken: the renewed certificate stays.
    std::fs::write(files.key(), "not a key\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (presented, _) = handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS13])
        .await
        .unwrap();
    assert_eq!(presented, renewed);
    app.stop().await;
}

#[tokio::test]
async fn tls12_is_accepted_when_enabled() {
    let files = Files::new((2099, 1, 1));
    let app = TestApp::start_with(|config| {
        files.apply(config);
        config.server.tls.min_version = TlsVersion::V1_2;
    })
    .await;
    handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS12])
        .await
        .unwrap();
    handshake(app.addr, &files.ca_file(), &[&rustls::version::TLS13])
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_mismatched_certificate_stops_the_start_naming_the_file() {
    let files = Files::new((2099, 1, 1));
    let (mut config, _db) = test_config().await;
    files.apply(&mut config);
    config.server.tls.cert = Some(files.dir.path().join("absent.crt"));
    let error = format!("{:#}", confab::app::build(&config).await.unwrap_err());
    assert!(
        error.contains("server.tls.cert") && error.contains("absent.crt"),
        "{error}"
    );

    // A key that is not the certificate's.
    let other = files.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    files
        .ca
        .server_cert((2099, 1, 1))
        .unwrap()
        .write(&other.join("tls.crt"), &other.join("tls.key"))
        .unwrap();
    files.apply(&mut config);
    config.server.tls.key = Some(other.join("tls.key"));
    let error = format!("{:#}", confab::app::build(&config).await.unwrap_err());
    assert!(
        error.contains("server.tls.key") && error.contains("is not the key"),
        "{error}"
    );

    // A file that is not PEM.
    std::fs::write(files.cert(), "garbage\n").unwrap();
    files.apply(&mut config);
    let error = format!("{:#}", confab::app::build(&config).await.unwrap_err());
    assert!(
        error.contains("server.tls.cert") && error.contains("tls.crt"),
        "{error}"
    );
}
