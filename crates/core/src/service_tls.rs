//! The one source of TLS trust for calls between Confab's services (`[services]` `ca_file` and
//! `require_tls`): the CA certificates a deployment trusts besides the system's, and whether
//! plain `http://` is refused. reqwest clients (auth JWKS and API-key checks, chat to
//! inference, settings from admin) take [`ServiceTls::client_builder`]; the gateway's pooled
//! hyper client takes [`ServiceTls::rustls_client_config`]. Both verify with the platform's
//! verifier (the system roots) plus the CA file, with the aws-lc-rs provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::ServicesConfig;

/// The largest CA file read (a bundle of a few hundred certificates).
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceTlsError {
    #[error("services.ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS client for calls between services: {0}")]
    Client(String),
}

/// How this process's clients reach the other services. Cheap to clone; the default trusts
/// the system's roots alone and allows plain HTTP.
#[derive(Clone, Debug, Default)]
pub struct ServiceTls {
    roots: Arc<Vec<CertificateDer<'static>>>,
    require_tls: bool,
}

impl ServiceTls {
    /// Reads `services.ca_file` (when set) and `services.require_tls`.
    pub fn from_config(config: &ServicesConfig) -> Result<Self, ServiceTlsError> {
        let roots = match &config.ca_file {
            Some(path) => read_roots(path)?,
            None => Vec::new(),
        };
        Ok(Self {
            roots: Arc::new(roots),
            require_tls: config.require_tls,
        })
    }

    /// Trusting the certificates of the PEM file at `path` besides the system's (tests, tools).
    pub fn with_ca_file(path: &Path) -> Result<Self, ServiceTlsError> {
        Ok(Self {
            roots: Arc::new(read_roots(path)?),
            require_tls: false,
        })
    }

    /// Whether plain HTTP is refused.
    pub fn require_tls(&self) -> bool {
        self.require_tls
    }

    /// A client builder with the deployment's trust: the extra roots besides the system's,
    /// and HTTPS only under `require_tls`. Callers add their timeouts and policies.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let roots = self
            .roots
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        reqwest::Client::builder()
            .tls_certs_merge(roots)
            .https_only(self.require_tls)
    }

    /// A rustls client configuration with the same trust, for clients built on hyper (the
    /// gateway's connection pool to the services). No client certificate.
    pub fn rustls_client_config(&self) -> Result<Arc<rustls::ClientConfig>, ServiceTlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.roots.iter().cloned(),
            provider.clone(),
        )
        .map_err(|e| ServiceTlsError::Client(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServiceTlsError::Client(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServiceTlsError> {
    let fail = |reason: String| ServiceTlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if size > MAX_CA_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_CA_FILE_BYTES} bytes")));
    }
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM certificates ({e})")))?;
    if roots.is_empty() {
        return Err(fail(
            "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    for der in &roots {
        reqwest::Certificate::from_der(der)
            .map_err(|e| fail(format!("a certificate does not parse ({e})")))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ServiceTls::with_ca_file(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = ServiceTls::with_ca_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
