//! The auth service's operations, one module per seam: [`accounts`] (registration, profile,
//! passwords), [`sessions`] (sign-in, refresh, logout), [`api_keys`], [`admin`] (users and
//! groups, for admins and the command line), `purge` (deleting a user across services: the
//! request, the services' answers, the wait) and [`authenticator`] (the `Authenticator` adapter
//! with its lookup caches). Handlers call these; they call the store, the key ring and the
//! audit log. This module holds the service, its errors and what the seams share.

mod accounts;
mod admin;
mod api_keys;
mod authenticator;
mod purge;
mod sessions;

pub use purge::{
    PURGE_ANSWERS_CONSUMER, PURGE_ANSWERS_PREFIX, PurgeAnswers, PurgeDeps, PurgeRun,
    valid_participant,
};

use std::sync::Arc;

use async_trait::async_trait;
use confab_bus::events::{
    AUTH_REVOCATIONS_TOPIC, AccessRevoked, AuthRevocation, UserDeleted, UserRegistered,
};
use confab_bus::{Envelope, EventBus, JobQueue, NewJob, Received};
use confab_cache::RevocableCache;
use confab_core::audit::{AuditEvent, AuditLog, Outcome};
use confab_core::auth::{
    AccessClaims, AdminUser, AuthFailure, Authenticator, Credential, Principal, Role, Scope,
};
use confab_core::config::{AuthConfig, RegistrationPolicy};
use confab_core::extract::ClientMeta;
use confab_core::runtime::LiveSettings;
use confab_core::{new_id, now_ms};
use confab_store::StoreError;
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

/// How long an authentication lookup is reused. Revocations take effect at once: in this
/// process the caches drop the user's entries, and every other replica's authenticators do
/// when the published [`AuthRevocation`] reaches them; this bounds a missed one.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

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

/// What the auth service needs from the process around it (the one way services are
/// constructed: `<Service>Deps` plus settings).
pub struct AuthDeps {
    pub store: Arc<dyn AuthStore>,
    pub keys: Arc<KeyRing>,
    pub audit: Arc<dyn AuditLog>,
    /// Settings admins change at run time (the registration policy); `None`: the config's.
    pub settings: Option<LiveSettings>,
    /// Where deleting a user queues the purge of their data; `None`: deletion is refused.
    pub jobs: Option<Arc<dyn JobQueue>>,
    /// Where account events (`user.registered`, `user.deleted`, `access.revoked`) are
    /// published; `None`: nowhere.
    pub events: Option<Arc<dyn EventBus>>,
    /// Deleting users across services: the durable events and the services that must
    /// answer; `None`: the `user.purge` job cannot run.
    pub purge: Option<PurgeDeps>,
    /// Where sign-in failures are counted: in this process, or shared by every replica (Redis, split mode), so a brute force spread over replicas is
    /// counted once.
    pub login_counters: Arc<dyn confab_cache::Counters>,
}

impl std::fmt::Debug for AuthDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDeps").finish_non_exhaustive()
    }
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
    key_cache: RevocableCache<String, crate::ports::ApiKeyAuth>,
    /// Session lookups by session id.
    session_cache: RevocableCache<Uuid, crate::ports::SessionAuth>,
    /// Users' role and status by id (`None`: no such user here), for service tokens.
    user_cache: RevocableCache<Uuid, Option<(Role, UserStatus)>>,
    /// Settings admins change at run time (the registration policy); `None`: the config's.
    settings: Option<LiveSettings>,
    /// Where deleting a user queues the purge of their data; `None`: deletion is refused.
    jobs: Option<Arc<dyn JobQueue>>,
    /// Where account events (`user.registered`, `user.deleted`, `access.revoked`) are
    /// published.
    events: Option<Arc<dyn EventBus>>,
    purge: Option<PurgeDeps>,
    /// Bumped whenever this process records a purge answer, so waiting purges look at once.
    purge_answered: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

fn auth_cache<K, V>() -> RevocableCache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    RevocableCache::new(100_000, AUTH_CACHE_TTL)
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
    pub async fn new(deps: AuthDeps, config: AuthConfig) -> AuthResult<Self> {
        let dummy_hash = hash(secret::random_token()).await?;
        Ok(Self {
            store: deps.store,
            keys: deps.keys,
            audit: deps.audit,
            guard: LoginGuard::new(GuardPolicy::from_config(&config), deps.login_counters),
            config,
            dummy_hash,
            key_cache: auth_cache(),
            session_cache: auth_cache(),
            user_cache: auth_cache(),
            settings: deps.settings,
            jobs: deps.jobs,
            events: deps.events,
            purge: deps.purge,
            purge_answered: tokio::sync::watch::Sender::new(0),
        })
    }

    pub(super) async fn publish(&self, envelope: Envelope) {
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
    pub(super) async fn access_revoked(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
        reason: &str,
    ) {
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

    pub(super) async fn audit(&self, event: AuditEvent) {
        // The audit adapter logs its own failures; an audit outage must not lock users out.
        let _ = self.audit.record(event).await;
    }

    pub(super) async fn view(&self, user: &User) -> AuthResult<UserView> {
        Ok(UserView::new(user, self.store.groups_of(user.id).await?))
    }

    pub(super) fn check_password_policy(password: &str, email: &str) -> AuthResult<()> {
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

    /// Forgets what this process cached about the user's credentials after a revocation or
    /// a change of role or status, and tells every replica's authenticators to do the same
    /// ([`AuthRevocation`] on [`AUTH_REVOCATIONS_TOPIC`]). Called after the change is stored:
    /// a lookup that began before it is not cached (the caches' tickets).
    pub(super) async fn forget_auth(&self, revocation: AuthRevocation) {
        self.drop_cached(revocation.user_id).await;
        self.publish(Envelope::typed(&revocation)).await;
    }

    /// [`Self::forget_auth`] for every credential of the account.
    pub(super) async fn forget_user(&self, user_id: Uuid, reason: &str) {
        self.forget_auth(AuthRevocation {
            user_id,
            session_id: None,
            key_id: None,
            reason: reason.to_owned(),
        })
        .await;
    }

    async fn drop_cached(&self, user_id: Uuid) {
        self.key_cache.revoke_owner(user_id).await;
        self.session_cache.revoke_owner(user_id).await;
        self.user_cache.revoke_owner(user_id).await;
    }

    fn drop_all_cached(&self) {
        self.key_cache.revoke_all();
        self.session_cache.revoke_all();
        self.user_cache.revoke_all();
    }

    /// Follows [`AUTH_REVOCATIONS_TOPIC`] until `shutdown`: another replica's revocation
    /// drops the user's cached lookups here too, and missed events drop them all. Without an
    /// event bus there is no other replica and nothing to follow. The subscription is made
    /// before this returns, so a revocation published afterwards is seen.
    pub fn follow_revocations(
        self: &Arc<Self>,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let Some(events) = &self.events else {
            return;
        };
        let mut revocations = events.subscribe(AUTH_REVOCATIONS_TOPIC);
        let this = Arc::clone(self);
        tasks.spawn(async move {
            use futures::StreamExt;
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => break,
                    received = revocations.next() => received,
                };
                match received {
                    Some(Received::Event(envelope)) => {
                        if let Some(revocation) = envelope.decode::<AuthRevocation>() {
                            this.drop_cached(revocation.user_id).await;
                        }
                    }
                    Some(Received::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "auth revocations missed; dropping every cached lookup"
                        );
                        this.drop_all_cached();
                    }
                    None => break,
                }
            }
        });
    }

    pub(super) async fn existing_user(&self, id: Uuid) -> AuthResult<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AuthError::NotFound("user"))
    }
}
