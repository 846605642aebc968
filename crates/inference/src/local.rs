//! Local models: the store's GGUF files, loaded into the embedded engine on first use.

use std::collections::HashMap;
#[cfg(any(feature = "llama", feature = "bert"))]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::InferenceError;
use crate::models::{LocalModel, ModelStore};
use crate::provider::Provider;

pub struct LocalEngines {
    store: ModelStore,
    enabled: bool,
    /// Set at shutdown: no model is loaded after it.
    stopped: AtomicBool,
    #[cfg(feature = "llama")]
    settings: crate::engine::EngineSettings,
    #[cfg(feature = "llama")]
    loaded: Mutex<HashMap<String, Arc<crate::engine::Engine>>>,
    #[cfg(not(feature = "llama"))]
    loaded: Mutex<HashMap<String, ()>>,
    #[cfg(feature = "bert")]
    encoders: Mutex<HashMap<String, Arc<crate::embed::BertEmbedder>>>,
}

impl std::fmt::Debug for LocalEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngines")
            .field("dir", &self.store.dir())
            .finish_non_exhaustive()
    }
}

impl LocalEngines {
    /// `queue`: requests that may wait for a worker of one model (0 = unlimited).
    pub fn new(
        store: ModelStore,
        config: &confab_core::config::EngineConfig,
        #[cfg_attr(
            not(feature = "llama"),
            expect(unused_variables, reason = "no engine, no queue")
        )]
        queue: u32,
    ) -> Self {
        Self {
            store,
            enabled: config.enabled && cfg!(feature = "llama"),
            stopped: AtomicBool::new(false),
            #[cfg(feature = "llama")]
            settings: crate::engine::EngineSettings {
                threads: config.threads,
                context_size: config.context_size,
                parallel: config.parallel,
                batch_size: config.batch_size,
                queue,
            },
            loaded: Mutex::new(HashMap::new()),
            #[cfg(feature = "bert")]
            encoders: Mutex::new(HashMap::new()),
        }
    }

    /// Local embedding models: directories of the models directory in the Hugging Face layout.
    #[cfg(feature = "bert")]
    pub fn encoders(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.store.dir()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir() && crate::embed::is_encoder_dir(p))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    #[cfg(not(feature = "bert"))]
    pub fn encoders(&self) -> Vec<String> {
        Vec::new()
    }

    /// Embeds `texts` with a local encoder, loading it on first use.
    #[cfg(feature = "bert")]
    pub async fn embed(
        &self,
        name: &str,
        texts: Vec<String>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        let Some(found) = self
            .encoders()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(name))
        else {
            return Err(InferenceError::ModelNotFound(name.to_owned()));
        };
        let encoder = {
            let mut encoders = self.encoders.lock().await;
            match encoders.get(&found) {
                Some(encoder) => encoder.clone(),
                None => {
                    let dir = self.store.dir().join(&found);
                    let encoder =
                        tokio::task::spawn_blocking(move || crate::embed::BertEmbedder::load(&dir))
                            .await
                            .map_err(|e| {
                                InferenceError::Engine(format!(
                                    "encoder loading thread failed: {e}"
                                ))
                            })??;
                    let encoder = Arc::new(encoder);
                    tracing::info!(model = %found, dimensions = encoder.dimensions, "embedding model loaded");
                    encoders.insert(found.clone(), encoder.clone());
                    encoder
                }
            }
        };
        tokio::task::spawn_blocking(move || encoder.embed(&texts, &cancel))
            .await
            .map_err(|e| InferenceError::Engine(format!("embedding thread failed: {e}")))?
    }

    #[cfg(not(feature = "bert"))]
    pub async fn embed(
        &self,
        name: &str,
        _texts: Vec<String>,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        Err(InferenceError::ModelNotFound(name.to_owned()))
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
        if self.stopped.load(Ordering::Acquire) {
            return Err(crate::engine::shutting_down());
        }
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

    /// Stops every loaded engine in order ([`crate::engine::Engine::shutdown`], each given
    /// `timeout`, side by side) and loads no more: what the process does before it exits, so
    /// that no worker is inside llama.cpp then. A model loading now is stopped once loaded.
    /// Returns whether every engine's workers were joined in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.stopped.store(true, Ordering::Release);
        let engines: Vec<_> = self.loaded.lock().await.drain().map(|(_, e)| e).collect();
        stop_all(engines, timeout).await
    }

    /// Forgets a loaded model (after it is deleted from the store).
    pub async fn unload(&self, name: &str) {
        self.loaded
            .lock()
            .await
            .retain(|loaded, _| !loaded.eq_ignore_ascii_case(name));
    }
}

/// Stops engines side by side; whether every one's workers were joined in time.
#[cfg(feature = "llama")]
async fn stop_all(engines: Vec<Arc<crate::engine::Engine>>, timeout: Duration) -> bool {
    futures::future::join_all(engines.iter().map(|e| e.shutdown(timeout)))
        .await
        .into_iter()
        .all(|joined| joined)
}

#[cfg(not(feature = "llama"))]
async fn stop_all(_engines: Vec<()>, _timeout: Duration) -> bool {
    true
}
