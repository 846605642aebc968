//! HTTPS served by Confab itself (`[server.tls]`): rustls with the aws-lc-rs provider (the one
//! already in the tree), TLS 1.3 by default or 1.2 and up by option, ALPN for HTTP/2 and
//! HTTP/1.1; the certificate and key files polled for changes and swapped in for new
//! connections (a pair that does not load is logged and the old one kept); the expiry of the
//! certificate served as `confab_tls_cert_not_after_timestamp_seconds`; handshakes run
//! concurrently, bounded in number and time, so one slow client cannot hold the listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;
use confab_core::config::{TlsConfig, TlsVersion};
use confab_core::metrics::MetricsBuilder;
use prometheus_client::metrics::gauge::Gauge;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// Handshakes in progress at once; beyond it, new connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 1024;
/// The longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS: its rustls configuration, the certificate being served and how it is
/// reloaded. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    store: Arc<CertStore>,
    provider: Arc<CryptoProvider>,
    cert_path: PathBuf,
    key_path: PathBuf,
    reload: Duration,
    not_after: Gauge,
    loaded_stamps: Stamps,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// The certificate handed to every new connection; swapped on reload.
struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertStore")
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What identifies a version of the two files: modification time and size of each.
type Stamps = [Option<(SystemTime, u64)>; 2];

async fn stamps(cert: &Path, key: &Path) -> Stamps {
    let stamp = |path: PathBuf| async move {
        let meta = tokio::fs::metadata(&path).await.ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    [stamp(cert.to_owned()).await, stamp(key.to_owned()).await]
}

impl ServerTls {
    /// Reads the certificate and key when `[server.tls]` sets them (`None` otherwise:
    /// plain HTTP), and registers the expiry gauge. A pair that does not load stops the start.
    pub async fn load(
        config: &TlsConfig,
        metrics: &mut MetricsBuilder,
    ) -> anyhow::Result<Option<Self>> {
        let (Some(cert_path), Some(key_path)) = (&config.cert, &config.key) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded_stamps = stamps(cert_path, key_path).await;
        let (key, not_after) = load_pair(cert_path, key_path, &provider)
            .await
            .context("server.tls: the certificate and key do not load")?;
        let store = Arc::new(CertStore {
            current: ArcSwap::from_pointee(key),
        });
        let versions: &[&'static rustls::SupportedProtocolVersion] = match config.min_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .context("server.tls.min_version")?
            .with_no_client_auth()
            .with_cert_resolver(store.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let gauge = Gauge::default();
        gauge.set(not_after.unwrap_or(0));
        metrics.registry().register(
            "tls_cert_not_after_timestamp_seconds",
            "When the certificate this process serves expires (Unix time), set on each (re)load",
            gauge.clone(),
        );
        tracing::info!(
            cert = %cert_path.display(),
            min_version = %config.min_version,
            not_after,
            "TLS on"
        );
        Ok(Some(Self {
            config: Arc::new(server),
            store,
            provider,
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            reload: Duration::from_secs(config.reload_secs),
            not_after: gauge,
            loaded_stamps,
        }))
    }

    /// A listener that completes TLS handshakes on `tcp`'s connections.
    pub fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(self.config.clone()),
            handshakes: JoinSet::new(),
        }
    }

    /// Checks the two files every `reload_secs` until `shutdown`, and serves a changed pair
    /// to new connections once it loads.
    pub fn watch(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let this = self.clone();
        tasks.spawn(async move {
            let mut seen = this.loaded_stamps;
            let mut tick = tokio::time::interval(this.reload);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = stamps(&this.cert_path, &this.key_path).await;
                if now == seen {
                    continue;
                }
                seen = now;
                this.reload_now().await;
            }
        });
    }

    async fn reload_now(&self) {
        match load_pair(&self.cert_path, &self.key_path, &self.provider).await {
            Ok((key, not_after)) => {
                self.store.current.store(Arc::new(key));
                self.not_after.set(not_after.unwrap_or(0));
                tracing::info!(cert = %self.cert_path.display(), not_after, "TLS certificate reloaded");
            }
            Err(error) => tracing::warn!(
                cert = %self.cert_path.display(),
                error = %format!("{error:#}"),
                "the changed TLS certificate or key does not load; still serving the previous one"
            ),
        }
    }
}

