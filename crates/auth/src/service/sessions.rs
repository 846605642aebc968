//! Sessions: sign-in (with the brute-force guard), access and refresh tokens (rotation, reuse
//! detection with a grace window), and logout.

use super::*;
use crate::actions::AuthAction;

impl AuthService {
    pub(super) fn refresh_ttl_ms(&self) -> i64 {
        confab_store::to_i64(self.config.refresh_token_ttl_secs.saturating_mul(1000))
    }

    pub(super) fn access_token(&self, user: &User, session_id: Uuid) -> AuthResult<(String, u64)> {
        let now = now_ms() / 1000;
        let ttl = self.config.access_token_ttl_secs;
        let claims = AccessClaims {
            sub: user.id,
            sid: session_id,
            role: user.role,
            iss: self.keys.issuer().to_owned(),
            iat: now,
            exp: now + confab_store::to_i64(ttl),
        };
        Ok((self.keys.sign(&claims)?, ttl))
    }

    pub(super) async fn start_session(
        &self,
        user: &User,
        client: &ClientMeta,
    ) -> AuthResult<IssuedTokens> {
        let refresh_token = secret::random_token();
        let now = now_ms();
        let session = NewSession {
            id: new_id(),
            user_id: user.id,
            now,
            expires_at: now + self.refresh_ttl_ms(),
            refresh_hash: secret::token_hash(&refresh_token),
            ip: client.ip.map(|ip| ip.to_string()),
            user_agent: client.user_agent.clone(),
        };
        self.store.create_session(&session).await?;
        let (access_token, expires_in) = self.access_token(user, session.id)?;
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            expires_in,
            session_id: session.id,
        })
    }

    /// Signs in with email and password. Unknown emails and wrong passwords fail alike.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientMeta,
    ) -> AuthResult<SignedIn> {
        let user = self.check_credentials(email, password, client).await?;
        if user.must_change_password {
            self.audit(
                AuditEvent::new(AuthAction::Login, Outcome::Failure, client)
                    .actor(user.id)
                    .target(user.email.clone())
                    .details(json!({"reason": "password_change_required"})),
            )
            .await;
            return Err(AuthError::PasswordChangeRequired);
        }
        self.signed_in(user, client).await
    }

    pub(super) async fn signed_in(&self, user: User, client: &ClientMeta) -> AuthResult<SignedIn> {
        let tokens = self.start_session(&user, client).await?;
        self.audit(
            AuditEvent::new(AuthAction::Login, Outcome::Success, client)
                .actor(user.id)
                .target(user.id.to_string())
                .details(json!({"session": tokens.session_id})),
        )
        .await;
        Ok(SignedIn {
            user: self.view(&user).await?,
            tokens: Some(tokens),
        })
    }

    /// The user whose email and password these are, if they may sign in: counts failures
    /// per account and address (see [`crate::guard`]) and audits them. Unknown emails,
    /// wrong passwords and addresses that must wait answer alike whether or not the account
    /// exists.
    pub(super) async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        client: &ClientMeta,
    ) -> AuthResult<User> {
        let normalized = normalize_email(email).unwrap_or_default();
        let user = if normalized.is_empty() || password.len() > domain::MAX_PASSWORD_BYTES {
            None
        } else {
            self.store.user_by_email(&normalized).await?
        };
        // Counted under the email as given when it is not even valid, so junk is throttled too.
        let account = if normalized.is_empty() {
            email.trim().to_lowercase()
        } else {
            normalized.clone()
        };
        let failed = |reason: &'static str| {
            AuditEvent::new(AuthAction::Login, Outcome::Failure, client)
                .target(normalized.clone())
                .details(json!({"reason": reason}))
        };
        let now = now_ms();
        if let Verdict::Wait { retry_after_secs } = self.guard.check(&account, client.ip, now).await
        {
            let mut event = failed("throttled");
            if let Some(user) = &user {
                event = event.actor(user.id);
            }
            self.audit(event).await;
            return Err(AuthError::Throttled { retry_after_secs });
        }
        let verified = match &user {
            Some(user) => verify(password.to_owned(), user.password_hash.clone()).await?,
            None => {
                // Spend the same effort as a real check so timing does not reveal the email.
                verify(password.to_owned(), self.dummy_hash.clone()).await?;
                false
            }
        };
        let user = match user {
            Some(user) if verified => user,
            user => {
                let waits = self.guard.failed(&account, client.ip, now).await;
                let reason = if user.is_some() {
                    "wrong_password"
                } else {
                    "unknown_email"
                };
                let mut event = failed(reason);
                if let Some(user) = &user {
                    event = event.actor(user.id);
                }
                self.audit(event).await;
                if let Some(wait_secs) = waits {
                    self.audit(
                        AuditEvent::new(AuthAction::LoginThrottled, Outcome::Success, client)
                            .target(normalized.clone())
                            .details(json!({
                                "wait_secs": wait_secs,
                                "threshold": self.guard.policy().threshold,
                            })),
                    )
                    .await;
                }
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.guard.succeeded(&account, client.ip).await;
        match user.status {
            UserStatus::Active => {}
            UserStatus::Pending => {
                self.audit(failed("pending").actor(user.id)).await;
                return Err(AuthError::Pending);
            }
            UserStatus::Disabled => {
                self.audit(failed("disabled").actor(user.id)).await;
                return Err(AuthError::Disabled);
            }
        }
        Ok(user)
    }

    /// Exchanges a refresh token for new tokens; the presented one stops working. Presenting
    /// a used token revokes its whole session, unless it is the session's last used token
    /// and comes within `auth.refresh_reuse_grace_secs` (two tabs refreshing at once).
    pub async fn refresh(&self, refresh_token: &str, client: &ClientMeta) -> AuthResult<SignedIn> {
        let new_refresh = secret::random_token();
        let rotation = self
            .store
            .rotate_refresh(
                &secret::token_hash(refresh_token),
                &secret::token_hash(&new_refresh),
                now_ms(),
                self.refresh_ttl_ms(),
                confab_store::to_i64(self.config.refresh_reuse_grace_secs.saturating_mul(1000)),
            )
            .await?;
        match rotation {
            Rotation::Rotated { session_id, user } => {
                if user.status != UserStatus::Active {
                    self.store
                        .revoke_session(session_id, "account not active", now_ms())
                        .await?;
                    self.forget_auth(AuthRevocation {
                        user_id: user.id,
                        session_id: Some(session_id),
                        key_id: None,
                        reason: "status_changed".into(),
                    })
                    .await;
                    return Err(AuthError::InvalidRefresh);
                }
                let (access_token, expires_in) = self.access_token(&user, session_id)?;
                Ok(SignedIn {
                    user: self.view(&user).await?,
                    tokens: Some(IssuedTokens {
                        access_token,
                        refresh_token: new_refresh,
                        expires_in,
                        session_id,
                    }),
                })
            }
            Rotation::Reused {
                session_id,
                user_id,
            } => {
                self.forget_auth(AuthRevocation {
                    user_id,
                    session_id: Some(session_id),
                    key_id: None,
                    reason: "refresh_reuse".into(),
                })
                .await;
                self.access_revoked(user_id, Some(session_id), "refresh_reuse")
                    .await;
                tracing::warn!(%session_id, %user_id, "refresh token reused; session revoked");
                self.audit(
                    AuditEvent::new(AuthAction::RefreshReuse, Outcome::Failure, client)
                        .actor(user_id)
                        .target(session_id.to_string())
                        .details(json!({"revoked_session": session_id})),
                )
                .await;
                Err(AuthError::RefreshReused)
            }
            Rotation::Ended | Rotation::Unknown => Err(AuthError::InvalidRefresh),
        }
    }

    /// The session a current refresh token belongs to, with its user.
    pub async fn session_of_refresh(&self, refresh_token: &str) -> AuthResult<(Uuid, Uuid)> {
        self.store
            .session_of_refresh(&secret::token_hash(refresh_token))
            .await?
            .ok_or(AuthError::InvalidRefresh)
    }

    pub async fn logout(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        self.store
            .revoke_session(session_id, "logout", now_ms())
            .await?;
        self.forget_auth(AuthRevocation {
            user_id,
            session_id: Some(session_id),
            key_id: None,
            reason: "logout".into(),
        })
        .await;
        self.access_revoked(user_id, Some(session_id), "logout")
            .await;
        self.audit(
            AuditEvent::new(AuthAction::Logout, Outcome::Success, client)
                .actor(user_id)
                .target(session_id.to_string()),
        )
        .await;
        Ok(())
    }
}
