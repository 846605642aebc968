//! [`TransferStore`] on SQLite and PostgreSQL: an import in one transaction.

use async_trait::async_trait;
use uuid::Uuid;

use super::{SqlChatStore, params_json};
use crate::ports::{StoreResult, TransferStore};

/// Rows (conversations and messages) from which an import refreshes PostgreSQL's statistics.
const IMPORT_ANALYZE_ROWS: usize = 1_000;

#[async_trait]
impl TransferStore for SqlChatStore {
    async fn import(
        &self,
        user_id: Uuid,
        conversations: &[crate::transfer::Imported],
    ) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        for imported in conversations {
            let c = &imported.conversation;
            sqlx::query(
                "INSERT INTO conversations (id, user_id, title, model, system_prompt, params, \
                 folder, pinned, archived, active_leaf_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11)",
            )
            .bind(c.id.to_string())
            .bind(user_id.to_string())
            .bind(&c.title)
            .bind(&c.model)
            .bind(&c.system_prompt)
            .bind(params_json(&c.params))
            .bind(&c.folder)
            .bind(i64::from(c.pinned))
            .bind(i64::from(c.archived))
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await?;
            Self::write_tags(&mut tx, c.id, &c.tags).await?;
            // Parents come first (the import orders them so).
            for m in &imported.messages {
                sqlx::query(
                    "INSERT INTO messages (id, conversation_id, parent_id, role, content, status, \
                     model, error, prompt_tokens, completion_tokens, created_at, updated_at, \
                     user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(m.id.to_string())
                .bind(c.id.to_string())
                .bind(m.parent_id.map(|p| p.to_string()))
                .bind(m.role.as_str())
                .bind(&m.content)
                .bind(m.status.as_str())
                .bind(&m.model)
                .bind(&m.error)
                .bind(m.prompt_tokens.map(i64::from))
                .bind(m.completion_tokens.map(i64::from))
                .bind(m.created_at)
                .bind(m.updated_at)
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            // After the messages, whose trigger moved the leaf and the activity.
            sqlx::query(
                "UPDATE conversations SET active_leaf_id = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(c.active_leaf_id.map(|l| l.to_string()))
            .bind(c.updated_at)
            .bind(c.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // A big import (a ChatGPT history) can multiply the rows; PostgreSQL's statistics
        // would lag until autovacuum's next round, and meanwhile its planner walks a user's
        // conversations to list 50 of them (measured: 5.7 ms instead of 0.6 ms at 10,000).
        let rows: usize = conversations.iter().map(|c| 1 + c.messages.len()).sum();
        if self.db.backend() == confab_store::Backend::Postgres && rows >= IMPORT_ANALYZE_ROWS {
            sqlx::raw_sql("ANALYZE conversations, conversation_tags, messages")
                .execute(self.db.pool())
                .await?;
        }
        Ok(())
    }
}
