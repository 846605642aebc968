//! Users in the SQL auth store: sign-up (the first user an admin, atomically), lookups,
//! listings with filters, failed sign-ins, profile, password, role and status changes, deletion.

use confab_core::auth::Role;
use confab_store::Db;
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{User, UserStatus};
use crate::ports::{StoreResult, UserFilter};

use super::{USER_COLUMNS, like_pattern, one_row, user_from_row};

pub(super) async fn insert_user(db: &Db, user: &User, first_is_admin: bool) -> StoreResult<User> {
    // On the writer, so SQLite's racing sign-ups queue here instead of failing a stale
    // read in WAL mode; for PostgreSQL it is the same pool.
    let mut tx = db.writer().begin().await?;
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

pub(super) async fn user_by_email(db: &Db, email: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

pub(super) async fn user_by_id(db: &Db, id: Uuid) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

pub(super) async fn list_users(db: &Db, filter: &UserFilter) -> StoreResult<Vec<User>> {
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
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

pub(super) async fn count_active_admins(db: &Db) -> StoreResult<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND status = 'active'")
            .fetch_one(db.pool())
            .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn clear_failed_logins(db: &Db, id: Uuid) -> StoreResult<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(super) async fn update_name(db: &Db, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
    let done = sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    one_row(done.rows_affected())
}

pub(super) async fn set_password(
    db: &Db,
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
    .execute(db.pool())
    .await?;
    one_row(done.rows_affected())
}

pub(super) async fn set_role(db: &Db, id: Uuid, role: Role, now: i64) -> StoreResult<()> {
    let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    one_row(done.rows_affected())
}

pub(super) async fn set_status(db: &Db, id: Uuid, status: UserStatus, now: i64) -> StoreResult<()> {
    let done = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    one_row(done.rows_affected())
}

pub(super) async fn delete_user(db: &Db, id: Uuid) -> StoreResult<bool> {
    let id = id.to_string();
    let mut tx = db.pool().begin().await?;
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
