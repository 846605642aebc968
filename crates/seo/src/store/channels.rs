//! [`ChannelStore`] on SQLite and PostgreSQL. Tokens and verifiers arrive sealed; this module
//! never sees them in the clear.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlSeoStore, corrupt, uuid};
use crate::ports::{ChannelRecord, ChannelStatus, ChannelStore, PendingConsent, StoreResult};

/// The most consent flows one user may have under way.
const MAX_PENDING_CONSENTS: i64 = 5;

fn channel(row: &AnyRow) -> StoreResult<ChannelRecord> {
    let status: String = row.try_get("status")?;
    Ok(ChannelRecord {
        owner: uuid(row, "owner_id")?,
        refresh_token_sealed: row.try_get("refresh_token")?,
        status: ChannelStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        connected_at: row.try_get("connected_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl ChannelStore for SqlSeoStore {
    async fn save_channel(&self, record: &ChannelRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO seo_channels (owner_id, refresh_token, status, connected_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_id) DO UPDATE SET \
             refresh_token = excluded.refresh_token, status = excluded.status, \
             connected_at = excluded.connected_at, updated_at = excluded.updated_at",
        )
        .bind(record.owner.to_string())
        .bind(&record.refresh_token_sealed)
        .bind(record.status.as_str())
        .bind(record.connected_at)
        .bind(record.updated_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    async fn channel(&self, owner: Uuid) -> StoreResult<Option<ChannelRecord>> {
        let row = sqlx::query(
            "SELECT owner_id, refresh_token, status, connected_at, updated_at FROM seo_channels \
             WHERE owner_id = $1",
        )
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(channel).transpose()
    }

    async fn set_channel_status(
        &self,
        owner: Uuid,
        status: ChannelStatus,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE seo_channels SET status = $1, updated_at = $2 WHERE owner_id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(owner.to_string())
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    async fn delete_channel(&self, owner: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM seo_channels WHERE owner_id = $1")
            .bind(owner.to_string())
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_consent(&self, pending: &PendingConsent, now: i64) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query("DELETE FROM seo_oauth_states WHERE owner_id = $1 AND expires_at <= $2")
            .bind(pending.owner.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Keep the newest few: older flows of this user stop working.
        sqlx::query(
            "DELETE FROM seo_oauth_states WHERE owner_id = $1 AND state NOT IN \
             (SELECT state FROM seo_oauth_states WHERE owner_id = $2 \
              ORDER BY expires_at DESC LIMIT $3)",
        )
        .bind(pending.owner.to_string())
        .bind(pending.owner.to_string())
        .bind(MAX_PENDING_CONSENTS - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO seo_oauth_states (state, owner_id, verifier, redirect_uri, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&pending.state)
        .bind(pending.owner.to_string())
        .bind(&pending.verifier_sealed)
        .bind(&pending.redirect_uri)
        .bind(pending.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_consent(&self, state: &str, now: i64) -> StoreResult<Option<PendingConsent>> {
        let row = sqlx::query(
            "DELETE FROM seo_oauth_states WHERE state = $1 \
             RETURNING state, owner_id, verifier, redirect_uri, expires_at",
        )
        .bind(state)
        .fetch_optional(self.db.writer())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let pending = PendingConsent {
            state: row.try_get("state")?,
            owner: uuid(&row, "owner_id")?,
            verifier_sealed: row.try_get("verifier")?,
            redirect_uri: row.try_get("redirect_uri")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((pending.expires_at > now).then_some(pending))
    }
}
