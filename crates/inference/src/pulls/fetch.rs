//! Fetching what a pull names: a source read into a [`Target`], a GGUF pulled into the local
//! store, or a model pulled onto an Ollama server, each relaying its progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{OLLAMA_PREFIX, PullError, PullStatus, Pulls};
use crate::models::Source;
use crate::ollama::OllamaClient;

/// What a pull fetches: a GGUF into the local store, or a model onto an Ollama server.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Local(Source),
    Ollama {
        client: Arc<OllamaClient>,
        model: String,
    },
}

impl Target {
    pub(super) fn model_name(&self) -> String {
        match self {
            Target::Local(source) => source.model_name(),
            Target::Ollama { client, model } => format!("{OLLAMA_PREFIX}{}/{model}", client.name),
        }
    }
}

impl Pulls {
    /// Reads a source: `ollama:<provider>/<model>` for an Ollama provider, else a GGUF source
    /// for the local store (an URL, `org/repo/file.gguf` on Hugging Face, or a file in the
    /// import directory: pulls come from the API, which may not name other server paths).
    pub(super) fn target(&self, source: &str) -> Result<Target, PullError> {
        let Some(rest) = source.trim().strip_prefix(OLLAMA_PREFIX) else {
            let import_dir = self.store.settings().import_dir.as_deref();
            return Ok(Target::Local(Source::parse_confined(source, import_dir)?));
        };
        let (provider, model) = rest.split_once('/').unwrap_or(("", rest));
        if model.is_empty() {
            return Err(PullError::Provider(format!(
                "`{source}`: write ollama:<provider>/<model>, e.g. ollama:ollama/llama3.2"
            )));
        }
        let client = self.ollama.get(provider).ok_or_else(|| {
            let mut known: Vec<&str> = self.ollama.keys().map(String::as_str).collect();
            known.sort_unstable();
            PullError::Provider(format!(
                "no Ollama provider named `{provider}` (configured: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        Ok(Target::Ollama {
            client: client.clone(),
            model: model.to_owned(),
        })
    }

    /// The Ollama provider and model a name like `ollama:<provider>/<model>` stands for.
    pub fn ollama_model(&self, name: &str) -> Option<(Arc<OllamaClient>, String)> {
        if !name.trim().starts_with(OLLAMA_PREFIX) {
            return None;
        }
        match self.target(name).ok()? {
            Target::Ollama { client, model } => Some((client, model)),
            Target::Local(_) => None,
        }
    }

    /// Pulls a GGUF into the local store; the model's size when done, else why not and
    /// whether that is permanent.
    pub(super) async fn pull_local(
        &self,
        source: &Source,
        sha256: Option<&str>,
        status: &watch::Sender<PullStatus>,
    ) -> Result<Option<u64>, (String, bool)> {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let model = self
            .store
            .pull(source, sha256, |p| {
                if last_sent.elapsed() >= Duration::from_millis(200) || p.total == Some(p.bytes) {
                    last_sent = Instant::now();
                    status.send_modify(|s| {
                        s.bytes = p.bytes;
                        s.total = p.total;
                        s.percent = p.percent();
                        s.rate = p.rate;
                    });
                }
            })
            .await
            .map_err(|e| (e.to_string(), e.is_permanent()))?;
        Ok(Some(model.size_bytes))
    }

    /// Has an Ollama server pull `model`, relaying its progress. Ollama downloads a model as
    /// several layers and reports each (`completed` of `total` bytes); the status shows the
    /// layer in progress, and Ollama itself resumes a pull that was cut off.
    pub(super) async fn pull_ollama(
        client: &OllamaClient,
        model: &str,
        status: &watch::Sender<PullStatus>,
    ) -> Result<Option<u64>, (String, bool)> {
        let mut last_sent = Instant::now() - Duration::from_secs(1);
        let mut layer: Option<(String, Instant)> = None;
        client
            .pull(model, |step| {
                let (Some(digest), Some(total)) = (step.digest.clone(), step.total) else {
                    return;
                };
                let completed = step.completed.unwrap_or(0);
                if layer.as_ref().is_none_or(|(d, _)| *d != digest) {
                    layer = Some((digest, Instant::now()));
                }
                let started = layer.as_ref().map_or_else(Instant::now, |(_, at)| *at);
                if last_sent.elapsed() >= Duration::from_millis(200) || completed == total {
                    last_sent = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    status.send_modify(|s| {
                        s.bytes = completed;
                        s.total = Some(total);
                        s.percent = (total > 0).then(|| completed as f64 * 100.0 / total as f64);
                        s.rate = if secs > 0.0 {
                            completed as f64 / secs
                        } else {
                            0.0
                        };
                    });
                }
            })
            .await
            .map_err(|e| (e.to_string(), false))?;
        Ok(None)
    }
}
