//! Who is calling: roles, API-key scopes, the authenticated [`Principal`], and the extractors
//! every service uses to demand one.
//!
//! Services verify access tokens themselves with the auth service's public keys (JWKS), so a
//! request needs no round trip to auth; see [`KeySet`].
//!
//! The tokens services give each other in split mode are in `auth/service.rs`.

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

mod service;
pub use service::{ServiceTokens, WithServiceTokens};

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

#[cfg(test)]
mod tests {
    use super::*;

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
