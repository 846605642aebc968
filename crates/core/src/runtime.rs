//! Settings an admin changes while the platform runs: the registration policy, the default
//! model, which models users may call, and the inference limits. Start-up configuration gives
//! their first values; the admin service stores changes and publishes them, and every
//! replica applies them to its [`LiveSettings`], which services read on each use.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::auth::Role;
use crate::config::{Config, LimitsConfig, RegistrationPolicy};

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeSettings {
    /// Who may register: `open`, `approval` (an admin approves) or `closed`.
    #[schema(value_type = String, example = "approval")]
    pub registration: RegistrationPolicy,
    /// The model used when a request names none; `null`: the first local model.
    pub default_model: Option<String>,
    /// Models that users (not admins) may call: names, or prefixes ending in `*`. Empty:
    /// every model.
    pub user_models: Vec<String>,
    /// Per-user and per-key inference limits; 0 means unlimited.
    pub limits: LimitLevels,
}

/// The limits part of [`RuntimeSettings`] (the same fields as `inference.limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct LimitLevels {
    pub user_requests_per_minute: u32,
    pub user_tokens_per_day: u64,
    pub key_requests_per_minute: u32,
    pub key_tokens_per_day: u64,
}

impl From<&LimitsConfig> for LimitLevels {
    fn from(c: &LimitsConfig) -> Self {
        Self {
            user_requests_per_minute: c.user_requests_per_minute,
            user_tokens_per_day: c.user_tokens_per_day,
            key_requests_per_minute: c.key_requests_per_minute,
            key_tokens_per_day: c.key_tokens_per_day,
        }
    }
}

impl From<&LimitLevels> for LimitsConfig {
    fn from(l: &LimitLevels) -> Self {
        Self {
            user_requests_per_minute: l.user_requests_per_minute,
            user_tokens_per_day: l.user_tokens_per_day,
            key_requests_per_minute: l.key_requests_per_minute,
            key_tokens_per_day: l.key_tokens_per_day,
        }
    }
}

impl RuntimeSettings {
    /// The values the start-up configuration gives.
    pub fn from_config(config: &Config) -> Self {
        Self {
            registration: config.auth.registration,
            default_model: config.inference.default_model.clone(),
            user_models: Vec::new(),
            limits: LimitLevels::from(&config.inference.limits),
        }
    }

    /// Whether `role` may call `model`. Names compare without regard to ASCII case, as the
    /// local model store finds models: a pattern allows every spelling that reaches its model.
    pub fn allows_model(&self, role: Role, model: &str) -> bool {
        role == Role::Admin
            || self.user_models.is_empty()
            || self
                .user_models
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => model
                        .get(..prefix.len())
                        .is_some_and(|start| start.eq_ignore_ascii_case(prefix)),
                    None => pattern.eq_ignore_ascii_case(model),
                })
    }
}

/// The settings in force in this process, shared by every service; cheap to clone and to
/// read.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    sender: Arc<watch::Sender<Arc<RuntimeSettings>>>,
}

impl LiveSettings {
    pub fn new(settings: RuntimeSettings) -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(Arc::new(settings))),
        }
    }

    /// The settings now.
    pub fn get(&self) -> Arc<RuntimeSettings> {
        self.sender.borrow().clone()
    }

    /// Puts new settings in force; returns whether anything changed.
    pub fn set(&self, settings: RuntimeSettings) -> bool {
        self.sender.send_if_modified(|current| {
            if **current == settings {
                false
            } else {
                *current = Arc::new(settings);
                true
            }
        })
    }

    /// Notified on every change (for services that rebuild something, e.g. rate limiters).
    pub fn subscribe(&self) -> watch::Receiver<Arc<RuntimeSettings>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_access_by_name_and_prefix() {
        let mut s = RuntimeSettings::from_config(&Config::default());
        assert!(s.allows_model(Role::User, "anything"));
        s.user_models = vec!["small".into(), "llama-*".into()];
        assert!(s.allows_model(Role::User, "small"));
        assert!(s.allows_model(Role::User, "llama-3"));
        assert!(!s.allows_model(Role::User, "smaller"));
        assert!(s.allows_model(Role::Admin, "smaller"));
        // Any spelling that reaches the model (local lookups ignore ASCII case) is allowed.
        assert!(s.allows_model(Role::User, "SMALL"));
        assert!(s.allows_model(Role::User, "Llama-3"));
        assert!(!s.allows_model(Role::User, "LLAMA"));
        // A multi-byte character where the prefix ends is not a match, and no panic.
        assert!(!s.allows_model(Role::User, "llamé-x"));
        let live = LiveSettings::new(s.clone());
        assert!(!live.set(s.clone()));
        s.default_model = Some("small".into());
        assert!(live.set(s));
        assert_eq!(live.get().default_model.as_deref(), Some("small"));
    }
}
