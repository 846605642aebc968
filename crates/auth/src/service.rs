//! The auth service's operations. Handlers call these; they call the store, the key ring and
//! the audit log.

use std::sync::Arc;

use async_trait::async_trait;
use confab_bus::events::{AccessRevoked, UserDeleted, UserRegistered};
use confab_bus::{Envelope, EventBus, JobQueue, NewJob};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{
    AccessClaims, AuthFailure, Authenticator, Credential, Principal, Role, Scope,
};
use confab_core::config::{AuthConfig, RegistrationPolicy};
use confab_core::extract::ClientMeta;
use confab_core::runtime::LiveSettings;
use confab_core::{new_id, now_ms};
use confab_store::StoreError;
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::domain::{
    self, ApiKeyView, GroupView, MAX_KEYS_PER_USER, User, UserStatus, UserView, normalize_email,
    normalize_name, password_problems,
};
use crate::guard::{GuardPolicy, LoginGuard, Verdict};
use crate::keys::{KeyError, KeyRing};
use crate::ports::{AuthStore, NewApiKey, NewSession, Rotation, UserFilter};
use crate::secret;

/// API keys are marked used at most this often, so authentication rarely writes.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// How long an authentication lookup is reused. Revocations in this process take effect at
/// once (the caches are invalidated); other replicas see them within this time.
const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Why an auth operation failed. [`ApiError`] gives each its status and code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Vec<String>,
    },
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("registration is closed; ask an administrator for an account")]
    RegistrationClosed,
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error(
        "too many failed sign-ins for this account from your address; try again in \
         {retry_after_secs} s"
    )]
    Throttled { retry_after_secs: u64 },
    #[error("the account waits for an administrator's approval")]
    Pending,
    #[error("the account is disabled")]
    Disabled,
    #[error("the refresh token is invalid, expired or revoked; sign in again")]
    InvalidRefresh,
    #[error("the refresh token was already used; the session has been revoked, sign in again")]
    RefreshReused,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error(
        "an administrator reset this password; set a new one with POST /api/v1/auth/password/reset \
         (email, the temporary password as `password`, and `new_password`)"
    )]
    PasswordChangeRequired,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("internal: {0}")]
    Internal(String),
}

impl AuthError {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AuthError::Invalid {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Invalid {
                code,
                message,
                details,
            } => ApiError::validation(code, message).with_details(details),
            AuthError::EmailTaken => ApiError::conflict("email_taken", message),
            AuthError::RegistrationClosed => ApiError::forbidden("registration_closed", message),
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::Throttled { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_throttled", message)
                    .with_retry_after(retry_after_secs)
            }
            AuthError::Pending => ApiError::forbidden("account_pending", message),
            AuthError::Disabled => ApiError::forbidden("account_disabled", message),
            AuthError::InvalidRefresh => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", message)
            }
            AuthError::RefreshReused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "refresh_token_reused", message)
            }
            AuthError::WrongPassword => ApiError::forbidden("wrong_password", message),
            AuthError::PasswordChangeRequired => {
                ApiError::forbidden("password_change_required", message)
            }
            AuthError::NotFound(_) => ApiError::not_found(message),
            AuthError::Conflict { code, message } => ApiError::conflict(code, message),
            AuthError::Store(StoreError::NotFound) => ApiError::not_found("not found"),
            AuthError::Store(StoreError::Unavailable(detail)) => ApiError::unavailable(detail),
            AuthError::Store(other) => ApiError::internal(other.to_string()),
            AuthError::Keys(e) => ApiError::internal(e.to_string()),
            AuthError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// The job kind that deletes a user's data everywhere, then the account.
pub const PURGE_USER_JOB: &str = "user.purge";

/// Tokens handed to a client after sign-in or refresh.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub session_id: Uuid,
}

/// A user and, when the account may sign in at once, its tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserView,
    pub tokens: Option<IssuedTokens>,
}

/// A newly made API key: the secret is in `key`, shown once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: String,
    pub view: ApiKeyView,
}

/// Changes an admin may make to a user.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

