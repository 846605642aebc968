//! [`PresetStore`] on SQLite and PostgreSQL.

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlChatStore, params, params_json, uuid};
use crate::domain::Preset;
use crate::ports::{PresetStore, StoreResult};

fn preset(row: &AnyRow) -> StoreResult<Preset> {
    Ok(Preset {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        system_prompt: row.try_get("system_prompt")?,
        params: params(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl PresetStore for SqlChatStore {
    async fn create_preset(&self, user_id: Uuid, p: Preset) -> StoreResult<Preset> {
        sqlx::query(
            "INSERT INTO chat_presets (id, user_id, name, system_prompt, params, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.id.to_string())
        .bind(user_id.to_string())
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(params_json(&p.params))
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(self.db.writer())
        .await?;
        Ok(p)
    }

    async fn presets(&self, user_id: Uuid) -> StoreResult<Vec<Preset>> {
        let rows = sqlx::query(
            "SELECT id, name, system_prompt, params, created_at, updated_at FROM chat_presets \
             WHERE user_id = $1 ORDER BY name",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(preset).collect()
    }

    async fn preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<Preset> {
        let row = sqlx::query(
            "SELECT id, name, system_prompt, params, created_at, updated_at FROM chat_presets \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id.to_string())
        .bind(user_id.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        preset(&row)
    }

    async fn update_preset(&self, user_id: Uuid, p: Preset) -> StoreResult<Preset> {
        let result = sqlx::query(
            "UPDATE chat_presets SET name = $1, system_prompt = $2, params = $3, updated_at = $4 \
             WHERE id = $5 AND user_id = $6",
        )
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(params_json(&p.params))
        .bind(p.updated_at)
        .bind(p.id.to_string())
        .bind(user_id.to_string())
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(p)
    }

    async fn delete_preset(&self, user_id: Uuid, id: Uuid) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM chat_presets WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(self.db.writer())
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
