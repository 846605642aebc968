//! The environment layers of the configuration: a `.env` file and the process's variables.
//! `CONFAB_A__B` sets `a.b`; a few well-known names (`DATABASE_URL`, `REDIS_URL`, the
//! OpenTelemetry ones…) are aliases that the `CONFAB_` spelling overrides; `NAME_FILE` reads
//! the value from a file (secrets mounted by an orchestrator).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value;

use super::{ConfigError, ENV_PREFIX};

/// Variables that are read by the CLI itself and are not configuration keys.
const CLI_ONLY_VARS: &[&str] = &["CONFAB_CONFIG"];

/// Keys whose own name ends in `_file` (a path is their value): their variable
/// (`CONFAB_SERVICES__CA_FILE`) sets them, and is not read as `services.ca` from a file.
const KEYS_NAMED_FILE: &[&str] = &["services.ca_file"];

/// Well-known variable names honoured besides the `CONFAB_` ones, with the key they set.
const ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_READ_URL", "database.read_url"),
    ("REDIS_URL", "redis.url"),
    ("YOUTUBE_API_KEY", "seo.youtube.api_key"),
    ("YOUTUBE_CREDENTIALS", "seo.youtube.credentials"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
    ("OTEL_SERVICE_NAME", "telemetry.service_name"),
    ("AWS_ACCESS_KEY_ID", "storage.s3.access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "storage.s3.secret_access_key"),
    ("AWS_REGION", "storage.s3.region"),
    ("AWS_ENDPOINT_URL", "storage.s3.endpoint"),
];

pub(super) fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
    iter.map(|item| item.map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display()))))
        .collect()
}

/// Maps one environment variable to a configuration key, or `None` when it is not ours.
pub(super) fn env_key(name: &str) -> Option<String> {
    if CLI_ONLY_VARS.contains(&name) {
        return None;
    }
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some((*key).to_owned());
    }
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace("__", "."))
}

pub(super) fn merge_env(
    mut fig: Figment,
    pairs: &[(String, String)],
) -> Result<Figment, ConfigError> {
    // Aliases first so that the `CONFAB_` spelling of the same key wins.
    let mut entries: Vec<(bool, String, String)> = Vec::new();
    for (name, value) in pairs {
        let (name, value) = match name.strip_suffix("_FILE") {
            Some(base)
                if env_key(base).is_some()
                    && !env_key(name).is_some_and(|k| KEYS_NAMED_FILE.contains(&k.as_str())) =>
            {
                let content =
                    std::fs::read_to_string(value).map_err(|source| ConfigError::Read {
                        path: PathBuf::from(value),
                        source,
                    })?;
                (
                    base.to_owned(),
                    content.trim_end_matches(['\n', '\r']).to_owned(),
                )
            }
            _ => (name.clone(), value.clone()),
        };
        if let Some(key) = env_key(&name) {
            let is_alias = !name.starts_with(ENV_PREFIX);
            // Compose and Kubernetes pass an optional well-known variable as an empty string
            // (`${YOUTUBE_CREDENTIALS:-}`): that means "not set", not an empty value to check.
            if is_alias && value.is_empty() {
                continue;
            }
            entries.push((is_alias, key, value));
        }
    }
    entries.sort_by_key(|(is_alias, _, _)| !*is_alias);
    for (_, key, value) in entries {
        let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
        fig = fig.merge(Serialized::global(&key, parsed));
    }
    Ok(fig)
}
