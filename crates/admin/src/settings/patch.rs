//! The rules of a settings change, free of I/O: a patch names only what changes, every
//! problem is listed at once, and [`diff`] says what changed for the audit log.

use confab_core::config::RegistrationPolicy;
use confab_core::runtime::{LimitLevels, RuntimeSettings};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// Most entries in `user_models`.
const MAX_MODEL_PATTERNS: usize = 200;

/// A change: only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// `open`, `approval` or `closed`.
    #[schema(value_type = Option<String>, example = "approval")]
    pub registration: Option<RegistrationPolicy>,
    /// A model name from `/api/v1/models`; `""` clears it (the first local model).
    pub default_model: Option<String>,
    /// Models users (not admins) may call: names or prefixes ending in `*`; `[]`: all.
    pub user_models: Option<Vec<String>>,
    pub limits: Option<LimitsPatch>,
    /// The `version` this change is based on; when given and another change came first,
    /// the answer is 409 `settings_changed`.
    pub version: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    pub user_requests_per_minute: Option<u32>,
    pub user_tokens_per_day: Option<u64>,
    pub key_requests_per_minute: Option<u32>,
    pub key_tokens_per_day: Option<u64>,
}

/// Applies `patch` to `current`; every problem is listed.
pub fn apply_patch(
    current: &RuntimeSettings,
    patch: SettingsPatch,
    models: &[String],
) -> Result<RuntimeSettings, Vec<String>> {
    let mut next = current.clone();
    let mut problems = Vec::new();
    if let Some(policy) = patch.registration {
        next.registration = policy;
    }
    if let Some(model) = patch.default_model {
        let model = model.trim().to_owned();
        if model.is_empty() {
            next.default_model = None;
        } else if models.contains(&model) {
            next.default_model = Some(model);
        } else {
            problems.push(format!(
                "default_model: no model `{model}`; known: {}",
                if models.is_empty() {
                    "none".to_owned()
                } else {
                    models.join(", ")
                }
            ));
        }
    }
    if let Some(patterns) = patch.user_models {
        if patterns.len() > MAX_MODEL_PATTERNS {
            problems.push(format!(
                "user_models: at most {MAX_MODEL_PATTERNS} entries, got {}",
                patterns.len()
            ));
        }
        let mut clean = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            let p = pattern.trim();
            if p.is_empty() || p.len() > 200 || p == "*" {
                problems.push(format!(
                    "user_models[{i}]: give a model name or a prefix ending in `*` (1 to 200 characters; `[]` allows every model)"
                ));
            } else if p.trim_end_matches('*').contains('*') {
                problems.push(format!(
                    "user_models[{i}]: `*` may only end a prefix, as in `llama-*`"
                ));
            } else if !clean.iter().any(|c: &String| c == p) {
                clean.push(p.to_owned());
            }
        }
        next.user_models = clean;
    }
    if let Some(limits) = patch.limits {
        let LimitLevels {
            user_requests_per_minute,
            user_tokens_per_day,
            key_requests_per_minute,
            key_tokens_per_day,
        } = &mut next.limits;
        let rpm_max = 1_000_000;
        for (name, value, target) in [
            (
                "user_requests_per_minute",
                limits.user_requests_per_minute,
                user_requests_per_minute,
            ),
            (
                "key_requests_per_minute",
                limits.key_requests_per_minute,
                key_requests_per_minute,
            ),
        ] {
            if let Some(v) = value {
                if v > rpm_max {
                    problems.push(format!(
                        "limits.{name}: at most {rpm_max} (0 means unlimited), got {v}"
                    ));
                } else {
                    *target = v;
                }
            }
        }
        if let Some(v) = limits.user_tokens_per_day {
            *user_tokens_per_day = v;
        }
        if let Some(v) = limits.key_tokens_per_day {
            *key_tokens_per_day = v;
        }
    }
    if problems.is_empty() {
        Ok(next)
    } else {
        Err(problems)
    }
}

/// What changed between two settings, for the audit log.
pub fn diff(before: &RuntimeSettings, after: &RuntimeSettings) -> serde_json::Value {
    let b = serde_json::to_value(before).unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (key, new) in a {
            let old = b.get(key).cloned().unwrap_or_default();
            if old != *new {
                changes.insert(key.clone(), json!({"from": old, "to": new}));
            }
        }
    }
    serde_json::Value::Object(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RuntimeSettings {
        RuntimeSettings {
            registration: RegistrationPolicy::Open,
            default_model: None,
            user_models: Vec::new(),
            limits: LimitLevels::default(),
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_lists_every_problem() {
        let models = vec!["small".to_owned()];
        let next = apply_patch(
            &base(),
            SettingsPatch {
                registration: Some(RegistrationPolicy::Approval),
                default_model: Some("small".into()),
                ..SettingsPatch::default()
            },
            &models,
        )
        .unwrap();
        assert_eq!(next.registration, RegistrationPolicy::Approval);
        assert_eq!(next.default_model.as_deref(), Some("small"));
        assert_eq!(next.limits, LimitLevels::default());

        let problems = apply_patch(
            &base(),
            SettingsPatch {
                default_model: Some("huge".into()),
                user_models: Some(vec![String::new(), "a*b".into(), "ok-*".into()]),
                limits: Some(LimitsPatch {
                    user_requests_per_minute: Some(5_000_000),
                    ..LimitsPatch::default()
                }),
                ..SettingsPatch::default()
            },
            &models,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("huge") && problems[0].contains("small"));
    }

    #[test]
    fn the_diff_names_changed_fields_only() {
        let mut after = base();
        after.user_models = vec!["x".into()];
        let d = diff(&base(), &after);
        assert_eq!(d, json!({"user_models": {"from": [], "to": ["x"]}}));
    }
}
