//! API keys: made with scopes and an expiry, shown once, stored hashed, revoked.

use super::*;
use crate::actions::AuthAction;

impl AuthService {
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<i64>,
        client: &ClientMeta,
    ) -> AuthResult<CreatedKey> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        let scopes = domain::validate_scopes(scopes, principal.role)
            .map_err(|m| AuthError::invalid("invalid_scopes", m))?;
        let now = now_ms();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::invalid(
                "invalid_expiry",
                "expires_at must be in the future",
            ));
        }
        if self.store.count_api_keys(principal.user_id).await? >= MAX_KEYS_PER_USER {
            return Err(AuthError::Conflict {
                code: "too_many_keys",
                message: format!(
                    "a user may hold at most {MAX_KEYS_PER_USER} API keys; revoke one first"
                ),
            });
        }
        let key = secret::new_api_key();
        let record = NewApiKey {
            id: new_id(),
            user_id: principal.user_id,
            name,
            prefix: key.chars().take(secret::API_KEY_SHOWN_CHARS).collect(),
            key_hash: secret::token_hash(&key),
            scopes,
            created_at: now,
            expires_at,
        };
        self.store.insert_api_key(&record).await?;
        self.audit(
            AuditEvent::new(AuthAction::ApiKeyCreated, Outcome::Success, client)
                .actor(principal.user_id)
                .target(record.id.to_string())
                .details(
                    json!({"name": record.name, "scopes": record.scopes, "expires_at": expires_at}),
                ),
        )
        .await;
        Ok(CreatedKey {
            key,
            view: ApiKeyView {
                id: record.id,
                name: record.name,
                prefix: record.prefix,
                scopes: record.scopes,
                created_at: now,
                last_used_at: None,
                expires_at,
            },
        })
    }

    pub async fn list_api_keys(&self, user_id: Uuid) -> AuthResult<Vec<ApiKeyView>> {
        Ok(self.store.list_api_keys(user_id).await?)
    }

    /// Revokes one of the caller's keys; another user's key id is "not found".
    pub async fn revoke_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if !self.store.revoke_api_key(user_id, key_id, now_ms()).await? {
            return Err(AuthError::NotFound("API key"));
        }
        self.forget_auth(AuthRevocation {
            user_id,
            session_id: None,
            key_id: Some(key_id),
            reason: "key_revoked".into(),
        })
        .await;
        self.access_revoked(user_id, None, "key_revoked").await;
        self.audit(
            AuditEvent::new(AuthAction::ApiKeyRevoked, Outcome::Success, client)
                .actor(user_id)
                .target(key_id.to_string()),
        )
        .await;
        Ok(())
    }
}
