//! The one constructor of HTTP clients for calls between Confab's services (`[services]`
//! `ca_file` and `require_tls`): the CA certificates a deployment trusts besides the system's,
//! and whether plain `http://` is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::ServicesConfig;

/// The largest CA file read (a bundle of a few hundred certificates).
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceTlsError {
    #[error("services.ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
}

/// How this process's clients reach the other services. Cheap to clone; the default trusts
/// the system's roots alone and allows plain HTTP.
#[derive(Clone, Debug, Default)]
pub struct ServiceTls {
    roots: Arc<Vec<reqwest::Certificate>>,
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

    /// Trusting the certificates of the PEM file at `path` (tests, tools).
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
        reqwest::Client::builder()
            .tls_certs_merge(self.roots.iter().cloned())
            .https_only(self.require_tls)
    }
}

fn read_roots(path: &Path) -> Result<Vec<reqwest::Certificate>, ServiceTlsError> {
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
    let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if roots.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
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
        assert!(err.contains("empty.pem"), "{err}");
        let err = ServiceTls::with_ca_file(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
