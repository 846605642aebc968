//! The `Authenticator` adapter: API keys and access tokens checked against the store behind
//! short-lived caches, which every revocation drops (in this process, and on every replica
//! through the published `AuthRevocation`); and the same answers for other services'
//! processes (`introspect`, `standing`: the internal routes `RemoteAuthenticator` calls).

use confab_core::internal::{IntrospectedCredential, Introspection, UserStanding};

use super::*;

/// A principal with the moment its answer stops being reusable (Unix ms).
struct Checked {
    principal: Principal,
    cache_until: i64,
}

impl AuthService {
    async fn check_key(&self, key: &str) -> Result<Checked, AuthFailure> {
        let hash = secret::token_hash(key);
        let mut auth = match self.key_cache.get(&hash).await {
            Some(auth) => auth,
            None => {
                let ticket = self.key_cache.ticket();
                let auth = self
                    .store
                    .api_key_auth(&hash)
                    .await
                    .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                    .ok_or(AuthFailure::Invalid)?;
                self.key_cache
                    .insert(hash.clone(), auth.user_id, auth.clone(), ticket)
                    .await;
                auth
            }
        };
        let now = now_ms();
        if auth.revoked || auth.status != UserStatus::Active {
            return Err(AuthFailure::Revoked);
        }
        if auth.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthFailure::Expired);
        }
        if auth
            .last_used_at
            .is_none_or(|at| now - at > TOUCH_INTERVAL_MS)
        {
            let ticket = self.key_cache.ticket();
            match self.store.touch_api_key(auth.key_id, now).await {
                Ok(()) => {
                    auth.last_used_at = Some(now);
                    self.key_cache
                        .insert(hash, auth.user_id, auth.clone(), ticket)
                        .await;
                }
                Err(e) => tracing::warn!(error = %e, "could not record API key use"),
            }
        }
        let ttl = cache_ttl_ms();
        Ok(Checked {
            cache_until: auth.expires_at.map_or(now + ttl, |at| at.min(now + ttl)),
            principal: Principal {
                user_id: auth.user_id,
                role: auth.role,
                credential: Credential::ApiKey {
                    key_id: auth.key_id,
                    scopes: auth.scopes,
                },
            },
        })
    }

    async fn check_token(&self, token: &str) -> Result<Checked, AuthFailure> {
        let claims = self.keys.verify(token).await?;
        // Tokens are verified offline; here, where the database is at hand, also honour
        // logout, disabled accounts and role changes at once.
        let session = match self.session_cache.get(&claims.sid).await {
            Some(session) => session,
            None => {
                let ticket = self.session_cache.ticket();
                let session = self
                    .store
                    .session_auth(claims.sid)
                    .await
                    .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                    .ok_or(AuthFailure::Revoked)?;
                self.session_cache
                    .insert(claims.sid, session.user_id, session.clone(), ticket)
                    .await;
                session
            }
        };
        if session.revoked || session.user_id != claims.sub || session.status != UserStatus::Active
        {
            return Err(AuthFailure::Revoked);
        }
        let now = now_ms();
        Ok(Checked {
            cache_until: claims.exp.saturating_mul(1000).min(now + cache_ttl_ms()),
            principal: Principal {
                user_id: claims.sub,
                role: session.role,
                credential: Credential::Session {
                    session_id: claims.sid,
                },
            },
        })
    }

    /// What an access token or API key stands for now, for another service's process (the
    /// internal introspection route). Service tokens are not introspected: the caller
    /// verifies those itself.
    pub async fn introspect(&self, bearer: &str) -> Result<Introspection, AuthFailure> {
        let checked = if bearer.starts_with(secret::API_KEY_PREFIX) {
            self.check_key(bearer).await?
        } else if bearer.starts_with("eyJ") {
            self.check_token(bearer).await?
        } else {
            return Err(AuthFailure::Invalid);
        };
        let principal = checked.principal;
        let credential = match principal.credential {
            Credential::Session { session_id } => IntrospectedCredential::Session { session_id },
            Credential::ApiKey { key_id, scopes } => {
                IntrospectedCredential::ApiKey { key_id, scopes }
            }
            Credential::Service { .. } => return Err(AuthFailure::Invalid),
        };
        Ok(Introspection {
            user_id: principal.user_id,
            role: principal.role,
            credential,
            cache_until: checked.cache_until,
        })
    }

    /// An account's role and status for another service's process (the internal users
    /// route); `None`: no such account.
    pub async fn standing(&self, user_id: Uuid) -> Result<Option<UserStanding>, AuthFailure> {
        Ok(self
            .known_user(user_id)
            .await?
            .map(|(role, status)| UserStanding {
                user_id,
                role,
                status: status.as_str().to_owned(),
                active: status == UserStatus::Active,
            }))
    }

    async fn known_user(&self, user_id: Uuid) -> Result<Option<(Role, UserStatus)>, AuthFailure> {
        if let Some(known) = self.user_cache.get(&user_id).await {
            return Ok(known);
        }
        let ticket = self.user_cache.ticket();
        let known = self
            .store
            .user_by_id(user_id)
            .await
            .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
            .map(|user| (user.role, user.status));
        self.user_cache
            .insert(user_id, user_id, known, ticket)
            .await;
        Ok(known)
    }
}

fn cache_ttl_ms() -> i64 {
    i64::try_from(AUTH_CACHE_TTL.as_millis()).unwrap_or(10_000)
}

#[async_trait]
impl Authenticator for AuthService {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        let checked = if bearer.starts_with(secret::API_KEY_PREFIX) {
            self.check_key(bearer).await?
        } else {
            self.check_token(bearer).await?
        };
        Ok(checked.principal)
    }

    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, AuthFailure> {
        match self.known_user(user_id).await? {
            Some((role, UserStatus::Active)) => Ok(Some(role)),
            Some(_) => Err(AuthFailure::Revoked),
            None => Ok(None),
        }
    }
}
