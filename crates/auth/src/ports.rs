//! What the auth service needs from storage. [`crate::store::SqlAuthStore`] is the adapter
//! (SQLite and PostgreSQL); the contract suite in `tests/it` runs against both.

use std::collections::BTreeMap;

use async_trait::async_trait;
use confab_core::auth::{Role, Scope};
use confab_store::StoreError;
use uuid::Uuid;

use crate::domain::{ApiKeyView, GroupView, User, UserStatus};

pub type StoreResult<T> = Result<T, StoreError>;

/// A new login session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub now: i64,
    pub expires_at: i64,
    pub refresh_hash: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What the authenticator needs to know about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    pub user_id: Uuid,
    pub role: Role,
    pub status: UserStatus,
    pub expires_at: i64,
    pub revoked: bool,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current (or just used, within the grace window): `new_hash` is now a
    /// token of the session.
    Rotated { session_id: Uuid, user: User },
    /// The token had already been used: the whole session (token family) is now revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// The session was revoked, or it or its token expired.
    Ended,
    /// No such token.
    Unknown,
}

/// A new API key (its hash; the key itself is shown once and never stored).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// What the authenticator needs to know about an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyAuth {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub last_used_at: Option<i64>,
    pub role: Role,
    pub status: UserStatus,
}

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER, base64; or encrypted (see [`crate::keys::KeyEncryption`]).
    pub private_key: String,
    /// The raw public key, base64url (the JWK `x`).
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Which users to list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    /// A substring of the email or name.
    pub query: Option<String>,
    /// List users created after this `(created_at, id)`.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// A user's deletion across services, as the auth service records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRecord {
    pub user_id: Uuid,
    pub requested_at: i64,
    /// When the durable purge request went out; `None`: not yet.
    pub published_at: Option<i64>,
    /// When the account was deleted; `None`: still waiting.
    pub finished_at: Option<i64>,
}

/// One service's answer to a purge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeAnswer {
    /// The answer's event id: each is recorded once.
    pub id: Uuid,
    pub user_id: Uuid,
    pub service: String,
    pub counts: BTreeMap<String, u64>,
    pub at: i64,
}

/// The auth service's record of users being deleted (the `user.purge` job).
#[async_trait]
pub trait PurgeStore: Send + Sync {
    /// The user's purge record, created (requested at `now`) when there is none.
    async fn open_purge(&self, user_id: Uuid, now: i64) -> StoreResult<PurgeRecord>;
    /// Notes that the purge request was published.
    async fn mark_purge_published(&self, user_id: Uuid, now: i64) -> StoreResult<()>;
    /// Records an answer; `false` when it was recorded before or no purge of its user is
    /// recorded (nothing to answer).
    async fn record_purge_answer(&self, answer: &PurgeAnswer) -> StoreResult<bool>;
    /// Every answer recorded for the user, oldest first.
    async fn purge_answers(&self, user_id: Uuid) -> StoreResult<Vec<PurgeAnswer>>;
    /// Notes that the account is gone.
    async fn finish_purge(&self, user_id: Uuid, now: i64) -> StoreResult<()>;
}

#[async_trait]
pub trait AuthStore: PurgeStore + Send + Sync {
    /// Inserts a user; when `first_is_admin`, the first user of the database becomes an active
    /// admin whatever `user.role`/`user.status` say. Returns the user as stored.
    async fn insert_user(&self, user: &User, first_is_admin: bool) -> StoreResult<User>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;
    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>>;
    async fn count_active_admins(&self) -> StoreResult<i64>;
    /// Clears the failure count and lockout that earlier versions kept in the user's row
    /// (sign-in failures are now counted by [`crate::guard::LoginGuard`]).
    async fn clear_failed_logins(&self, id: Uuid) -> StoreResult<()>;
    async fn update_name(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()>;
    async fn set_password(
        &self,
        id: Uuid,
        hash: &str,
        must_change: bool,
        now: i64,
    ) -> StoreResult<()>;
    async fn set_role(&self, id: Uuid, role: Role, now: i64) -> StoreResult<()>;
    async fn set_status(&self, id: Uuid, status: UserStatus, now: i64) -> StoreResult<()>;
    /// Deletes the user with their sessions, refresh tokens, keys and memberships; `false`
    /// when there was no such user.
    async fn delete_user(&self, id: Uuid) -> StoreResult<bool>;

    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    async fn session_auth(&self, session_id: Uuid) -> StoreResult<Option<SessionAuth>>;
    /// Uses `old_hash` once and installs `new_hash`; a second use revokes the session —
    /// except within `grace_ms` of the first use when `old_hash` is the session's most
    /// recently used token (two tabs refreshing at once): then `new_hash` is installed beside
    /// the first use's successor and nothing is revoked.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        ttl_ms: i64,
        grace_ms: i64,
    ) -> StoreResult<Rotation>;
    /// The session and user a (current) refresh token belongs to.
    async fn session_of_refresh(&self, hash: &str) -> StoreResult<Option<(Uuid, Uuid)>>;
    async fn revoke_session(&self, session_id: Uuid, reason: &str, now: i64) -> StoreResult<()>;
    /// Revokes every live session of a user but `except`; returns how many.
    async fn revoke_sessions_of(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64>;

    async fn count_api_keys(&self, user_id: Uuid) -> StoreResult<i64>;
    async fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()>;
    /// The user's keys that are not revoked, newest first.
    async fn list_api_keys(&self, user_id: Uuid) -> StoreResult<Vec<ApiKeyView>>;
    /// Revokes one of the user's keys; false if the user has no such live key.
    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid, now: i64) -> StoreResult<bool>;
    /// Revokes every live key of the user; returns how many.
    async fn revoke_api_keys_of(&self, user_id: Uuid, now: i64) -> StoreResult<u64>;
    async fn api_key_auth(&self, key_hash: &str) -> StoreResult<Option<ApiKeyAuth>>;
    async fn touch_api_key(&self, key_id: Uuid, now: i64) -> StoreResult<()>;

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a key and retires every other live key at `key.created_at`, atomically.
    async fn rotate_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Replaces a key's stored private key (`old` → `new`: encrypting it at rest); another
    /// replica that did the same first wins.
    async fn replace_private_key(&self, kid: &str, old: &str, new: &str) -> StoreResult<()>;

    async fn create_group(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()>;
    async fn list_groups(&self) -> StoreResult<Vec<GroupView>>;
    async fn delete_group(&self, id: Uuid) -> StoreResult<bool>;
    /// Adds a member; `NotFound` if the group or user does not exist.
    async fn add_member(&self, group_id: Uuid, user_id: Uuid, now: i64) -> StoreResult<()>;
    async fn remove_member(&self, group_id: Uuid, user_id: Uuid) -> StoreResult<bool>;
    async fn groups_of(&self, user_id: Uuid) -> StoreResult<Vec<String>>;
}
