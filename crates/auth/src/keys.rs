//! Ed25519 keys that sign access tokens: made at first start and stored in the database (never
//! in config), rotated by age or on demand. A retired key stays in the JWKS, and keeps
//! verifying, until every token it signed has expired.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use confab_core::auth::{AccessClaims, AuthFailure, Jwk, JwkSet, KeySet};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use crate::ports::{AuthStore, SigningKeyRecord};

/// How often an unknown `kid` may trigger a reload from the database (another replica may
/// have rotated).
const RELOAD_INTERVAL_MS: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing keys: {0}")]
    Store(#[from] confab_store::StoreError),
    #[error("signing key {kid} is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("cannot make a signing key: {0}")]
    Generate(String),
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

struct Signer {
    kid: String,
    key: EncodingKey,
}

#[derive(Default)]
struct KeyState {
    signer: Option<Arc<Signer>>,
    verify: KeySet,
    jwks: JwkSet,
}

/// The signing key in use and every public key still valid.
pub struct KeyRing {
    store: Arc<dyn AuthStore>,
    issuer: String,
    access_ttl_ms: i64,
    rotation_age_ms: i64,
    state: RwLock<Arc<KeyState>>,
    last_reload_ms: AtomicI64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A fresh Ed25519 key as stored.
pub fn generate_key(now: i64) -> Result<SigningKeyRecord, KeyError> {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public = signing.verifying_key().to_bytes();
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(public));
    Ok(SigningKeyRecord {
        kid: thumbprint.chars().take(16).collect(),
        private_key: STANDARD.encode(der.as_bytes()),
        public_key: URL_SAFE_NO_PAD.encode(public),
        created_at: now,
        retired_at: None,
    })
}

impl KeyRing {
    /// Loads the keys, making the first one or rotating an old one as needed.
    pub async fn open(
        store: Arc<dyn AuthStore>,
        issuer: String,
        access_ttl_secs: u64,
        rotation_days: u32,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            store,
            issuer,
            access_ttl_ms: confab_store::to_i64(access_ttl_secs.saturating_mul(1000)),
            rotation_age_ms: i64::from(rotation_days).saturating_mul(86_400_000),
            state: RwLock::new(Arc::new(KeyState::default())),
            last_reload_ms: AtomicI64::new(0),
        };
        ring.reload().await?;
        let now = confab_core::now_ms();
        let needs_key = match ring.snapshot().signer.as_ref() {
            None => true,
            Some(_) => ring
                .current_created_at()
                .await?
                .is_some_and(|at| now - at > ring.rotation_age_ms),
        };
        if needs_key {
            ring.rotate().await?;
        }
        Ok(ring)
    }

    async fn current_created_at(&self) -> Result<Option<i64>, KeyError> {
        let keys = self.store.signing_keys().await?;
        Ok(keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.created_at)
            .max())
    }

    fn snapshot(&self) -> Arc<KeyState> {
        match self.state.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes a new signing key; the previous one keeps verifying until its tokens expire.
    /// Returns the new key's id.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let record = generate_key(confab_core::now_ms())?;
        self.store.rotate_signing_key(&record).await?;
        self.reload().await?;
        tracing::info!(kid = %record.kid, "signing key rotated");
        Ok(record.kid)
    }

    /// Re-reads keys from the database.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let now = confab_core::now_ms();
        self.last_reload_ms.store(now, Ordering::Relaxed);
        let records = self.store.signing_keys().await?;
        // A retired key verifies for one access-token lifetime (plus leeway) after retirement.
        let horizon = now - self.access_ttl_ms - 60_000;
        let mut jwks = JwkSet::default();
        let mut signer = None;
        for record in records.iter().rev() {
            let live = record.retired_at.is_none();
            if !live && record.retired_at.is_some_and(|at| at < horizon) {
                continue;
            }
            if live && signer.is_none() {
                let der = STANDARD
                    .decode(&record.private_key)
                    .map_err(|e| KeyError::Corrupt {
                        kid: record.kid.clone(),
                        reason: e.to_string(),
                    })?;
                signer = Some(Arc::new(Signer {
                    kid: record.kid.clone(),
                    key: EncodingKey::from_ed_der(&der),
                }));
            }
            jwks.keys
                .push(Jwk::ed25519(&record.kid, &record.public_key));
        }
        let verify = KeySet::from_jwks(&jwks).map_err(|reason| KeyError::Corrupt {
            kid: "?".into(),
            reason,
        })?;
        let state = Arc::new(KeyState {
            signer,
            verify,
            jwks,
        });
        match self.state.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
        Ok(())
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        self.snapshot().jwks.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs access-token claims with the current key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let state = self.snapshot();
        let signer = state
            .signer
            .as_ref()
            .ok_or_else(|| KeyError::Sign("no signing key loaded".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &signer.key)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Verifies an access token; an unknown `kid` triggers one reload (rate-limited), since
    /// another replica may have rotated.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, AuthFailure> {
        let state = self.snapshot();
        let kid = KeySet::token_kid(token)?;
        if !state.verify.contains(&kid) {
            let now = confab_core::now_ms();
            if now - self.last_reload_ms.load(Ordering::Relaxed) < RELOAD_INTERVAL_MS {
                return Err(AuthFailure::Invalid);
            }
            self.reload()
                .await
                .map_err(|e| AuthFailure::Unavailable(e.to_string()))?;
            return self.snapshot().verify.verify(token, &self.issuer);
        }
        state.verify.verify(token, &self.issuer)
    }
}