pub struct AuthService {
    store: Arc<dyn AuthStore>,
    keys: Arc<KeyRing>,
    audit: Arc<dyn AuditLog>,
    config: AuthConfig,
    /// Hash checked when an email is unknown, so failures take the same time either way.
    dummy_hash: String,
    /// Failed sign-ins by account and address (brute-force protection).
    guard: LoginGuard,
    /// API-key lookups by key hash, so a request needs no query.
    key_cache: moka::future::Cache<String, crate::ports::ApiKeyAuth>,
    /// Session lookups by session id.
    session_cache: moka::future::Cache<Uuid, crate::ports::SessionAuth>,
    /// Users' role and status by id (`None`: no such user here), for service tokens.
    user_cache: moka::future::Cache<Uuid, Option<(Role, UserStatus)>>,
    /// Settings admins change at run time (the registration policy); `None`: the config's.
    settings: Option<LiveSettings>,
    /// Where deleting a user queues the purge of their data; `None`: deletion is refused.
    jobs: Option<Arc<dyn JobQueue>>,
    /// Where account events (`user.registered`, `user.deleted`, `access.revoked`) are
    /// published.
    events: Option<Arc<dyn EventBus>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

fn auth_cache<K, V>() -> moka::future::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::future::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(AUTH_CACHE_TTL)
        .build()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AuthResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Internal(format!("blocking task failed: {e}")))
}

async fn hash(password: String) -> AuthResult<String> {
    blocking(move || secret::hash_password(&password))
        .await?
        .map_err(AuthError::Internal)
}

async fn verify(password: String, hash: String) -> AuthResult<bool> {
    blocking(move || secret::verify_password(&password, &hash)).await
}

impl AuthService {
    pub async fn new(
        store: Arc<dyn AuthStore>,
        keys: Arc<KeyRing>,
        audit: Arc<dyn AuditLog>,
        config: AuthConfig,
    ) -> AuthResult<Self> {
        let dummy_hash = hash(secret::random_token()).await?;
        Ok(Self {
            store,
            keys,
            audit,
            guard: LoginGuard::new(GuardPolicy::from_config(&config)),
            config,
            dummy_hash,
            key_cache: auth_cache(),
            session_cache: auth_cache(),
            user_cache: auth_cache(),
            settings: None,
            jobs: None,
            events: None,
        })
    }

