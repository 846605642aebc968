//! Calls between services as themselves, not on a user's behalf (split mode): internal
//! tokens, the [`InternalCaller`] extractor that accepts only them, and the wire types of the
//! internal routes (`/internal/v1/<service>/...`), which the gateway never forwards.
//!
//! An internal token is an HS256 JWT over the deployment's shared `services.token`, like a
//! user service token ([`ServiceTokens::mint`]), but with its own prefix (`cfi_`), its own
//! audience and a one-minute life: a user service token is never an internal one and an
//! internal token never authenticates a user.

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{AuthFailure, Credential, Principal, Role, Scope, ServiceTokens};
use crate::error::ApiError;

/// Where internal routes live; the gateway refuses to forward anything under it.
pub const INTERNAL_PATH_PREFIX: &str = "/internal/";

/// The longest service name an internal token carries.
const MAX_SERVICE_NAME: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct InternalClaims {
    /// The calling service (`chat`, `gateway`, ...).
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
}

impl ServiceTokens {
    /// The prefix of internal tokens.
    pub const INTERNAL_PREFIX: &'static str = "cfi_";
    /// How long an internal token lives: callers mint one per call.
    pub const INTERNAL_LIFETIME: Duration = Duration::from_secs(60);
    const INTERNAL_AUDIENCE: &'static str = "confab-internal";

    /// A token with which `service` calls another service's internal routes as itself.
    /// `service` is a short lowercase name (`[a-z0-9-]`, at most 32 characters).
    pub fn mint_internal(&self, service: &str) -> Result<String, AuthFailure> {
        if service.is_empty()
            || service.len() > MAX_SERVICE_NAME
            || !service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AuthFailure::Unavailable(format!(
                "`{service}` is not a service name for an internal token"
            )));
        }
        let now = crate::now_ms() / 1000;
        let claims = InternalClaims {
            sub: service.to_owned(),
            aud: Self::INTERNAL_AUDIENCE.into(),
            iat: now,
            exp: now + i64::try_from(Self::INTERNAL_LIFETIME.as_secs()).unwrap_or(60),
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(|e| AuthFailure::Unavailable(format!("cannot sign an internal token: {e}")))?;
        Ok(format!("{}{token}", Self::INTERNAL_PREFIX))
    }

    /// The service an internal token was minted for; `Invalid` unless it is one, signed with
    /// this secret, `Expired` after its minute.
    pub fn verify_internal(&self, bearer: &str) -> Result<InternalCaller, AuthFailure> {
        let token = bearer
            .strip_prefix(Self::INTERNAL_PREFIX)
            .ok_or(AuthFailure::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[Self::INTERNAL_AUDIENCE]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        match jsonwebtoken::decode::<InternalClaims>(token, &self.decoding, &validation) {
            Ok(data) if data.claims.sub.len() <= MAX_SERVICE_NAME => Ok(InternalCaller {
                service: data.claims.sub,
            }),
            Ok(_) => Err(AuthFailure::Invalid),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(AuthFailure::Expired)
            }
            Err(_) => Err(AuthFailure::Invalid),
        }
    }
}

/// What an internal router's state gives [`InternalCaller`]: the deployment's shared secret,
/// if it has one. Without it (an all-in-one process with no `services.token`) every internal
/// call is refused.
#[derive(Clone, Debug, Default)]
pub struct InternalAuth(pub Option<ServiceTokens>);

/// Another Confab service calling an internal route as itself. Exists only after its
/// internal token was verified; user credentials (sessions, API keys, user service tokens)
/// are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalCaller {
    /// The calling service's name, for logs.
    pub service: String,
}

impl<S> FromRequestParts<S> for InternalCaller
where
    S: Send + Sync,
    InternalAuth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let refused = || ApiError::unauthorized("internal routes need an internal service token");
        let InternalAuth(tokens) = InternalAuth::from_ref(state);
        let tokens = tokens.ok_or_else(refused)?;
        let bearer = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        tokens.verify_internal(bearer.trim()).map_err(|_| refused())
    }
}

/// The longest credential `POST /internal/v1/auth/introspect` reads.
pub const MAX_INTROSPECTED_TOKEN: usize = 4096;

/// `POST /internal/v1/auth/introspect`: an access token or an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntrospectRequest {
    pub token: String,
}

/// How the introspected credential was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IntrospectedCredential {
    /// An access token of a live session.
    Session { session_id: Uuid },
    /// An API key with its scopes.
    ApiKey { key_id: Uuid, scopes: Vec<Scope> },
}

