//! Logging setup: JSON lines (or pretty text for a terminal), each carrying the fields of the
//! spans it happened in, so every line logged while serving a request has its `request_id`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Call once, from the binary.
pub fn init(config: &LogConfig) -> Result<(), String> {
    // llama.cpp reports every load step at info; keep it to warnings unless asked for.
    let directives = if config.level.contains("llama") {
        config.level.clone()
    } else {
        format!("{},llama-cpp-2=warn", config.level)
    };
    let filter = EnvFilter::try_new(&directives)
        .map_err(|e| format!("log.level `{}`: {e}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}
