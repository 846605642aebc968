//! The admin service. For now it owns the audit log: an append-only table behind the
//! [`AuditLog`] port that other services record through. User management, jobs, runtime
//! configuration and usage statistics will land here too.

pub mod usage;
pub mod usage_api;

use async_trait::async_trait;
use confab_core::audit::{AuditEvent, AuditLog};
use confab_store::{Db, ServiceMigrations, StoreError};
use sqlx::Row;

/// The admin service's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "admin",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// The audit log in the database.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    db: Db,
}

impl SqlAuditLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Appends one entry.
    pub async fn append(&self, event: AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, outcome, ip, user_agent, request_id, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(confab_core::new_id().to_string())
        .bind(confab_core::now_ms())
        .bind(event.actor.map(|a| a.to_string()))
        .bind(event.action)
        .bind(event.target)
        .bind(event.outcome.as_str())
        .bind(event.client.ip.map(|ip| ip.to_string()))
        .bind(event.client.user_agent)
        .bind(event.client.request_id)
        .bind(event.details.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The newest entries, optionally for one action only.
    pub async fn recent(
        &self,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, ip, user_agent, request_id, details \
             FROM audit_log WHERE ($1 IS NULL OR action = $1) ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(action)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let details: String = row.try_get("details")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    outcome: row.try_get("outcome")?,
                    ip: row.try_get("ip")?,
                    user_agent: row.try_get("user_agent")?,
                    request_id: row.try_get("request_id")?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[async_trait]
impl AuditLog for SqlAuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), String> {
        let action = event.action;
        self.append(event).await.map_err(|e| {
            tracing::error!(action, error = %e, "audit record failed");
            e.to_string()
        })
    }
}
