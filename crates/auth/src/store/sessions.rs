//! Sessions in the SQL auth store: creation, the refresh-token rotation with reuse detection and
//! its grace window, and revocation one by one or per user.

use confab_store::{Db, StoreError};
use sqlx::Row;
use uuid::Uuid;

use crate::ports::{NewSession, Rotation, SessionAuth, StoreResult};

use super::{USER_COLUMNS, revoke_session_tx, role, status, user_from_row, uuid};

pub(super) async fn create_session(db: &Db, session: &NewSession) -> StoreResult<()> {
    let mut tx = db.pool().begin().await?;
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

pub(super) async fn session_auth(db: &Db, session_id: Uuid) -> StoreResult<Option<SessionAuth>> {
    let row = sqlx::query(
        "SELECT s.user_id, s.expires_at, s.revoked_at, u.role, u.status \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(session_id.to_string())
    .fetch_optional(db.pool())
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

pub(super) async fn rotate_refresh(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    now: i64,
    ttl_ms: i64,
    grace_ms: i64,
) -> StoreResult<Rotation> {
    // The transaction starts with a write so SQLite takes its write lock up front.
    let mut tx = db.pool().begin().await?;
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
        session_id: Uuid::parse_str(&session_id).map_err(|e| StoreError::Other(e.to_string()))?,
        user,
    })
}

pub(super) async fn session_of_refresh(db: &Db, hash: &str) -> StoreResult<Option<(Uuid, Uuid)>> {
    let row = sqlx::query(
        "SELECT t.session_id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1 AND t.used_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((uuid(&row, "session_id")?, uuid(&row, "user_id")?)))
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
}

pub(super) async fn revoke_session(
    db: &Db,
    session_id: Uuid,
    reason: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(session_id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(super) async fn revoke_sessions_of(
    db: &Db,
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
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}