    /// Reads the registration policy from `settings` instead of the start-up config.
    pub fn with_settings(mut self, settings: LiveSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Lets admins delete users: the purge of their data is queued here.
    pub fn with_jobs(mut self, jobs: Arc<dyn JobQueue>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Publishes account events on `events`.
    pub fn with_events(mut self, events: Arc<dyn EventBus>) -> Self {
        self.events = Some(events);
        self
    }

    async fn publish(&self, envelope: Envelope) {
        if let Some(events) = &self.events
            && let Err(e) = events.publish(envelope).await
        {
            tracing::warn!(error = %e, "account event not published");
        }
    }

    /// Tells live connections (the chat service's WebSockets, on every replica) that a
    /// credential of `user_id` may have stopped working: they check theirs again and close
    /// when it has. Published after this process's lookup caches were cleared, so that
    /// check sees the change. `session_id`: the one session that ended; `None`: check all.
    async fn access_revoked(&self, user_id: Uuid, session_id: Option<Uuid>, reason: &str) {
        self.publish(Envelope::typed(&AccessRevoked {
            user_id,
            session_id,
            reason: reason.to_owned(),
        }))
        .await;
    }

    /// The registration policy in force.
    pub fn registration(&self) -> RegistrationPolicy {
        self.settings
            .as_ref()
            .map_or(self.config.registration, |s| s.get().registration)
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    async fn audit(&self, event: AuditEvent) {
        // The audit adapter logs its own failures; an audit outage must not lock users out.
        let _ = self.audit.record(event).await;
    }

    async fn view(&self, user: &User) -> AuthResult<UserView> {
        Ok(UserView::new(user, self.store.groups_of(user.id).await?))
    }

    fn refresh_ttl_ms(&self) -> i64 {
        confab_store::to_i64(self.config.refresh_token_ttl_secs.saturating_mul(1000))
    }

    fn access_token(&self, user: &User, session_id: Uuid) -> AuthResult<(String, u64)> {
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

    async fn start_session(&self, user: &User, client: &ClientMeta) -> AuthResult<IssuedTokens> {
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

    fn check_password_policy(password: &str, email: &str) -> AuthResult<()> {
        let problems = password_problems(password, email);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Invalid {
                code: "weak_password",
                message: format!(
                    "the password does not meet the policy: {}",
                    problems.join("; ")
                ),
                details: problems,
            })
        }
    }

    /// Creates an account as the registration policy allows. The first account is an admin.
    pub async fn register(
        &self,
        email: &str,
        name: &str,
        password: &str,
        client: &ClientMeta,
    ) -> AuthResult<SignedIn> {
        let policy = self.registration();
        if policy == RegistrationPolicy::Closed {
            self.audit(
                AuditEvent::new("auth.register", Outcome::Failure, client)
                    .details(json!({"reason": "closed"})),
            )
            .await;
            return Err(AuthError::RegistrationClosed);
        }
        let status = match policy {
            RegistrationPolicy::Approval => UserStatus::Pending,
            _ => UserStatus::Active,
        };
        let user = self
            .create_user(email, name, password, Role::User, status, true)
            .await?;
        self.audit(
            AuditEvent::new("auth.register", Outcome::Success, client)
                .actor(user.id)
                .target(user.id.to_string())
                .details(json!({"role": user.role, "status": user.status})),
        )
        .await;
        let tokens = match user.status {
            UserStatus::Active => Some(self.start_session(&user, client).await?),
            _ => None,
        };
        Ok(SignedIn {
            user: self.view(&user).await?,
            tokens,
        })
    }

    /// Creates an account directly (the CLI and admins); `first_is_admin` as in registration.
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: &str,
        role: Role,
        status: UserStatus,
        first_is_admin: bool,
    ) -> AuthResult<User> {
        let email = normalize_email(email).map_err(|m| AuthError::invalid("invalid_email", m))?;
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        Self::check_password_policy(password, &email)?;
        let password_hash = hash(password.to_owned()).await?;
        let now = now_ms();
        let user = User {
            id: new_id(),
            email,
            name,
            password_hash,
            role,
            status,
            failed_logins: 0,
            locked_until: None,
            must_change_password: false,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user, first_is_admin).await {
            Ok(user) => {
                self.publish(Envelope::typed(&UserRegistered {
                    user_id: user.id,
                    email: user.email.clone(),
                    status: user.status.as_str().to_owned(),
                }))
                .await;
                Ok(user)
            }
            Err(StoreError::Conflict(_)) => Err(AuthError::EmailTaken),
            Err(e) => Err(e.into()),
        }
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
                AuditEvent::new("auth.login", Outcome::Failure, client)
                    .actor(user.id)
                    .target(user.email.clone())
                    .details(json!({"reason": "password_change_required"})),
            )
            .await;
            return Err(AuthError::PasswordChangeRequired);
        }
        self.signed_in(user, client).await
    }

