//! Values sealed at rest with a key from configuration: XChaCha20-Poly1305 under SHA-256 of a
//! high-entropy secret, a random 24-byte nonce each time, and associated data that binds the
//! sealed value to what it belongs to (a key id, a user), so a sealed value moved to another
//! row does not open. Used for the signing keys (auth) and channel tokens (the SEO studio).
//!
//! Stored form: `xchacha20poly1305:` then the base64 of nonce ‖ ciphertext ‖ tag.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use sha2::{Digest, Sha256};

const SEALED_PREFIX: &str = "xchacha20poly1305:";
const NONCE_BYTES: usize = 24;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the encryption secret must be at least {min} bytes (e.g. `openssl rand -hex 32`)")]
    SecretTooShort { min: usize },
    /// The secret is not the one it was sealed with, the value was altered, or it belongs to
    /// another owner (associated data).
    #[error("the sealed value does not open with this secret")]
    WrongKey,
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// The cipher that seals and opens values.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// Shortest secret accepted, in bytes.
    pub const MIN_SECRET: usize = 32;

    /// The cipher keyed by SHA-256 of `secret` (any high-entropy secret of at least 32 bytes:
    /// hex, base64 or raw).
    pub fn from_secret(secret: &str) -> Result<Self, SealError> {
        if secret.len() < Self::MIN_SECRET {
            return Err(SealError::SecretTooShort {
                min: Self::MIN_SECRET,
            });
        }
        let key = Sha256::digest(secret.as_bytes());
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        Ok(Self { cipher })
    }

    /// Whether a stored value is sealed (rather than kept in the clear by older versions).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Seals `plain`, bound to `aad`.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(stored)))
    }

    /// Opens a value sealed with `aad`.
    pub fn open(&self, aad: &str, stored: &str) -> Result<Vec<u8>, SealError> {
        let bytes = stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|b| b.len() > NONCE_BYTES)
            .ok_or(SealError::WrongKey)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        self.cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_secret_and_owner() {
        let secret = "s".repeat(32);
        let sealer = SecretBox::from_secret(&secret).unwrap();
        let stored = sealer.seal("user-1", b"refresh-token").unwrap();
        assert!(SecretBox::is_sealed(&stored));
        assert!(!stored.contains("refresh-token"));
        assert_eq!(sealer.open("user-1", &stored).unwrap(), b"refresh-token");
        assert_eq!(sealer.open("user-2", &stored), Err(SealError::WrongKey));
        let other = SecretBox::from_secret(&"t".repeat(32)).unwrap();
        assert_eq!(other.open("user-1", &stored), Err(SealError::WrongKey));
        assert_ne!(
            sealer.seal("user-1", b"x").unwrap(),
            sealer.seal("user-1", b"x").unwrap()
        );
        assert!(matches!(
            SecretBox::from_secret("short"),
            Err(SealError::SecretTooShort { min: 32 })
        ));
    }
}
