//! `[server.tls]`: HTTPS served by Confab itself (rustls), for deployments without an ingress
//! in front; the certificate and key files are read again when they change. Responses then
//! carry `Strict-Transport-Security` and cookies are `Secure`, as with an `https://`
//! `server.public_url`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The oldest TLS version the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (for old clients).
    V1_2,
    /// TLS 1.3 only, the default.
    #[default]
    V1_3,
}

impl TlsVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_2 => "1.2",
            Self::V1_3 => "1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    /// `"1.2"` or `"1.3"`; also the numbers 1.2 and 1.3, which is what an environment value
    /// such as `CONFAB_SERVER__TLS__MIN_VERSION=1.2` becomes.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TlsVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"1.2\" or \"1.3\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TlsVersion, E> {
                match v.trim() {
                    "1.2" => Ok(TlsVersion::V1_2),
                    "1.3" => Ok(TlsVersion::V1_3),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TlsVersion, E> {
                if (v - 1.2).abs() < 1e-9 {
                    Ok(TlsVersion::V1_2)
                } else if (v - 1.3).abs() < 1e-9 {
                    Ok(TlsVersion::V1_3)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// HTTPS on `listen`: set both `cert` and `key`, or neither (plain HTTP, TLS ending at a
/// proxy or ingress).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (the server's certificate first, then intermediates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The oldest TLS version accepted: `"1.3"` (default) or `"1.2"`.
    pub min_version: TlsVersion,
    /// How often the two files are checked for changes (modification time and size), in
    /// seconds; a changed pair that does not load is logged and the old one kept.
    pub reload_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            min_version: TlsVersion::V1_3,
            reload_secs: 5,
        }
    }
}

impl TlsConfig {
    /// Whether HTTPS is configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }

    /// The rules types do not express.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert, &self.key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "server.tls.cert and server.tls.key go together: set both (HTTPS) or neither"
                        .into(),
                );
            }
            _ => {}
        }
        if self.reload_secs == 0 || self.reload_secs > 3600 {
            return Err("server.tls.reload_secs must be between 1 and 3600".into());
        }
        Ok(())
    }
}