    async fn signed_in(&self, user: User, client: &ClientMeta) -> AuthResult<SignedIn> {
        let tokens = self.start_session(&user, client).await?;
        self.audit(
            AuditEvent::new("auth.login", Outcome::Success, client)
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
    async fn check_credentials(
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
            AuditEvent::new("auth.login", Outcome::Failure, client)
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
                        AuditEvent::new("auth.login_throttled", Outcome::Success, client)
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

    /// Sets a new password after an administrator's reset: the temporary password proves
    /// who it is (failures are counted like sign-ins); then signs in.
    pub async fn complete_password_reset(
        &self,
        email: &str,
        temporary: &str,
        new: &str,
        client: &ClientMeta,
    ) -> AuthResult<SignedIn> {
        let user = self.check_credentials(email, temporary, client).await?;
        if !user.must_change_password {
            return Err(AuthError::Conflict {
                code: "no_reset_pending",
                message: "no password reset is pending for this account; use POST /api/v1/auth/password while signed in".into(),
            });
        }
        Self::check_password_policy(new, &user.email)?;
        if temporary == new {
            return Err(AuthError::invalid(
                "weak_password",
                "the new password must differ from the temporary one",
            ));
        }
        let new_hash = hash(new.to_owned()).await?;
        self.store
            .set_password(user.id, &new_hash, false, now_ms())
            .await?;
        self.audit(
            AuditEvent::new("auth.password_reset_completed", Outcome::Success, client)
                .actor(user.id)
                .target(user.id.to_string()),
        )
        .await;
        let user = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        self.signed_in(user, client).await
    }

    /// An administrator resets a user's password: a temporary password (returned once) that
    /// only lets the user choose a new one; every session and API key of the user ends.
    pub async fn reset_password(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<String> {
        let user = self.existing_user(id).await?;
        let temporary = secret::random_token();
        let temp_hash = hash(temporary.clone()).await?;
        let now = now_ms();
        self.store.set_password(id, &temp_hash, true, now).await?;
        let revoked = self
            .store
            .revoke_sessions_of(id, None, "password reset by an administrator", now)
            .await?;
        // Whoever may have learnt the old password may also have made keys with it.
        let revoked_keys = self.store.revoke_api_keys_of(id, now).await?;
        self.forget_auth().await;
        self.access_revoked(id, None, "password_reset").await;
        self.audit(
            AuditEvent::new("auth.password_reset", Outcome::Success, client)
                .actor(actor.user_id)
                .target(user.id.to_string())
                .details(json!({"revoked_sessions": revoked, "revoked_api_keys": revoked_keys})),
        )
        .await;
        Ok(temporary)
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
                    self.session_cache.invalidate(&session_id).await;
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
                self.session_cache.invalidate(&session_id).await;
                self.access_revoked(user_id, Some(session_id), "refresh_reuse")
                    .await;
                tracing::warn!(%session_id, %user_id, "refresh token reused; session revoked");
                self.audit(
                    AuditEvent::new("auth.refresh_reuse", Outcome::Failure, client)
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

    /// Forgets cached authentication after a revocation or a change of role or status.
    async fn forget_auth(&self) {
        self.key_cache.invalidate_all();
        self.session_cache.invalidate_all();
        self.user_cache.invalidate_all();
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
        self.session_cache.invalidate(&session_id).await;
        self.access_revoked(user_id, Some(session_id), "logout")
            .await;
        self.audit(
            AuditEvent::new("auth.logout", Outcome::Success, client)
                .actor(user_id)
                .target(session_id.to_string()),
        )
        .await;
        Ok(())
    }

    pub async fn user(&self, id: Uuid) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        self.view(&user).await
    }

    pub async fn update_name(&self, id: Uuid, name: &str) -> AuthResult<UserView> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        self.store.update_name(id, &name, now_ms()).await?;
        self.audit(
            AuditEvent::new(
                "auth.profile_updated",
                Outcome::Success,
                &ClientMeta::default(),
            )
            .actor(id)
            .target(id.to_string())
            .details(json!({"name": name})),
        )
        .await;
        self.user(id).await
    }

    /// Changes the password, signs out every other session and revokes every API key.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        current: &str,
        new: &str,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        if current.len() > domain::MAX_PASSWORD_BYTES
            || !verify(current.to_owned(), user.password_hash.clone()).await?
        {
            self.audit(
                AuditEvent::new("auth.password_change", Outcome::Failure, client)
                    .actor(user_id)
                    .target(user_id.to_string()),
            )
            .await;
            return Err(AuthError::WrongPassword);
        }
        Self::check_password_policy(new, &user.email)?;
        if current == new {
            return Err(AuthError::invalid(
                "weak_password",
                "the new password must differ from the current one",
            ));
        }
        let new_hash = hash(new.to_owned()).await?;
        let now = now_ms();
        self.store
            .set_password(user_id, &new_hash, false, now)
            .await?;
        let revoked = self
            .store
            .revoke_sessions_of(user_id, Some(session_id), "password changed", now)
            .await?;
        // A password change is what a user does after a suspected compromise: keys made by
        // whoever knew the old password must stop working too.
        let revoked_keys = self.store.revoke_api_keys_of(user_id, now).await?;
        self.forget_auth().await;
        self.access_revoked(user_id, None, "password_changed").await;
        self.audit(
            AuditEvent::new("auth.password_change", Outcome::Success, client)
                .actor(user_id)
                .target(user_id.to_string())
                .details(json!({"revoked_sessions": revoked, "revoked_api_keys": revoked_keys})),
        )
        .await;
        Ok(())
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<i64>,
        client: &ClientMeta,
    ) -> AuthResult<CreatedKey> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        let scopes = domain::validate_scopes(scopes, principal.role)
            .map_err(|m| AuthError::invalid("invalid_scopes", m))?;
        let now = now_ms();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::invalid(
                "invalid_expiry",
                "expires_at must be in the future",
            ));
        }
        if self.store.count_api_keys(principal.user_id).await? >= MAX_KEYS_PER_USER {
            return Err(AuthError::Conflict {
                code: "too_many_keys",
                message: format!(
                    "a user may hold at most {MAX_KEYS_PER_USER} API keys; revoke one first"
                ),
            });
        }
        let key = secret::new_api_key();
        let record = NewApiKey {
            id: new_id(),
            user_id: principal.user_id,
            name,
            prefix: key.chars().take(secret::API_KEY_SHOWN_CHARS).collect(),
            key_hash: secret::token_hash(&key),
            scopes,
            created_at: now,
            expires_at,
        };
        self.store.insert_api_key(&record).await?;
        self.audit(
            AuditEvent::new("auth.api_key_created", Outcome::Success, client)
                .actor(principal.user_id)
                .target(record.id.to_string())
                .details(
                    json!({"name": record.name, "scopes": record.scopes, "expires_at": expires_at}),
                ),
        )
        .await;
        Ok(CreatedKey {
            key,
            view: ApiKeyView {
                id: record.id,
                name: record.name,
                prefix: record.prefix,
                scopes: record.scopes,
                created_at: now,
                last_used_at: None,
                expires_at,
            },
        })
    }

