//! A certificate authority made in the test (rcgen): the CA certificate a client trusts and
//! the certificates it signs for servers on `localhost` / `127.0.0.1`, written as PEM files
//! the way an operator (or cert-manager) hands them to Confab.

use std::path::Path;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA that lives as long as the test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServerCert {
    /// Writes the pair to `cert` and `key`.
    pub fn write(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        std::fs::write(cert, &self.cert_pem).with_context(|| cert.display().to_string())?;
        std::fs::write(key, &self.key_pem).with_context(|| key.display().to_string())?;
        Ok(())
    }
}

impl TestCa {
    /// A new CA named `name`, with a fresh key.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA's certificate, PEM (what `services.ca_file` holds).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `localhost` and `127.0.0.1`, valid until the start of the given day
    /// (UTC), signed by this CA.
    pub fn server_cert(&self, not_after: (i32, u8, u8)) -> anyhow::Result<ServerCert> {
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
