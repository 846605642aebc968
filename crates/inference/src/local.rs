//! Local models: the store's GGUF files, loaded into the embedded engine on first use.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::error::InferenceError;
use crate::models::{LocalModel, ModelStore};
use crate::provider::Provider;

pub struct LocalEngines {
    store: ModelStore,
    enabled: bool,
    #[cfg(feature = "llama")]
    settings: crate::engine::EngineSettings,
    #[cfg(feature = "llama")]
    loaded: Mutex<HashMap<String, Arc<crate::engine::Engine>>>,
    #[cfg(not(feature = "llama"))]
    loaded: Mutex<HashMap<String, ()>>,
}

impl std::fmt::Debug for LocalEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngines")
            .field("dir", &self.store.dir())
            .finish_non_exhaustive()
    }
}

impl LocalEngines {
    pub fn new(store: ModelStore, config: &confab_core::config::EngineConfig) -> Self {
        Self {
            store,
            enabled: config.enabled && cfg!(feature = "llama"),
            #[cfg(feature = "llama")]
            settings: crate::engine::EngineSettings {
                threads: config.threads,
                context_size: config.context_size,
                parallel: config.parallel,
                batch_size: config.batch_size,
            },
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// Local models the engine serves (none when it is off).
    pub fn list(&self) -> Vec<LocalModel> {
        if !self.enabled {
            return Vec::new();
        }
        self.store.list().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list local models");
            Vec::new()
        })
    }

    pub fn find(&self, name: &str) -> Option<LocalModel> {
        if !self.enabled {
            return None;
        }
        self.store.find(name).ok()
    }

    /// The engine of a local model, loading it on first use.
    #[cfg(feature = "llama")]
    pub async fn provider(&self, name: &str) -> Result<Provider, InferenceError> {
        let model = self
            .find(name)
            .ok_or_else(|| InferenceError::ModelNotFound(name.to_owned()))?;
        let mut loaded = self.loaded.lock().await;
        if let Some(engine) = loaded.get(&model.name) {
            return Ok(Provider::Embedded(engine.clone()));
        }
        let (model_name, path, settings) = (
            model.name.clone(),
            model.path.clone(),
            self.settings.clone(),
        );
        let engine = tokio::task::spawn_blocking(move || {
            crate::engine::Engine::load(&model_name, &path, &settings)
        })
        .await
        .map_err(|e| InferenceError::Engine(format!("model loading thread failed: {e}")))??;
        loaded.insert(model.name.clone(), engine.clone());
        Ok(Provider::Embedded(engine))
    }

    #[cfg(not(feature = "llama"))]
    pub async fn provider(&self, name: &str) -> Result<Provider, InferenceError> {
        Err(InferenceError::ModelNotFound(name.to_owned()))
    }

    /// Forgets a loaded model (after it is deleted from the store).
    pub async fn unload(&self, name: &str) {
        self.loaded
            .lock()
            .await
            .retain(|loaded, _| !loaded.eq_ignore_ascii_case(name));
    }
}
