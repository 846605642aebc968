//! Random secrets (refresh tokens, API keys, CSRF tokens), their storage hashes, and
//! password hashing with argon2id.

use argon2::password_hash::rand_core::OsRng as HashRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix that marks Confab API keys.
pub const API_KEY_PREFIX: &str = "cfk_";
/// How many leading characters of a key are stored to recognise it.
pub const API_KEY_SHOWN_CHARS: usize = 12;

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API key: `cfk_` and 32 random bytes.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token())
}

/// Tokens and keys have 256 bits of entropy, so a fast hash is the right storage form: it is
/// not guessable, and lookups stay one indexed query.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (CPU-heavy: call from a blocking thread).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut HashRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC hash (CPU-heavy: call from a blocking thread).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Constant-time string comparison.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn keys_and_hashes() {
        let key = new_api_key();
        assert!(key.starts_with("cfk_") && key.len() == 47, "{key}");
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(random_token(), random_token());
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