/// The principal a credential stands for now, and until when the answer may be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub user_id: Uuid,
    /// The user's role now (not the one in the token).
    pub role: Role,
    pub credential: IntrospectedCredential,
    /// The answer may be cached until then (the auth service's cache lifetime, or sooner
    /// when the token or key expires sooner). Revocations are published before that.
    #[serde(with = "crate::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub cache_until: i64,
}

impl Introspection {
    /// The principal, as the caller's authenticator hands it to handlers.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.user_id,
            role: self.role,
            credential: match &self.credential {
                IntrospectedCredential::Session { session_id } => Credential::Session {
                    session_id: *session_id,
                },
                IntrospectedCredential::ApiKey { key_id, scopes } => Credential::ApiKey {
                    key_id: *key_id,
                    scopes: scopes.clone(),
                },
            },
        }
    }
}

/// An account's standing: `GET /internal/v1/auth/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserStanding {
    pub user_id: Uuid,
    pub role: Role,
    /// `active`, `pending` (waiting for approval) or `disabled`.
    pub status: String,
    /// Whether the account may act at all (its status is `active`).
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_user_service_tokens_are_never_taken_for_each_other() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let internal = tokens.mint_internal("chat").unwrap();
        assert!(internal.starts_with("cfi_"));
        assert_eq!(tokens.verify_internal(&internal).unwrap().service, "chat");
        // A user service token is not an internal one, even with the prefix swapped.
        let user = Principal {
            user_id: Uuid::now_v7(),
            role: Role::Admin,
            credential: Credential::Session {
                session_id: Uuid::now_v7(),
            },
        };
        let service = tokens.mint(&user, &[Scope::Admin]).unwrap();
        assert!(tokens.verify_internal(&service).is_err());
        let swapped = service.replacen("cfs_", "cfi_", 1);
        assert!(matches!(
            tokens.verify_internal(&swapped),
            Err(AuthFailure::Invalid)
        ));
        // And an internal token authenticates no user.
        assert!(tokens.verify(&internal).is_err());
        assert!(
            tokens
                .verify(&internal.replacen("cfi_", "cfs_", 1))
                .is_err()
        );
        // Another secret, tampering: refused.
        let other = ServiceTokens::new(&[8; 32]).unwrap();
        assert!(other.verify_internal(&internal).is_err());
        let mut tampered = internal.clone();
        tampered.pop();
        assert!(tokens.verify_internal(&tampered).is_err());
        // Names are short and plain.
        assert!(tokens.mint_internal("").is_err());
        assert!(tokens.mint_internal("Chat Service").is_err());
        assert!(tokens.mint_internal(&"a".repeat(33)).is_err());
    }

    #[test]
    fn expired_internal_tokens_are_refused() {
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let now = crate::now_ms() / 1000;
        let claims = InternalClaims {
            sub: "chat".into(),
            aud: ServiceTokens::INTERNAL_AUDIENCE.into(),
            iat: now - 120,
            exp: now - 60,
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&[7; 32]),
        )
        .unwrap();
        assert!(matches!(
            tokens.verify_internal(&format!("cfi_{token}")),
            Err(AuthFailure::Expired)
        ));
    }

    #[tokio::test]
    async fn the_extractor_accepts_only_internal_tokens() {
        use axum::extract::FromRequestParts;
        let tokens = ServiceTokens::new(&[7; 32]).unwrap();
        let state = InternalAuth(Some(tokens.clone()));
        let parts_with = |bearer: Option<String>| {
            let mut request = http::Request::builder().uri("/internal/v1/auth/users/x");
            if let Some(bearer) = bearer {
                request = request.header("authorization", format!("Bearer {bearer}"));
            }
            request.body(()).unwrap().into_parts().0
        };
        let internal = tokens.mint_internal("gateway").unwrap();
        let mut parts = parts_with(Some(internal.clone()));
        let caller = InternalCaller::from_request_parts(&mut parts, &state)
            .await
            .unwrap();
        assert_eq!(caller.service, "gateway");
        for bearer in [None, Some("cfk_abc".to_owned()), Some("eyJ.x.y".to_owned())] {
            let mut parts = parts_with(bearer);
            let refused = InternalCaller::from_request_parts(&mut parts, &state)
                .await
                .unwrap_err();
            assert_eq!(refused.status, http::StatusCode::UNAUTHORIZED);
        }
        // Without a services secret nothing is internal.
        let mut parts = parts_with(Some(internal));
        assert!(
            InternalCaller::from_request_parts(&mut parts, &InternalAuth(None))
                .await
                .is_err()
        );
    }
}