    pub async fn list_api_keys(&self, user_id: Uuid) -> AuthResult<Vec<ApiKeyView>> {
        Ok(self.store.list_api_keys(user_id).await?)
    }

    /// Revokes one of the caller's keys; another user's key id is "not found".
    pub async fn revoke_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if !self.store.revoke_api_key(user_id, key_id, now_ms()).await? {
            return Err(AuthError::NotFound("API key"));
        }
        self.forget_auth().await;
        self.access_revoked(user_id, None, "key_revoked").await;
        self.audit(
            AuditEvent::new("auth.api_key_revoked", Outcome::Success, client)
                .actor(user_id)
                .target(key_id.to_string()),
        )
        .await;
        Ok(())
    }

    pub async fn list_users(&self, filter: &UserFilter) -> AuthResult<Vec<UserView>> {
        let users = self.store.list_users(filter).await?;
        let mut views = Vec::with_capacity(users.len());
        for user in &users {
            views.push(self.view(user).await?);
        }
        Ok(views)
    }

    /// Admin changes to a user's role or status; refuses to leave no active admin.
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: Uuid,
        changes: &UserChanges,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        let demotes_admin = user.role == Role::Admin
            && user.status == UserStatus::Active
            && (changes.role.is_some_and(|r| r != Role::Admin)
                || changes.status.is_some_and(|s| s != UserStatus::Active));
        if demotes_admin && self.store.count_active_admins().await? <= 1 {
            return Err(AuthError::Conflict {
                code: "last_admin",
                message: "this is the only active admin; make another admin first".into(),
            });
        }
        let now = now_ms();
        // Whatever changes, sessions and keys must be looked up afresh.
        self.forget_auth().await;
        if let Some(role) = changes.role.filter(|r| *r != user.role) {
            self.store.set_role(id, role, now).await?;
            self.audit(
                AuditEvent::new("auth.role_changed", Outcome::Success, client)
                    .actor(actor.user_id)
                    .target(id.to_string())
                    .details(json!({"from": user.role, "to": role})),
            )
            .await;
        }
        if let Some(status) = changes.status.filter(|s| *s != user.status) {
            self.store.set_status(id, status, now).await?;
            if status == UserStatus::Disabled {
                self.store
                    .revoke_sessions_of(id, None, "account disabled", now)
                    .await?;
            }
            let action = match (user.status, status) {
                (UserStatus::Pending, UserStatus::Active) => "auth.user_approved",
                (_, UserStatus::Disabled) => "auth.user_disabled",
                _ => "auth.user_status_changed",
            };
            self.audit(
                AuditEvent::new(action, Outcome::Success, client)
                    .actor(actor.user_id)
                    .target(id.to_string())
                    .details(json!({"from": user.status, "to": status})),
            )
            .await;
        }
        // Again after the change, in case a request cached the old state meanwhile.
        self.forget_auth().await;
        if let Some(status) = changes.status.filter(|s| *s != user.status)
            && status != UserStatus::Active
        {
            let reason = if status == UserStatus::Disabled {
                "disabled"
            } else {
                "status_changed"
            };
            self.access_revoked(id, None, reason).await;
        } else if changes.role.is_some_and(|r| r != user.role) {
            self.access_revoked(id, None, "role_changed").await;
        }
        self.user(id).await
    }

    /// Locks an account: it cannot sign in and its sessions and keys stop working at once,
    /// until an admin unlocks it.
    pub async fn lock_user(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        if user.status == UserStatus::Disabled {
            return self.view(&user).await;
        }
        if id == actor.user_id {
            return Err(AuthError::Conflict {
                code: "cannot_lock_self",
                message: "you cannot lock your own account".into(),
            });
        }
        self.guard_last_admin(&user).await?;
        let now = now_ms();
        self.store.set_status(id, UserStatus::Disabled, now).await?;
        let revoked = self
            .store
            .revoke_sessions_of(id, None, "account locked", now)
            .await?;
        self.forget_auth().await;
        self.access_revoked(id, None, "locked").await;
        self.audit(
            AuditEvent::new("auth.user_locked", Outcome::Success, client)
                .actor(actor.user_id)
                .target(id.to_string())
                .details(json!({"from": user.status, "revoked_sessions": revoked})),
        )
        .await;
        self.user(id).await
    }

    /// Unlocks an account: ends the waits after failed sign-ins early, and re-enables an
    /// account an admin locked.
    pub async fn unlock_user(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        self.guard.forget(&user.email).await;
        // Lockouts of earlier versions were kept in the row; end those too.
        self.store.clear_failed_logins(user.id).await?;
        if user.status == UserStatus::Disabled {
            self.store
                .set_status(id, UserStatus::Active, now_ms())
                .await?;
            self.forget_auth().await;
        }
        self.audit(
            AuditEvent::new("auth.user_unlocked", Outcome::Success, client)
                .actor(actor.user_id)
                .target(id.to_string())
                .details(json!({"was": user.status})),
        )
        .await;
        self.user(id).await
    }

    async fn existing_user(&self, id: Uuid) -> AuthResult<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AuthError::NotFound("user"))
    }

    /// Refuses to take away the last active admin.
    async fn guard_last_admin(&self, user: &User) -> AuthResult<()> {
        if user.role == Role::Admin
            && user.status == UserStatus::Active
            && self.store.count_active_admins().await? <= 1
        {
            return Err(AuthError::Conflict {
                code: "last_admin",
                message: "this is the only active admin; make another admin first".into(),
            });
        }
        Ok(())
    }

    /// Deletes a user with all their data, as one operation that survives a crash: the
    /// account is disabled and signed out at once, then a `user.purge` job (retried until it
    /// succeeds) deletes the user's data in every service and finally the account itself.
    /// Returns the job's id.
    pub async fn delete_user(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<Uuid> {
        let Some(jobs) = &self.jobs else {
            return Err(AuthError::Internal(
                "user deletion needs the job queue".into(),
            ));
        };
        let user = self.existing_user(id).await?;
        if id == actor.user_id {
            return Err(AuthError::Conflict {
                code: "cannot_delete_self",
                message: "you cannot delete your own account; ask another admin".into(),
            });
        }
        self.guard_last_admin(&user).await?;
        let now = now_ms();
        self.store.set_status(id, UserStatus::Disabled, now).await?;
        self.store
            .revoke_sessions_of(id, None, "account deleted", now)
            .await?;
        self.forget_auth().await;
        self.access_revoked(id, None, "deleted").await;
        let job = jobs
            .enqueue(
                NewJob::new(PURGE_USER_JOB, json!({"user_id": id}))
                    .priority(10)
                    .max_attempts(20)
                    .created_by(actor.user_id),
            )
            .await
            .map_err(|e| AuthError::Internal(format!("cannot queue the purge: {e}")))?;
        self.audit(
            AuditEvent::new("auth.user_deleted", Outcome::Success, client)
                .actor(actor.user_id)
                .target(id.to_string())
                .details(json!({"email": user.email, "job": job.id})),
        )
        .await;
        Ok(job.id)
    }

    /// The last step of a user's purge: the account row with its sessions, keys and group
    /// memberships. Idempotent: `false` when it was already gone.
    pub async fn purge_account(&self, id: Uuid) -> AuthResult<bool> {
        let deleted = self.store.delete_user(id).await?;
        self.forget_auth().await;
        if deleted {
            self.publish(Envelope::typed(&UserDeleted { user_id: id }))
                .await;
        }
        Ok(deleted)
    }

    pub async fn create_group(
        &self,
        actor: &Principal,
        name: &str,
        client: &ClientMeta,
    ) -> AuthResult<GroupView> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        let id = new_id();
        let now = now_ms();
        match self.store.create_group(id, &name, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(AuthError::Conflict {
                    code: "group_exists",
                    message: format!("a group named `{name}` already exists"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            AuditEvent::new("auth.group_created", Outcome::Success, client)
                .actor(actor.user_id)
                .target(id.to_string())
                .details(json!({"name": name})),
        )
        .await;
        Ok(GroupView {
            id,
            name,
            members: Vec::new(),
            created_at: now,
        })
    }

    pub async fn list_groups(&self) -> AuthResult<Vec<GroupView>> {
        Ok(self.store.list_groups().await?)
    }

    pub async fn delete_group(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if !self.store.delete_group(id).await? {
            return Err(AuthError::NotFound("group"));
        }
        self.audit(
            AuditEvent::new("auth.group_deleted", Outcome::Success, client)
                .actor(actor.user_id)
                .target(id.to_string()),
        )
        .await;
        Ok(())
    }

    pub async fn set_membership(
        &self,
        actor: &Principal,
        group_id: Uuid,
        user_id: Uuid,
        member: bool,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if member {
            match self.store.add_member(group_id, user_id, now_ms()).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(AuthError::NotFound("group or user")),
                Err(e) => return Err(e.into()),
            }
        } else if !self.store.remove_member(group_id, user_id).await? {
            return Err(AuthError::NotFound("membership"));
        }
        self.audit(
            AuditEvent::new(
                if member {
                    "auth.group_member_added"
                } else {
                    "auth.group_member_removed"
                },
                Outcome::Success,
                client,
            )
            .actor(actor.user_id)
            .target(group_id.to_string())
            .details(json!({"user": user_id})),
        )
        .await;
        Ok(())
    }

    /// Records an administrative action taken from the command line (no actor, no client).
    pub async fn audit_cli(
        &self,
        action: &'static str,
        target: String,
        details: serde_json::Value,
    ) {
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert("via".into(), json!("cli"));
        }
        self.audit(
            AuditEvent::new(action, Outcome::Success, &ClientMeta::default())
                .target(target)
                .details(details),
        )
        .await;
    }

    /// For the CLI: a user's role by email.
    pub async fn set_role_by_email(&self, email: &str, role: Role) -> AuthResult<UserView> {
        let email = normalize_email(email).map_err(|m| AuthError::invalid("invalid_email", m))?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        if user.role == Role::Admin
            && role != Role::Admin
            && self.store.count_active_admins().await? <= 1
        {
            return Err(AuthError::Conflict {
                code: "last_admin",
                message: "this is the only active admin; make another admin first".into(),
            });
        }
        self.store.set_role(user.id, role, now_ms()).await?;
        self.forget_auth().await;
        if role != user.role {
            self.access_revoked(user.id, None, "role_changed").await;
        }
        self.audit_cli(
            "auth.role_changed",
            user.id.to_string(),
            json!({"from": user.role, "to": role}),
        )
        .await;
        self.user(user.id).await
    }

    /// For the CLI: approve a pending user by email.
    pub async fn approve_by_email(&self, email: &str) -> AuthResult<UserView> {
        let email = normalize_email(email).map_err(|m| AuthError::invalid("invalid_email", m))?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        self.store
            .set_status(user.id, UserStatus::Active, now_ms())
            .await?;
        self.forget_auth().await;
        self.audit_cli(
            "auth.user_approved",
            user.id.to_string(),
            json!({"from": user.status, "to": UserStatus::Active}),
        )
        .await;
        self.user(user.id).await
    }

    async fn authenticate_key(&self, key: &str) -> Result<Principal, AuthFailure> {
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

    async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthFailure> {
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
