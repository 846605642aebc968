//! Service tokens: what Confab's services give each other in split mode to call one another on
//! a user's behalf, and the [`Authenticator`] that accepts them beside the user's credentials.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AuthFailure, Authenticator, Credential, DynAuthenticator, Principal, Role, Scope};

/// Tokens that Confab's services give each other in split mode: the caller (the chat service
/// calling inference, say) vouches for a user it has authenticated. HS256 JWTs over the shared
/// `services.token` secret, prefixed `cfs_`, living [`ServiceTokens::LIFETIME`], carrying the
/// user, role, the user's API key (if any) and the scopes granted for the call. The secret
/// itself never travels.
///
/// A token minted for a principal and scopes is handed out again for [`Self::REUSE`] (it then
/// has at least four of its five minutes left), and one that verified is not verified again
/// until it expires: the gateway sends every API-key request on with a service token, and
/// signing and checking a fresh one each time cost both processes a few microseconds per
/// request for nothing. Reuse changes no decision: the caller still authenticates the
/// principal before every call, and the receiver still asks for the account's current role.
#[derive(Clone)]
pub struct ServiceTokens {
    pub(crate) encoding: jsonwebtoken::EncodingKey,
    pub(crate) decoding: DecodingKey,
    minted: moka::sync::Cache<MintKey, Arc<str>>,
    verified: moka::sync::Cache<String, Arc<ServiceClaims>>,
}

/// What a minted token says, bar its times.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MintKey {
    sub: Uuid,
    role: Role,
    key: Option<Uuid>,
    scopes: Vec<Scope>,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceTokens([redacted])")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ServiceClaims {
    sub: Uuid,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Uuid>,
    scopes: Vec<Scope>,
    aud: String,
    iat: i64,
    exp: i64,
}

impl ServiceTokens {
    pub const PREFIX: &'static str = "cfs_";
    pub const LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);
    /// The audience of user service tokens; internal tokens ([`crate::internal`]) have
    /// another, so neither is ever taken for the other.
    const AUDIENCE: &'static str = "confab-services";
    /// Shortest secret accepted, in bytes.
    pub const MIN_SECRET: usize = 32;
    /// How long a minted token is handed out again.
    pub const REUSE: std::time::Duration = std::time::Duration::from_secs(60);
    /// Minted and verified tokens kept, each (about 0.5 KiB a token).
    const KEPT: u64 = 10_000;
    /// Seconds a token counts past its `exp`.
    const LEEWAY: u64 = 5;

    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < Self::MIN_SECRET {
            return Err(format!(
                "the services token must be at least {} bytes (e.g. `openssl rand -hex 32`)",
                Self::MIN_SECRET
            ));
        }
        Ok(Self {
            encoding: jsonwebtoken::EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            minted: moka::sync::Cache::builder()
                .max_capacity(Self::KEPT)
                .time_to_live(Self::REUSE)
                .build(),
            verified: moka::sync::Cache::builder()
                .max_capacity(Self::KEPT)
                .time_to_live(Self::LIFETIME + std::time::Duration::from_secs(Self::LEEWAY))
                .build(),
        })
    }

    /// A token for a call on `principal`'s behalf with `scopes`. The caller vouches that the
    /// principal may do this: the chat service asks for `inference` to answer a user whose
    /// API key has only `chat`, because answering is what the chat scope is for.
    pub fn mint(&self, principal: &Principal, scopes: &[Scope]) -> Result<String, AuthFailure> {
        let key = MintKey {
            sub: principal.user_id,
            role: principal.role,
            key: match &principal.credential {
                Credential::ApiKey { key_id, .. } => Some(*key_id),
                Credential::Service { key_id, .. } => *key_id,
                Credential::Session { .. } => None,
            },
            scopes: scopes.to_vec(),
        };
        if let Some(token) = self.minted.get(&key) {
            return Ok(token.to_string());
        }
        let now = crate::now_ms() / 1000;
        let claims = ServiceClaims {
            sub: key.sub,
            role: key.role,
            key: key.key,
            scopes: key.scopes.clone(),
            aud: Self::AUDIENCE.into(),
            iat: now,
            exp: now + i64::try_from(Self::LIFETIME.as_secs()).unwrap_or(300),
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(|e| AuthFailure::Unavailable(format!("cannot sign a service token: {e}")))?;
        let token = format!("{}{token}", Self::PREFIX);
        self.minted.insert(key, Arc::from(token.as_str()));
        Ok(token)
    }

    /// The principal a service token vouches for; `Invalid` unless signed with this secret.
    pub fn verify(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        let token = bearer
            .strip_prefix(Self::PREFIX)
            .ok_or(AuthFailure::Invalid)?;
        let vouched = |claims: &ServiceClaims| Principal {
            user_id: claims.sub,
            role: claims.role,
            credential: Credential::Service {
                key_id: claims.key,
                scopes: claims.scopes.clone(),
            },
        };
        if let Some(claims) = self.verified.get(token) {
            let leeway = i64::try_from(Self::LEEWAY).unwrap_or(0);
            if claims.exp < crate::now_ms() / 1000 - leeway {
                self.verified.invalidate(token);
                return Err(AuthFailure::Expired);
            }
            return Ok(vouched(&claims));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[Self::AUDIENCE]);
        validation.leeway = Self::LEEWAY;
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        match jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &validation) {
            Ok(data) => {
                let principal = vouched(&data.claims);
                self.verified
                    .insert(token.to_owned(), Arc::new(data.claims));
                Ok(principal)
            }
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(AuthFailure::Expired)
            }
            Err(_) => Err(AuthFailure::Invalid),
        }
    }
}

