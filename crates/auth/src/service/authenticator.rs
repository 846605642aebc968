//! The `Authenticator` adapter: API keys and access tokens checked against the store behind
//! short-lived caches, which every revocation in this process clears.

use super::*;

impl AuthService {
    pub(super) async fn authenticate_key(&self, key: &str) -> Result<Principal, AuthFailure> {
        let hash = secret::token_hash(key);
        let mut auth = match self.key_cache.get(&hash).await {
            Some(auth) => auth,
            None => {
                let auth = self
                    .store
                    .api_key_auth(&hash)
                    .await
                    .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                    .ok_or(AuthFailure::Invalid)?;
                self.key_cache.insert(hash.clone(), auth.clone()).await;
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
            match self.store.touch_api_key(auth.key_id, now).await {
                Ok(()) => {
                    auth.last_used_at = Some(now);
                    self.key_cache.insert(hash, auth.clone()).await;
                }
                Err(e) => tracing::warn!(error = %e, "could not record API key use"),
            }
        }
        Ok(Principal {
            user_id: auth.user_id,
            role: auth.role,
            credential: Credential::ApiKey {
                key_id: auth.key_id,
                scopes: auth.scopes,
            },
        })
    }

    pub(super) async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthFailure> {
        let claims = self.keys.verify(token).await?;
        // Tokens are verified offline; here, where the database is at hand, also honour
        // logout, disabled accounts and role changes at once.
        let session = match self.session_cache.get(&claims.sid).await {
            Some(session) => session,
            None => {
                let session = self
                    .store
                    .session_auth(claims.sid)
                    .await
                    .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                    .ok_or(AuthFailure::Revoked)?;
                self.session_cache.insert(claims.sid, session.clone()).await;
                session
            }
        };
        if session.revoked || session.user_id != claims.sub || session.status != UserStatus::Active
        {
            return Err(AuthFailure::Revoked);
        }
        Ok(Principal {
            user_id: claims.sub,
            role: session.role,
            credential: Credential::Session {
                session_id: claims.sid,
            },
        })
    }
}

#[async_trait]
impl Authenticator for AuthService {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthFailure> {
        if bearer.starts_with(secret::API_KEY_PREFIX) {
            self.authenticate_key(bearer).await
        } else {
            self.authenticate_token(bearer).await
        }
    }

    async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, AuthFailure> {
        let known = match self.user_cache.get(&user_id).await {
            Some(known) => known,
            None => {
                let known = self
                    .store
                    .user_by_id(user_id)
                    .await
                    .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
                    .map(|user| (user.role, user.status));
                self.user_cache.insert(user_id, known).await;
                known
            }
        };
        match known {
            Some((role, UserStatus::Active)) => Ok(Some(role)),
            Some(_) => Err(AuthFailure::Revoked),
            None => Ok(None),
        }
    }
}
