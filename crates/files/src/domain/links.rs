//! Signed share-link tokens. A token carries its link's id and expiry and a MAC over both, so
//! a forged or altered token is refused before any lookup, and an expired one without the
//! database. Revocation needs the stored link (the token stays valid until it expires).
//!
//! Layout, base64url without padding (54 characters): link id (16 bytes) ‖ expiry in Unix ms
//! (8 bytes, big-endian) ‖ the first 16 bytes of HMAC-SHA256(key, "confab-file-link-v1" ‖ the
//! 24 bytes before). The domain prefix keeps these MACs from being valid for any other use of
//! the same key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::Key;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"confab-file-link-v1";
const PAYLOAD_LEN: usize = 16 + 8;
const TAG_LEN: usize = 16;
const TOKEN_BYTES: usize = PAYLOAD_LEN + TAG_LEN;
/// The length of every token: 40 bytes in base64 without padding.
pub const TOKEN_LEN: usize = (TOKEN_BYTES * 4).div_ceil(3);

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not a valid share link: check that it was copied whole")]
    Malformed,
    #[error("the link's signature does not match: it was altered or not issued here")]
    Tampered,
    #[error("the link has expired: ask its owner for a new one")]
    Expired,
}

/// Signs and verifies tokens with the instance's link key.
#[derive(Clone)]
pub struct LinkSigner {
    /// HMAC state already keyed, cloned for each token.
    mac: HmacSha256,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner").finish_non_exhaustive()
    }
}

impl LinkSigner {
    pub fn new(key: &[u8]) -> Self {
        // HMAC (RFC 2104) hashes a key longer than the hash's 64-byte block and zero-pads a
        // shorter one. Doing that here gives the block-sized key `Mac::new` takes, which,
        // unlike `new_from_slice`, returns no error to handle.
        let mut block = Key::<HmacSha256>::default();
        if key.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        Self {
            mac: <HmacSha256 as Mac>::new(&block),
        }
    }

    /// The token for a link, valid until `expires_ms` (Unix milliseconds).
    pub fn sign(&self, link_id: Uuid, expires_ms: i64) -> String {
        let mut token = [0u8; TOKEN_BYTES];
        token[..16].copy_from_slice(link_id.as_bytes());
        token[16..PAYLOAD_LEN].copy_from_slice(&expires_ms.to_be_bytes());
        let tag = self.keyed(&token[..PAYLOAD_LEN]).finalize().into_bytes();
        token[PAYLOAD_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The link id and expiry a token was signed for, if it is well formed, was signed with
    /// this key, and has not expired at `now_ms`. The MAC is compared in constant time.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<(Uuid, i64), LinkError> {
        if token.len() != TOKEN_LEN {
            return Err(LinkError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Malformed)?;
        let Ok(bytes) = <[u8; TOKEN_BYTES]>::try_from(bytes) else {
            return Err(LinkError::Malformed);
        };
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        self.keyed(payload)
            .verify_truncated_left(tag)
            .map_err(|_| LinkError::Tampered)?;
        let (id, expires) = payload.split_at(16);
        let id = Uuid::from_slice(id).map_err(|_| LinkError::Malformed)?;
        let expires_ms = i64::from_be_bytes(expires.try_into().map_err(|_| LinkError::Malformed)?);
        if now_ms >= expires_ms {
            return Err(LinkError::Expired);
        }
        Ok((id, expires_ms))
    }

    fn keyed(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a test key of some thirty-two by";
    const NOW: i64 = 1_700_000_000_000;

    fn id() -> Uuid {
        Uuid::from_u128(0x0190_1234_5678_7abc_8def_0123_4567_89ab)
    }

    #[test]
    fn tokens_round_trip() {
        let signer = LinkSigner::new(KEY);
        let token = signer.sign(id(), NOW + 60_000);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.len() <= 60);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(signer.verify(&token, NOW), Ok((id(), NOW + 60_000)));
        // Signing is deterministic and depends on every input.
        assert_eq!(signer.sign(id(), NOW + 60_000), token);
        assert_ne!(signer.sign(id(), NOW + 60_001), token);
        assert_ne!(signer.sign(Uuid::nil(), NOW + 60_000), token);
    }

    #[test]
    fn the_token_matches_the_documented_layout() {
        let signer = LinkSigner::new(KEY);
        let bytes = URL_SAFE_NO_PAD.decode(signer.sign(id(), NOW)).unwrap();
        assert_eq!(&bytes[..16], id().as_bytes());
        assert_eq!(&bytes[16..24], &NOW.to_be_bytes());
        let mut mac = HmacSha256::new_from_slice(KEY).unwrap();
        mac.update(b"confab-file-link-v1");
        mac.update(&bytes[..24]);
        assert_eq!(&bytes[24..], &mac.finalize().into_bytes()[..16]);
    }

    #[test]
    fn keys_of_any_length_are_keyed_as_hmac_specifies() {
        for len in [0usize, 1, 31, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let ours = LinkSigner::new(&key)
                .keyed(b"payload")
                .finalize()
                .into_bytes();
            let mut reference = HmacSha256::new_from_slice(&key).unwrap();
            reference.update(DOMAIN);
            reference.update(b"payload");
            assert_eq!(
                ours,
                reference.finalize().into_bytes(),
                "key of {len} bytes"
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_tampering() {
        let signer = LinkSigner::new(KEY);
        let bytes = URL_SAFE_NO_PAD
            .decode(signer.sign(id(), NOW + 1000))
            .unwrap();
        // Every bit of the id, the expiry and the tag.
        for bit in 0..TOKEN_BYTES * 8 {
            let mut altered = bytes.clone();
            altered[bit / 8] ^= 1 << (bit % 8);
            let token = URL_SAFE_NO_PAD.encode(&altered);
            assert_eq!(
                signer.verify(&token, NOW),
                Err(LinkError::Tampered),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn another_key_is_tampering() {
        let token = LinkSigner::new(KEY).sign(id(), NOW + 1000);
        assert_eq!(
            LinkSigner::new(b"another key").verify(&token, NOW),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn expiry_is_checked_after_the_signature() {
        let signer = LinkSigner::new(KEY);
        let token = signer.sign(id(), NOW);
        assert_eq!(signer.verify(&token, NOW - 1), Ok((id(), NOW)));
        assert_eq!(signer.verify(&token, NOW), Err(LinkError::Expired));
        assert_eq!(signer.verify(&token, i64::MAX), Err(LinkError::Expired));
        // An expired token from another key is reported as forged, not expired.
        assert_eq!(
            LinkSigner::new(b"other").verify(&token, NOW + 1),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let signer = LinkSigner::new(KEY);
        let token = signer.sign(id(), NOW + 1000);
        let mut non_base64 = token.clone();
        non_base64.replace_range(0..1, "*");
        for garbage in [
            String::new(),
            "x".into(),
            "!".repeat(TOKEN_LEN),
            token[..TOKEN_LEN - 1].to_owned(),
            format!("{token}A"),
            format!("{token}=="),
            "A".repeat(10_000),
            non_base64,
            // Standard base64 characters where the URL-safe alphabet is expected.
            token.replace('-', "+").replace('_', "/") + "",
        ]
        .into_iter()
        .filter(|candidate| *candidate != token)
        {
            assert_eq!(
                signer.verify(&garbage, NOW),
                Err(LinkError::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let shown = format!("{:?}", LinkSigner::new(b"super-secret-key"));
        assert_eq!(shown, "LinkSigner { .. }");
    }
}
