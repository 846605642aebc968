//! Presets: a user's named system prompts with parameters, checked like a conversation's.

use confab_core::auth::Principal;
use confab_store::StoreError;
use uuid::Uuid;

use super::{ChatError, ChatService, not_found};
use crate::domain::{Params, Preset, PresetInput};

/// A store `Conflict` on a preset is its name, unique per user.
fn preset_conflict(e: StoreError) -> ChatError {
    match e {
        StoreError::Conflict(_) => {
            ChatError::Conflict("preset_exists", "a preset with this name exists".into())
        }
        StoreError::NotFound => ChatError::NotFound("no such preset"),
        other => ChatError::Store(other),
    }
}

/// A preset with checked fields, made or changed now.
fn checked_preset(
    id: Uuid,
    name: String,
    system_prompt: Option<String>,
    params: Params,
) -> Result<Preset, ChatError> {
    let input = PresetInput {
        name,
        system_prompt,
        params,
    }
    .check()
    .map_err(ChatError::problems)?;
    let now = confab_core::now_ms();
    Ok(Preset {
        id,
        name: input.name,
        system_prompt: input.system_prompt,
        params: input.params,
        created_at: now,
        updated_at: now,
    })
}

impl ChatService {
    pub async fn create_preset(
        &self,
        principal: &Principal,
        name: String,
        system_prompt: Option<String>,
        params: Params,
    ) -> Result<Preset, ChatError> {
        let preset = checked_preset(confab_core::id::new_id(), name, system_prompt, params)?;
        self.store
            .create_preset(principal.user_id, preset)
            .await
            .map_err(preset_conflict)
    }

    pub async fn presets(&self, principal: &Principal) -> Result<Vec<Preset>, ChatError> {
        Ok(self.store.presets(principal.user_id).await?)
    }

    pub async fn update_preset(
        &self,
        principal: &Principal,
        id: Uuid,
        name: String,
        system_prompt: Option<String>,
        params: Params,
    ) -> Result<Preset, ChatError> {
        let old = self
            .store
            .preset(principal.user_id, id)
            .await
            .map_err(not_found("no such preset"))?;
        let mut preset = checked_preset(id, name, system_prompt, params)?;
        preset.created_at = old.created_at;
        self.store
            .update_preset(principal.user_id, preset)
            .await
            .map_err(preset_conflict)
    }

    pub async fn delete_preset(&self, principal: &Principal, id: Uuid) -> Result<(), ChatError> {
        self.store
            .delete_preset(principal.user_id, id)
            .await
            .map_err(not_found("no such preset"))
    }
}
