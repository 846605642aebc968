//! The SQL adapter of [`AuthStore`], portable across SQLite and PostgreSQL.
//!
//! One module per area — `users`, `sessions`, `keys` (API keys and signing keys), `groups`,
//! `purges` (users being deleted across services) —
//! holds that area's statements, each a function over the [`Db`]; this module holds the row
//! readers they share and the `AuthStore` implementation that calls them.

use async_trait::async_trait;
use confab_core::auth::Role;
use confab_store::{Db, ServiceMigrations, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::domain::{ApiKeyView, GroupView, User, UserStatus};
use crate::ports::{
    ApiKeyAuth, AuthStore, NewApiKey, NewSession, Rotation, SessionAuth, SigningKeyRecord,
    StoreResult, UserFilter,
};

mod groups;
mod keys;
mod purges;
mod sessions;
mod users;

/// The auth service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "auth",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

#[derive(Debug, Clone)]
pub struct SqlAuthStore {
    db: Db,
}

impl SqlAuthStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

const USER_COLUMNS: &str = "id, email, name, password_hash, role, status, failed_logins, locked_until, \
                            must_change_password, created_at, updated_at";

fn uuid(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn role(text: &str) -> Result<Role, sqlx::Error> {
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn status(text: &str) -> Result<UserStatus, sqlx::Error> {
    UserStatus::parse(text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown user status {text}").into()))
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: uuid(row, "id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        role: role(&row.try_get::<String, _>("role")?)?,
        status: status(&row.try_get::<String, _>("status")?)?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// An update of one row by id: zero rows means there was no such row.
fn one_row(affected: u64) -> StoreResult<()> {
    if affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn like_pattern(query: &str) -> String {
    let escaped = query
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

async fn revoke_session_tx(
    tx: &mut Transaction<'_, Any>,
    session_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl AuthStore for SqlAuthStore {
    async fn insert_user(&self, user: &User, first_is_admin: bool) -> StoreResult<User> {
        users::insert_user(&self.db, user, first_is_admin).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        users::user_by_email(&self.db, email).await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        users::user_by_id(&self.db, id).await
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        users::list_users(&self.db, filter).await
    }

    async fn count_active_admins(&self) -> StoreResult<i64> {
        users::count_active_admins(&self.db).await
    }

    async fn clear_failed_logins(&self, id: Uuid) -> StoreResult<()> {
        users::clear_failed_logins(&self.db, id).await
    }

    async fn update_name(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
        users::update_name(&self.db, id, name, now).await
    }

    async fn set_password(
        &self,
        id: Uuid,
        hash: &str,
        must_change: bool,
        now: i64,
    ) -> StoreResult<()> {
        users::set_password(&self.db, id, hash, must_change, now).await
    }

    async fn set_role(&self, id: Uuid, role: Role, now: i64) -> StoreResult<()> {
        users::set_role(&self.db, id, role, now).await
    }

    async fn set_status(&self, id: Uuid, status: UserStatus, now: i64) -> StoreResult<()> {
        users::set_status(&self.db, id, status, now).await
    }

    async fn delete_user(&self, id: Uuid) -> StoreResult<bool> {
        users::delete_user(&self.db, id).await
    }

    async fn create_session(&self, session: &NewSession) -> StoreResult<()> {
        sessions::create_session(&self.db, session).await
    }

    async fn session_auth(&self, session_id: Uuid) -> StoreResult<Option<SessionAuth>> {
        sessions::session_auth(&self.db, session_id).await
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        ttl_ms: i64,
        grace_ms: i64,
    ) -> StoreResult<Rotation> {
        sessions::rotate_refresh(&self.db, old_hash, new_hash, now, ttl_ms, grace_ms).await
    }

    async fn session_of_refresh(&self, hash: &str) -> StoreResult<Option<(Uuid, Uuid)>> {
        sessions::session_of_refresh(&self.db, hash).await
    }

    async fn revoke_session(&self, session_id: Uuid, reason: &str, now: i64) -> StoreResult<()> {
        sessions::revoke_session(&self.db, session_id, reason, now).await
    }

    async fn revoke_sessions_of(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        sessions::revoke_sessions_of(&self.db, user_id, except, reason, now).await
    }

    async fn count_api_keys(&self, user_id: Uuid) -> StoreResult<i64> {
        keys::count_api_keys(&self.db, user_id).await
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        keys::insert_api_key(&self.db, key).await
    }

    async fn list_api_keys(&self, user_id: Uuid) -> StoreResult<Vec<ApiKeyView>> {
        keys::list_api_keys(&self.db, user_id).await
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid, now: i64) -> StoreResult<bool> {
        keys::revoke_api_key(&self.db, user_id, key_id, now).await
    }

    async fn revoke_api_keys_of(&self, user_id: Uuid, now: i64) -> StoreResult<u64> {
        keys::revoke_api_keys_of(&self.db, user_id, now).await
    }

    async fn api_key_auth(&self, key_hash: &str) -> StoreResult<Option<ApiKeyAuth>> {
        keys::api_key_auth(&self.db, key_hash).await
    }

    async fn touch_api_key(&self, key_id: Uuid, now: i64) -> StoreResult<()> {
        keys::touch_api_key(&self.db, key_id, now).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        keys::signing_keys(&self.db).await
    }

    async fn rotate_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        keys::rotate_signing_key(&self.db, key).await
    }

    async fn replace_private_key(&self, kid: &str, old: &str, new: &str) -> StoreResult<()> {
        keys::replace_private_key(&self.db, kid, old, new).await
    }

    async fn create_group(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
        groups::create_group(&self.db, id, name, now).await
    }

    async fn list_groups(&self) -> StoreResult<Vec<GroupView>> {
        groups::list_groups(&self.db).await
    }

    async fn delete_group(&self, id: Uuid) -> StoreResult<bool> {
        groups::delete_group(&self.db, id).await
    }

    async fn add_member(&self, group_id: Uuid, user_id: Uuid, now: i64) -> StoreResult<()> {
        groups::add_member(&self.db, group_id, user_id, now).await
    }

    async fn remove_member(&self, group_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        groups::remove_member(&self.db, group_id, user_id).await
    }

    async fn groups_of(&self, user_id: Uuid) -> StoreResult<Vec<String>> {
        groups::groups_of(&self.db, user_id).await
    }
}
