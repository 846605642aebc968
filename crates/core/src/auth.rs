//! Who is calling: roles, API-key scopes, the authenticated [`Principal`], and the extractors
//! every service uses to demand one.
//!
//! Services verify access tokens themselves with the auth service's public keys (JWKS), so a
//! request needs no round trip to auth; see [`KeySet`].
//!
//! Long (about 750 lines) only with its unit tests (the code is about 620 lines): the
//! shared auth vocabulary, the extractors and the service tokens are checked next to their
//! definitions. The next cut, when it grows: the service tokens into a module of their own.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(format!("unknown role `{other}` (expected admin or user)")),
        }
    }
}

/// What an API key may be used for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Chat,
    Inference,
    Knowledge,
    Files,
    /// The SEO studio.
    Seo,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Chat,
        Scope::Inference,
        Scope::Knowledge,
        Scope::Files,
        Scope::Seo,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Inference => "inference",
            Scope::Knowledge => "knowledge",
            Scope::Files => "files",
            Scope::Seo => "seo",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{s}` (expected one of chat, inference, knowledge, files, seo, admin)"
                )
            })
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token from a login session; all of the user's powers.
    Session { session_id: Uuid },
    /// An API key; only its scopes.
    ApiKey { key_id: Uuid, scopes: Vec<Scope> },
    /// Another Confab service calling on the user's behalf (split mode; see
    /// [`ServiceTokens`]): only the scopes it was given, and the user's API key, if the user
    /// came with one, so limits and usage stay the key's.
    Service {
        key_id: Option<Uuid>,
        scopes: Vec<Scope>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin && self.allows(Scope::Admin)
    }

    /// Whether the credential covers `scope` (sessions cover everything).
    pub fn allows(&self, scope: Scope) -> bool {
        match &self.credential {
            Credential::Session { .. } => true,
            Credential::ApiKey { scopes, .. } | Credential::Service { scopes, .. } => {
                scopes.contains(&scope)
            }
        }
    }

    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "insufficient_scope",
                format!("this API key lacks the `{}` scope", scope.as_str()),
            ))
        }
    }

    /// The session id, for operations an API key may not perform (managing the account).
    pub fn require_session(&self) -> Result<Uuid, ApiError> {
        match &self.credential {
            Credential::Session { session_id } => Ok(*session_id),
            Credential::ApiKey { .. } | Credential::Service { .. } => Err(ApiError::forbidden(
                "session_required",
                "this operation needs a signed-in session, not an API key",
            )),
        }
    }
}

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("the credential is invalid")]
    Invalid,
    #[error("the credential has expired")]
    Expired,
    #[error("the credential has been revoked")]
    Revoked,
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::Invalid => {
                ApiError::unauthorized("the access token or API key is invalid")
            }
            AuthFailure::Expired => ApiError::new(
                http::StatusCode::UNAUTHORIZED,
                "token_expired",
                "the access token has expired; refresh it",
            ),
            AuthFailure::Revoked => ApiError::new(
                http::StatusCode::UNAUTHORIZED,
                "token_revoked",
                "this session or API key has been revoked; sign in again",
            ),
            AuthFailure::Unavailable(detail) => ApiError::unavailable(detail),
        }
    }
}

/// Turns a bearer credential into a [`Principal`]. The auth service provides the adapter.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure>;

    /// The user's role now, if the account may act at all: what a service token, which
    /// names a user but is verified offline, is checked against. `Revoked` for an account
    /// that is locked, disabled or pending; `Ok(None)` when this authenticator does not know
    /// the user (it keeps no accounts, or the user belongs to an auth service whose store
    /// this process does not share).
    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, AuthFailure> {
        let _ = user_id;
        Ok(None)
    }
}

/// The shared handle services keep in their state.
pub type DynAuthenticator = Arc<dyn Authenticator>;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("sign in: send `Authorization: Bearer <token or API key>`")
        })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    Ok(token.trim())
}

/// Any authenticated caller. Handlers check scopes with [`Principal::require_scope`].
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    DynAuthenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(CurrentUser(principal.clone()));
        }
        let token = bearer(parts)?;
        let authenticator = DynAuthenticator::from_ref(state);
        let principal = authenticator.authenticate(token).await?;
        parts.extensions.insert(principal.clone());
        Ok(CurrentUser(principal))
    }
}

/// An administrator (role `admin`; an API key also needs the `admin` scope). Code that needs
/// admin power takes this value, which only exists after the check.
#[derive(Debug, Clone)]
pub struct AdminUser(Principal);

impl AdminUser {
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    /// The check behind the capability: `principal` may administer when it is an admin's own
    /// credential (a session, or an API key with the `admin` scope), never a service token.
    pub fn check(principal: Principal) -> Result<Self, ApiError> {
        // Service tokens carry a role the calling service vouched for; services call each
        // other for a user's model and chat requests, never to administer. An admin uses
        // their own credential.
        if matches!(principal.credential, Credential::Service { .. }) {
            return Err(ApiError::forbidden(
                "service_token_not_allowed",
                "service tokens cannot call admin routes; use an admin's own session or API key",
            ));
        }
        if principal.role != Role::Admin {
            return Err(ApiError::forbidden(
                "forbidden",
                "this operation needs the admin role",
            ));
        }
        principal.require_scope(Scope::Admin)?;
        Ok(AdminUser(principal))
    }

    /// The person at the machine's terminal (the command line): an administrator with no
    /// account behind it. Only the binary's own commands make one.
    pub fn operator() -> Self {
        AdminUser(Principal {
            user_id: Uuid::nil(),
            role: Role::Admin,
            credential: Credential::Session {
                session_id: Uuid::nil(),
            },
        })
    }

    /// Whether this is the command line's operator rather than an admin's account.
    pub fn is_operator(&self) -> bool {
        self.0.user_id.is_nil()
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    S: Send + Sync,
    DynAuthenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        AdminUser::check(principal)
    }
}

/// Claims of an access token (JWT, EdDSA).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The session id (revoked by logout).
    pub sid: Uuid,
    pub role: Role,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// One public key in JWKS form (RFC 8037 OKP, Ed25519).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    pub fn ed25519(kid: impl Into<String>, x: impl Into<String>) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// Public keys by `kid`, ready to verify access tokens, with the tokens they verified lately.
///
/// A client sends the same access token with every request for its lifetime, and checking
/// its Ed25519 signature is most of the cost of authenticating it: the claims of the last
/// [`Self::VERIFIED`] tokens verified are kept, keyed by the whole token, so the same bytes
/// are verified once per key set. A kept token is still refused once expired or for another
/// issuer; only tokens that verified are kept, so invalid ones cannot crowd the cache, and a
/// key set built anew (keys rotated or retired) starts empty.
#[derive(Clone)]
pub struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    verified: moka::sync::Cache<String, Arc<AccessClaims>>,
}

impl Default for KeySet {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
            verified: Self::verified_cache(),
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    pub fn from_jwks(set: &JwkSet) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                return Err(format!("key {} is not an Ed25519 key", jwk.kid));
            }
            let key = DecodingKey::from_ed_components(&jwk.x)
                .map_err(|e| format!("key {}: {e}", jwk.kid))?;
            keys.insert(jwk.kid.clone(), Arc::new(key));
        }
        Ok(Self {
            keys,
            verified: Self::verified_cache(),
        })
    }

    /// How many verified tokens a key set keeps (about 1 KiB each).
    pub const VERIFIED: u64 = 10_000;
    /// Seconds a token counts past its `exp`, as `jsonwebtoken` validates it.
    const LEEWAY: u64 = 5;

    fn verified_cache() -> moka::sync::Cache<String, Arc<AccessClaims>> {
        moka::sync::Cache::builder()
            .max_capacity(Self::VERIFIED)
            // Access tokens live minutes; one idle this long is likely gone.
            .time_to_idle(std::time::Duration::from_secs(15 * 60))
            .build()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The `kid` a token names, without verifying it.
    pub fn token_kid(token: &str) -> Result<String, AuthFailure> {
        jsonwebtoken::decode_header(token)
            .map_err(|_| AuthFailure::Invalid)?
            .kid
            .ok_or(AuthFailure::Invalid)
    }

    /// Verifies signature, algorithm, issuer and expiry (the signature once per token: see
    /// the type's documentation).
    pub fn verify(&self, token: &str, issuer: &str) -> Result<AccessClaims, AuthFailure> {
        if let Some(claims) = self.verified.get(token) {
            if claims.iss != issuer {
                return Err(AuthFailure::Invalid);
            }
            let leeway = i64::try_from(Self::LEEWAY).unwrap_or(0);
            if claims.exp < crate::now_ms() / 1000 - leeway {
                self.verified.invalidate(token);
                return Err(AuthFailure::Expired);
            }
            return Ok(AccessClaims::clone(&claims));
        }
        let kid = Self::token_kid(token)?;
        let key = self.keys.get(&kid).ok_or(AuthFailure::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.leeway = Self::LEEWAY;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        match jsonwebtoken::decode::<AccessClaims>(token, key, &validation) {
            Ok(data) => {
                self.verified
                    .insert(token.to_owned(), Arc::new(data.claims.clone()));
                Ok(data.claims)
            }
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(AuthFailure::Expired)
            }
            Err(_) => Err(AuthFailure::Invalid),
        }
    }
}

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

    #[test]
    fn service_tokens_vouch_for_a_user_with_the_scopes_given() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let key_id = Uuid::now_v7();
        let user = Principal {
            user_id: Uuid::now_v7(),
            role: Role::User,
            credential: Credential::ApiKey {
                key_id,
                scopes: vec![Scope::Chat, Scope::Inference],
            },
        };
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
        let user = Principal {
            user_id: Uuid::now_v7(),
            role: Role::User,
            credential: Credential::ApiKey {
                key_id: Uuid::now_v7(),
                scopes: vec![Scope::Inference],
            },
        };
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

    #[test]
    fn scopes_parse_and_print() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("root".parse::<Scope>().is_err());
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
    }

    #[test]
    fn api_keys_are_limited_to_their_scopes() {
        let key = Principal {
            user_id: Uuid::nil(),
            role: Role::Admin,
            credential: Credential::ApiKey {
                key_id: Uuid::nil(),
                scopes: vec![Scope::Chat],
            },
        };
        assert!(key.allows(Scope::Chat));
        assert!(!key.allows(Scope::Inference));
        assert!(!key.is_admin());
        assert_eq!(
            key.require_scope(Scope::Files).unwrap_err().code,
            "insufficient_scope"
        );
        assert_eq!(key.require_session().unwrap_err().code, "session_required");
    }
}
