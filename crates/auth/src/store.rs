//! The SQL adapter of [`AuthStore`], portable across SQLite and PostgreSQL.
//!
//! Long (about 720 lines) because it is the one SQL adapter of the whole `AuthStore` port, about
//! forty methods of one statement or transaction each, written for both SQL dialects.

use async_trait::async_trait;
use confab_core::auth::Role;
use confab_store::{Db, ServiceMigrations, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::domain::{ApiKeyView, GroupView, User, UserStatus, scopes_from_text, scopes_to_text};
use crate::ports::{
    ApiKeyAuth, AuthStore, NewApiKey, NewSession, Rotation, SessionAuth, SigningKeyRecord,
    StoreResult, UserFilter,
};

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
        // On the writer, so SQLite's racing sign-ups queue here instead of failing a stale
        // read in WAL mode; for PostgreSQL it is the same pool.
        let mut tx = self.db.writer().begin().await?;
        // The first admin is claimed in `auth_first_admin`'s one row before the user is
        // inserted. Under PostgreSQL's READ COMMITTED two racing first sign-ups both see no
        // users; the row's key makes the second claim wait for the first transaction and
        // then do nothing, so exactly one of them becomes the admin.
        let claimed = if first_is_admin {
            sqlx::query(
                "INSERT INTO auth_first_admin (id, user_id, claimed_at) \
                 SELECT 1, $1, $2 WHERE NOT EXISTS (SELECT 1 FROM users) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(user.id.to_string())
            .bind(user.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        } else {
            false
        };
        let (role, status) = if claimed {
            (Role::Admin, UserStatus::Active)
        } else {
            (user.role, user.status)
        };
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, $8, $8) \
             RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.id.to_string())
            .bind(&user.email)
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(role.as_str())
            .bind(status.as_str())
            .bind(i64::from(user.must_change_password))
            .bind(user.created_at)
            .fetch_one(&mut *tx)
            .await?;
        let stored = user_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        // Optional filters as nullable parameters: the Any driver's QueryBuilder numbers
        // placeholders for neither backend, and this keeps the statement static.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR LOWER(email) LIKE $2 ESCAPE '\\' OR LOWER(name) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4)) \
             ORDER BY created_at, id LIMIT $5"
        );
        let pattern = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(like_pattern);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.status.map(UserStatus::as_str))
            .bind(pattern)
            .bind(filter.after.as_ref().map(|(at, _)| *at))
            .bind(filter.after.as_ref().map(|(_, id)| id.clone()))
            .bind(i64::from(filter.limit) + 1)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    async fn count_active_admins(&self) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND status = 'active'",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn clear_failed_logins(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn update_name(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now)
            .bind(id.to_string())
            .execute(self.db.pool())
            .await?;
        one_row(done.rows_affected())
    }

    async fn set_password(
        &self,
        id: Uuid,
        hash: &str,
        must_change: bool,
        now: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(hash)
        .bind(i64::from(must_change))
        .bind(now)
        .bind(id.to_string())
        .execute(self.db.pool())
        .await?;
        one_row(done.rows_affected())
    }

    async fn set_role(&self, id: Uuid, role: Role, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now)
            .bind(id.to_string())
            .execute(self.db.pool())
            .await?;
        one_row(done.rows_affected())
    }

    async fn set_status(&self, id: Uuid, status: UserStatus, now: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(id.to_string())
            .execute(self.db.pool())
            .await?;
        one_row(done.rows_affected())
    }

    async fn delete_user(&self, id: Uuid) -> StoreResult<bool> {
        let id = id.to_string();
        let mut tx = self.db.pool().begin().await?;
        // The user row first, so SQLite takes its write lock before the reads of the
        // cascades; the foreign keys cascade too, the explicit deletes keep it independent
        // of that setting.
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for statement in [
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_keys WHERE user_id = $1",
            "DELETE FROM group_members WHERE user_id = $1",
        ] {
            sqlx::query(statement).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_session(&self, session: &NewSession) -> StoreResult<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(session.now)
        .bind(session.expires_at)
        .bind(session.ip.clone())
        .bind(session.user_agent.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&session.refresh_hash)
            .bind(session.id.to_string())
            .bind(session.now)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_auth(&self, session_id: Uuid) -> StoreResult<Option<SessionAuth>> {
        let row = sqlx::query(
            "SELECT s.user_id, s.expires_at, s.revoked_at, u.role, u.status \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionAuth {
            user_id: uuid(&row, "user_id")?,
            role: role(&row.try_get::<String, _>("role")?)?,
            status: status(&row.try_get::<String, _>("status")?)?,
            expires_at: row.try_get("expires_at")?,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        }))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        ttl_ms: i64,
        grace_ms: i64,
    ) -> StoreResult<Rotation> {
        // The transaction starts with a write so SQLite takes its write lock up front.
        let mut tx = self.db.pool().begin().await?;
        let mut claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row = sqlx::query(
            "SELECT t.session_id, t.expires_at AS token_expires, t.used_at, s.user_id, s.expires_at, \
             s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let session_id: String = row.try_get("session_id")?;
        let user_id = uuid(&row, "user_id")?;
        let revoked = row.try_get::<Option<i64>, _>("revoked_at")?.is_some();
        let expired = row.try_get::<i64, _>("expires_at")? <= now
            || row.try_get::<i64, _>("token_expires")? <= now;
        if claimed == 0 && !revoked && !expired && grace_ms > 0 {
            // Two tabs (or two requests of one client) refreshing with the same token at
            // once: the later one comes within the grace window, with the token the session
            // used last. It gets a token of its own; the family lives on.
            let used_at: Option<i64> = row.try_get("used_at")?;
            let later = sqlx::query(
                "SELECT COUNT(*) AS n FROM refresh_tokens WHERE session_id = $1 AND used_at > $2",
            )
            .bind(&session_id)
            .bind(used_at.unwrap_or(i64::MAX))
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
            if used_at.is_some_and(|at| now - at <= grace_ms) && later == 0 {
                claimed = 1;
            }
        }
        if claimed == 0 {
            // Presented twice: whoever holds the other copy may be a thief. End the family.
            revoke_session_tx(&mut tx, &session_id, "refresh token reuse", now).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused {
                session_id: Uuid::parse_str(&session_id)
                    .map_err(|e| StoreError::Other(e.to_string()))?,
                user_id,
            });
        }
        if revoked || expired {
            tx.commit().await?;
            return Ok(Rotation::Ended);
        }
        let expires_at = now + ttl_ms;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(new_hash)
            .bind(&session_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3")
            .bind(now)
            .bind(expires_at)
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let user_row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&user_row)?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            session_id: Uuid::parse_str(&session_id)
                .map_err(|e| StoreError::Other(e.to_string()))?,
            user,
        })
    }

    async fn session_of_refresh(&self, hash: &str) -> StoreResult<Option<(Uuid, Uuid)>> {
        let row = sqlx::query(
            "SELECT t.session_id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             WHERE t.token_hash = $1 AND t.used_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| Ok((uuid(&row, "session_id")?, uuid(&row, "user_id")?)))
            .transpose()
            .map_err(|e: sqlx::Error| e.into())
    }

    async fn revoke_session(&self, session_id: Uuid, reason: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(session_id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn revoke_sessions_of(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id.to_string())
        .bind(except.map(|id| id.to_string()))
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn count_api_keys(&self, user_id: Uuid) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id.to_string())
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.to_string())
        .bind(key.user_id.to_string())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(scopes_to_text(&key.scopes))
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn list_api_keys(&self, user_id: Uuid) -> StoreResult<Vec<ApiKeyView>> {
        let rows = sqlx::query(
            "SELECT id, name, prefix, scopes, created_at, last_used_at, expires_at FROM api_keys \
             WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyView {
                    id: uuid(row, "id")?,
                    name: row.try_get("name")?,
                    prefix: row.try_get("prefix")?,
                    scopes: scopes_from_text(&row.try_get::<String, _>("scopes")?),
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(key_id.to_string())
        .bind(user_id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_api_keys_of(&self, user_id: Uuid, now: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn api_key_auth(&self, key_hash: &str) -> StoreResult<Option<ApiKeyAuth>> {
        let row = sqlx::query(
            "SELECT k.id, k.user_id, k.scopes, k.expires_at, k.revoked_at, k.last_used_at, u.role, u.status \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ApiKeyAuth {
            key_id: uuid(&row, "id")?,
            user_id: uuid(&row, "user_id")?,
            scopes: scopes_from_text(&row.try_get::<String, _>("scopes")?),
            expires_at: row.try_get("expires_at")?,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            last_used_at: row.try_get("last_used_at")?,
            role: role(&row.try_get::<String, _>("role")?)?,
            status: status(&row.try_get::<String, _>("status")?)?,
        }))
    }

    async fn touch_api_key(&self, key_id: Uuid, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(key_id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    private_key: row.try_get("private_key")?,
                    public_key: row.try_get("public_key")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn rotate_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, private_key, public_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_private_key(&self, kid: &str, old: &str, new: &str) -> StoreResult<()> {
        sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
            .bind(new)
            .bind(kid)
            .bind(old)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn create_group(&self, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn list_groups(&self) -> StoreResult<Vec<GroupView>> {
        let rows = sqlx::query(
            "SELECT g.id, g.name, g.created_at, m.user_id FROM groups g \
             LEFT JOIN group_members m ON m.group_id = g.id ORDER BY g.name, m.added_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut groups: Vec<GroupView> = Vec::new();
        for row in &rows {
            let id = uuid(row, "id")?;
            if groups.last().is_none_or(|g| g.id != id) {
                groups.push(GroupView {
                    id,
                    name: row.try_get("name")?,
                    members: Vec::new(),
                    created_at: row.try_get("created_at")?,
                });
            }
            if let Some(member) = row.try_get::<Option<String>, _>("user_id")?
                && let (Some(group), Ok(member)) = (groups.last_mut(), Uuid::parse_str(&member))
            {
                group.members.push(member);
            }
        }
        Ok(groups)
    }

    async fn delete_group(&self, id: Uuid) -> StoreResult<bool> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_member(&self, group_id: Uuid, user_id: Uuid, now: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO group_members (group_id, user_id, added_at) \
             SELECT g.id, u.id, $3 FROM groups g, users u WHERE g.id = $1 AND u.id = $2 \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group_id.to_string())
        .bind(user_id.to_string())
        .bind(now)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            // Either already a member (fine) or the group or user is missing.
            let exists = sqlx::query(
                "SELECT 1 AS one FROM group_members WHERE group_id = $1 AND user_id = $2",
            )
            .bind(group_id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        Ok(())
    }

    async fn remove_member(&self, group_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id.to_string())
            .bind(user_id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn groups_of(&self, user_id: Uuid) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| row.try_get("name"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