/// The file of `key` (`server.tls.cert`), at most [`MAX_PEM_BYTES`].
async fn read_bounded(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let cannot_read = || format!("{key} {}: cannot read it", path.display());
    let size = tokio::fs::metadata(path)
        .await
        .with_context(cannot_read)?
        .len();
    if size > MAX_PEM_BYTES {
        anyhow::bail!(
            "{key} {} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        );
    }
    tokio::fs::read(path).await.with_context(cannot_read)
}

/// The pair as rustls serves it (the key checked against the certificate) and the
/// certificate's `notAfter` in Unix seconds.
async fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<(CertifiedKey, Option<i64>)> {
    let chain_pem = read_bounded("server.tls.cert", cert).await?;
    let key_pem = read_bounded("server.tls.key", key).await?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "server.tls.cert {}: not a PEM certificate chain",
                cert.display()
            )
        })?;
    let first = chain.first().with_context(|| {
        format!(
            "server.tls.cert {}: holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            cert.display()
        )
    })?;
    let not_after = not_after(first);
    if not_after.is_none() {
        tracing::warn!(cert = %cert.display(), "cannot read the certificate's notAfter: the expiry gauge reads 0");
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
        format!(
            "server.tls.key {}: not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let certified = CertifiedKey::from_der(chain, private, provider).with_context(|| {
        format!(
            "server.tls.key {} is not the key of the certificate in server.tls.cert {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok((certified, not_after))
}

/// Accepts TCP connections and hands out those whose TLS handshake completed; handshakes run
/// side by side (at most [`MAX_HANDSHAKES`], each within [`HANDSHAKE_TIMEOUT`]).
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.tcp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    match accepted {
                        Ok((tcp, addr)) => {
                            // Small writes (SSE chunks) must not wait for Nagle's algorithm.
                            if let Err(e) = tcp.set_nodelay(true) {
                                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                            }
                            let acceptor = self.acceptor.clone();
                            self.handshakes.spawn(async move {
                                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                                    Ok(Ok(stream)) => Some((stream, addr)),
                                    Ok(Err(e)) => {
                                        tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                                        None
                                    }
                                    Err(_) => {
                                        tracing::debug!(peer = %addr, "TLS handshake timed out");
                                        None
                                    }
                                }
                            });
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// As axum's listener does: errors of one connection are skipped; others (out of file
/// descriptors) are logged and accepting pauses a second.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One DER element of `input`: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// The `notAfter` of an X.509 certificate (RFC 5280 §4.1) in Unix seconds, read from its DER
/// without a parser crate: Certificate → TBSCertificate → [version], serial, signature,
/// issuer, validity.
pub(crate) fn not_after(cert: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = element(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    if let (0xa0, _, after) = element(rest)? {
        rest = after;
    }
    for _ in 0..3 {
        let (_, _, after) = element(rest)?;
        rest = after;
    }
    let (0x30, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after) = element(validity)?;
    let (tag, time, _) = element(after)?;
    asn1_time(tag, time)
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest): (i32, &str) = match tag {
        0x17 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(two(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, two(2)?).ok()?;
    let at = date.with_hms(two(4)?, two(6)?, two(8)?).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_after_is_read_from_generated_certificates() {
        for (year, month, day) in [(2031, 7, 9), (2055, 1, 2), (1999, 12, 31)] {
            let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
            params.not_after = rcgen::date_time_ymd(year, month, day);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            let expected =
                time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day)
                    .unwrap()
                    .midnight()
                    .assume_utc()
                    .unix_timestamp();
            assert_eq!(
                not_after(cert.der()),
                Some(expected),
                "{year}-{month}-{day}"
            );
        }
    }

    #[test]
    fn truncated_or_foreign_der_reads_as_none() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x02, 0x01, 0x01]), None);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            // Cut short, the outer length no longer fits: never a panic, never a date.
            assert_eq!(not_after(&der[..cut]), None, "cut at {cut}");
        }
    }
}
