//! The inference service: which backend serves a model name, lazy loading of local models,
//! and the model list.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_core::config::{InferenceConfig, ProviderKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::InferenceError;
use crate::models::{LocalModel, ModelStore};
use crate::openai::OpenAiClient;
use crate::provider::Provider;
use crate::scripted::Scripted;
use crate::types::{ChatRequest, ChatStream};

/// A model as `/v1/models` and the explore service list it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub id: String,
    /// `embedded` or the provider's name.
    pub provider: String,
    pub local: Option<LocalModel>,
}

struct Remote {
    provider: Provider,
    models: Vec<String>,
}

pub struct InferenceService {
    store: ModelStore,
    engine_enabled: bool,
    #[cfg(feature = "llama")]
    settings: crate::engine::EngineSettings,
    #[cfg(feature = "llama")]
    loaded: Mutex<HashMap<String, Arc<crate::engine::Engine>>>,
    remotes: Vec<Remote>,
    default_model: Option<String>,
}

impl std::fmt::Debug for InferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceService")
            .field("store", &self.store.dir())
            .finish_non_exhaustive()
    }
}

impl InferenceService {
    pub fn new(
        config: &InferenceConfig,
        models_dir: std::path::PathBuf,
    ) -> Result<Self, InferenceError> {
        let mut remotes = Vec::new();
        for provider in &config.providers {
            let built = match provider.kind {
                ProviderKind::Openai => Provider::OpenAi(Arc::new(OpenAiClient::new(
                    &provider.name,
                    provider.base_url.as_deref().unwrap_or_default(),
                    provider.api_key.as_ref().map(|k| k.expose().to_owned()),
                    Duration::from_secs(provider.timeout_secs),
                )?)),
                ProviderKind::Scripted => Provider::Scripted(Arc::new(Scripted {
                    reply: provider
                        .reply
                        .clone()
                        .unwrap_or_else(|| "You said: {last}".into()),
                    delay: Duration::from_millis(provider.delay_ms),
                })),
            };
            remotes.push(Remote {
                provider: built,
                models: provider.models.clone(),
            });
        }
        Ok(Self {
            store: ModelStore::new(models_dir),
            engine_enabled: config.engine.enabled && cfg!(feature = "llama"),
            #[cfg(feature = "llama")]
            settings: crate::engine::EngineSettings {
                threads: config.engine.threads,
                context_size: config.engine.context_size,
                parallel: config.engine.parallel,
                batch_size: config.engine.batch_size,
            },
            #[cfg(feature = "llama")]
            loaded: Mutex::new(HashMap::new()),
            remotes,
            default_model: config.default_model.clone(),
        })
    }

    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// Every model a request may name.
    pub fn models(&self) -> Result<Vec<ModelEntry>, InferenceError> {
        let mut entries = Vec::new();
        if self.engine_enabled {
            for model in self
                .store
                .list()
                .map_err(|e| InferenceError::Engine(e.to_string()))?
            {
                entries.push(ModelEntry {
                    id: model.name.clone(),
                    provider: "embedded".into(),
                    local: Some(model),
                });
            }
        }
        for remote in &self.remotes {
            for model in &remote.models {
                entries.push(ModelEntry {
                    id: model.clone(),
                    provider: remote.provider.name().to_owned(),
                    local: None,
                });
            }
        }
        Ok(entries)
    }

    /// The model used when none is named: the configured one, else the first local one,
    /// else the first remote one.
    pub fn default_model(&self) -> Option<String> {
        if let Some(model) = &self.default_model {
            return Some(model.clone());
        }
        self.models().ok()?.into_iter().next().map(|m| m.id)
    }

    async fn provider_for(&self, model: &str) -> Result<Provider, InferenceError> {
        if let Some(remote) = self
            .remotes
            .iter()
            .find(|r| r.models.iter().any(|m| m == model))
        {
            return Ok(remote.provider.clone());
        }
        #[cfg(feature = "llama")]
        if self.engine_enabled
            && let Ok(local) = self.store.find(model)
        {
            return Ok(Provider::Embedded(self.engine(&local).await?));
        }
        Err(InferenceError::ModelNotFound(model.to_owned()))
    }

    /// The loaded engine of a local model, loading it on first use.
    #[cfg(feature = "llama")]
    async fn engine(
        &self,
        model: &LocalModel,
    ) -> Result<Arc<crate::engine::Engine>, InferenceError> {
        let mut loaded = self.loaded.lock().await;
        if let Some(engine) = loaded.get(&model.name) {
            return Ok(engine.clone());
        }
        let (name, path, settings) = (
            model.name.clone(),
            model.path.clone(),
            self.settings.clone(),
        );
        let engine = tokio::task::spawn_blocking(move || {
            crate::engine::Engine::load(&name, &path, &settings)
        })
        .await
        .map_err(|e| InferenceError::Engine(format!("model loading thread failed: {e}")))??;
        loaded.insert(model.name.clone(), engine.clone());
        Ok(engine)
    }

    /// Forgets a loaded model (after it is deleted from the store).
    pub async fn unload(&self, name: &str) {
        #[cfg(feature = "llama")]
        self.loaded
            .lock()
            .await
            .retain(|loaded, _| !loaded.eq_ignore_ascii_case(name));
        #[cfg(not(feature = "llama"))]
        let _ = name;
    }

    /// Starts a chat generation on the backend of `request.model`.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, InferenceError> {
        let provider = self.provider_for(&request.model).await?;
        provider.chat(request, cancel).await
    }
}