/// An [`Authenticator`] that also accepts service tokens: what every service uses in split
/// mode (and the all-in-one server when `services.token` is set, so it can be called by
/// another instance's chat service). A service token for a user `inner` knows counts only
/// while the account is active, with the user's current role; and it never counts on admin
/// routes ([`AdminUser`] refuses it).
pub struct WithServiceTokens {
    pub inner: DynAuthenticator,
    pub tokens: ServiceTokens,
}

#[async_trait::async_trait]
impl Authenticator for WithServiceTokens {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        if bearer.starts_with(ServiceTokens::PREFIX) {
            let mut principal = self.tokens.verify(bearer)?;
            // The token lives five minutes and was minted before any change since: an
            // account this process knows must still be active, and its role is today's,
            // not the token's.
            // The nil user is a service acting for nobody (listing models): no account to ask.
            if !principal.user_id.is_nil()
                && let Some(role) = self.inner.current_role(principal.user_id).await?
            {
                principal.role = role;
            }
            Ok(principal)
        } else {
            self.inner.authenticate(bearer).await
        }
    }

    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, AuthFailure> {
        self.inner.current_role(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user calling with API key `key_id`, which has `scopes`.
    fn key_user(key_id: Uuid, scopes: &[Scope]) -> Principal {
        Principal {
            user_id: Uuid::now_v7(),
            role: Role::User,
            credential: Credential::ApiKey {
                key_id,
                scopes: scopes.to_vec(),
            },
        }
    }

    #[test]
    fn service_tokens_vouch_for_a_user_with_the_scopes_given() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let key_id = Uuid::now_v7();
        let user = key_user(key_id, &[Scope::Chat, Scope::Inference]);
        let token = tokens.mint(&user, &[Scope::Inference]).unwrap();
        assert!(token.starts_with("cfs_"));
        let vouched = tokens.verify(&token).unwrap();
        assert_eq!(vouched.user_id, user.user_id);
        assert_eq!(
            vouched.credential,
            Credential::Service {
                key_id: Some(key_id),
                scopes: vec![Scope::Inference],
            }
        );
        assert!(vouched.allows(Scope::Inference) && !vouched.allows(Scope::Chat));
        assert!(vouched.require_session().is_err());
        // Another secret, a bare JWT, or a tampered token: refused.
        let other = ServiceTokens::new(&[8; 32]).unwrap();
        assert!(matches!(other.verify(&token), Err(AuthFailure::Invalid)));
        assert!(tokens.verify(token.trim_start_matches("cfs_")).is_err());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(tokens.verify(&tampered).is_err());
        assert!(ServiceTokens::new(b"short").is_err());
    }

    #[test]
    fn minted_tokens_are_handed_out_again_and_verified_once() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let user = key_user(Uuid::now_v7(), &[Scope::Inference]);
        let first = tokens.mint(&user, &[Scope::Inference]).unwrap();
        assert_eq!(tokens.mint(&user, &[Scope::Inference]).unwrap(), first);
        // Other scopes, another role or another user: another token.
        assert_ne!(tokens.mint(&user, &[Scope::Chat]).unwrap(), first);
        let admin = Principal {
            role: Role::Admin,
            ..user.clone()
        };
        let promoted = tokens.mint(&admin, &[Scope::Inference]).unwrap();
        assert_ne!(promoted, first);
        assert_eq!(tokens.verify(&promoted).unwrap().role, Role::Admin);
        // Verified from the cache the second time, with the same answer.
        let once = tokens.verify(&first).unwrap();
        let twice = tokens.verify(&first).unwrap();
        assert_eq!(once.user_id, twice.user_id);
        assert_eq!(once.credential, twice.credential);
        // Another process with the same secret accepts the reused token; another secret not.
        let same = ServiceTokens::new(&[7; 32]).unwrap();
        assert_eq!(same.verify(&first).unwrap().user_id, user.user_id);
        let other = ServiceTokens::new(&[8; 32]).unwrap();
        assert!(other.verify(&first).is_err());
    }

    #[test]
    fn an_expired_token_is_refused_even_after_it_verified() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let now = crate::now_ms() / 1000;
        let claims = ServiceClaims {
            sub: Uuid::now_v7(),
            role: Role::User,
            key: None,
            scopes: vec![Scope::Inference],
            aud: ServiceTokens::AUDIENCE.into(),
            iat: now - 400,
            exp: now - 100,
        };
        let token = format!(
            "{}{}",
            ServiceTokens::PREFIX,
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(Algorithm::HS256),
                &claims,
                &tokens.encoding
            )
            .unwrap()
        );
        assert!(matches!(tokens.verify(&token), Err(AuthFailure::Expired)));
        // Kept as verified while valid, it is refused once past its expiry all the same.
        tokens.verified.insert(
            token.trim_start_matches(ServiceTokens::PREFIX).to_owned(),
            Arc::new(claims),
        );
        assert!(matches!(tokens.verify(&token), Err(AuthFailure::Expired)));
    }

    /// Users as the auth service sees them now: `Err` for an inactive account.
    struct Accounts(Result<Option<Role>, ()>);

    #[async_trait::async_trait]
    impl Authenticator for Accounts {
        async fn authenticate(&self, _: &str) -> Result<Principal, AuthFailure> {
            Err(AuthFailure::Invalid)
        }
        async fn current_role(&self, _: Uuid) -> Result<Option<Role>, AuthFailure> {
            self.0.map_err(|()| AuthFailure::Revoked)
        }
    }

    #[tokio::test]
    async fn service_tokens_count_only_for_active_users_with_their_current_role() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let admin = Principal {
            user_id: Uuid::now_v7(),
            role: Role::Admin,
            credential: Credential::Session {
                session_id: Uuid::now_v7(),
            },
        };
        let token = tokens.mint(&admin, &[Scope::Inference]).unwrap();
        let with = |known| WithServiceTokens {
            inner: Arc::new(Accounts(known)),
            tokens: tokens.clone(),
        };
        // Demoted since the token was minted: today's role.
        let demoted = with(Ok(Some(Role::User)))
            .authenticate(&token)
            .await
            .unwrap();
        assert_eq!(demoted.role, Role::User);
        // Locked, disabled or pending: refused.
        assert!(matches!(
            with(Err(())).authenticate(&token).await,
            Err(AuthFailure::Revoked)
        ));
        // A user of an auth service this process does not see: the token's word.
        assert_eq!(
            with(Ok(None)).authenticate(&token).await.unwrap().role,
            Role::Admin
        );
        // A service acting for nobody (the nil user, listing models) has no account to ask,
        // even where unknown users are refused.
        let nobody = Principal {
            user_id: Uuid::nil(),
            role: Role::User,
            credential: Credential::Service {
                key_id: None,
                scopes: vec![Scope::Inference],
            },
        };
        let token = tokens.mint(&nobody, &[Scope::Inference]).unwrap();
        assert!(
            with(Err(()))
                .authenticate(&token)
                .await
                .unwrap()
                .user_id
                .is_nil()
        );
    }
}
