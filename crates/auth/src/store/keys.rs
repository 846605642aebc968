//! API keys and signing keys in the SQL auth store: API keys (counted, stored by hash, listed,
//! revoked, looked up, touched) and the signing keys' rotation and re-encryption.

use confab_store::Db;
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{ApiKeyView, scopes_from_text, scopes_to_text};
use crate::ports::{ApiKeyAuth, NewApiKey, SigningKeyRecord, StoreResult};

use super::{role, status, uuid};

pub(super) async fn count_api_keys(db: &Db, user_id: Uuid) -> StoreResult<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id.to_string())
            .fetch_one(db.pool())
            .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn insert_api_key(db: &Db, key: &NewApiKey) -> StoreResult<()> {
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
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(super) async fn list_api_keys(db: &Db, user_id: Uuid) -> StoreResult<Vec<ApiKeyView>> {
    let rows = sqlx::query(
        "SELECT id, name, prefix, scopes, created_at, last_used_at, expires_at FROM api_keys \
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id.to_string())
    .fetch_all(db.pool())
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

pub(super) async fn revoke_api_key(
    db: &Db,
    user_id: Uuid,
    key_id: Uuid,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(key_id.to_string())
    .bind(user_id.to_string())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn revoke_api_keys_of(db: &Db, user_id: Uuid, now: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id.to_string())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn api_key_auth(db: &Db, key_hash: &str) -> StoreResult<Option<ApiKeyAuth>> {
    let row = sqlx::query(
        "SELECT k.id, k.user_id, k.scopes, k.expires_at, k.revoked_at, k.last_used_at, u.role, u.status \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
    )
    .bind(key_hash)
    .fetch_optional(db.pool())
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

pub(super) async fn touch_api_key(db: &Db, key_id: Uuid, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(key_id.to_string())
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(super) async fn signing_keys(db: &Db) -> StoreResult<Vec<SigningKeyRecord>> {
    let rows = sqlx::query(
        "SELECT kid, private_key, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at",
    )
    .fetch_all(db.pool())
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

pub(super) async fn rotate_signing_key(db: &Db, key: &SigningKeyRecord) -> StoreResult<()> {
    let mut tx = db.pool().begin().await?;
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

pub(super) async fn replace_private_key(
    db: &Db,
    kid: &str,
    old: &str,
    new: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
        .bind(new)
        .bind(kid)
        .bind(old)
        .execute(db.pool())
        .await?;
    Ok(())
}
