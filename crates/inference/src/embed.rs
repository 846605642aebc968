//! Local embeddings: BERT-family sentence encoders (all-MiniLM-L6-v2 and its kind) on candle,
//! from a directory in the Hugging Face layout (`config.json`, `model.safetensors`,
//! `tokenizer.json`). Mean pooling over real tokens, then L2 normalisation, as
//! sentence-transformers does for these models.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::InferenceError;

/// Texts encoded per forward pass.
const BATCH: usize = 32;

pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub dimensions: usize,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

fn engine(what: &str, e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Engine(format!("{what}: {e}"))
}

/// Whether `dir` holds an encoder in the expected layout.
pub fn is_encoder_dir(dir: &Path) -> bool {
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

impl BertEmbedder {
    /// Loads an encoder (blocking: call from a blocking thread).
    pub fn load(dir: &Path) -> Result<Self, InferenceError> {
        let device = Device::Cpu;
        let config: Config = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| engine("config.json", e))?,
        )
        .map_err(|e| engine("config.json", e))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| engine("model.safetensors", e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| engine("weights", e))?;
        let model = BertModel::load(vb, &config).map_err(|e| engine("model", e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| engine("tokenizer.json", e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_position_embeddings.min(512),
                ..TruncationParams::default()
            }))
            .map_err(|e| engine("tokenizer", e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            dimensions: config.hidden_size,
        })
    }

    /// Unit vectors for `texts`, and the number of tokens they used (blocking). Stops
    /// between batches once `cancel` is cancelled (the caller went away), so an abandoned
    /// request does not keep the cores busy.
    pub fn embed(
        &self,
        texts: &[String],
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(Vec<Vec<f32>>, u32), InferenceError> {
        let mut vectors = Vec::with_capacity(texts.len());
        let mut tokens = 0u32;
        for batch in texts.chunks(BATCH) {
            if cancel.is_cancelled() {
                return Err(InferenceError::Unavailable(
                    "the embeddings request was cancelled".into(),
                ));
            }
            let encodings = self
                .tokenizer
                .encode_batch(batch.to_vec(), true)
                .map_err(|e| engine("tokenize", e))?;
            let rows = encodings.len();
            let width = encodings.first().map_or(0, |e| e.get_ids().len());
            let flat = |pick: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
                encodings
                    .iter()
                    .flat_map(|e| pick(e).iter().copied())
                    .collect()
            };
            let mask_values = flat(tokenizers::Encoding::get_attention_mask);
            tokens += mask_values.iter().sum::<u32>();
            let tensor = |values: Vec<u32>| Tensor::from_vec(values, (rows, width), &self.device);
            let ids = tensor(flat(tokenizers::Encoding::get_ids)).map_err(|e| engine("ids", e))?;
            let types = tensor(flat(tokenizers::Encoding::get_type_ids))
                .map_err(|e| engine("type ids", e))?;
            let mask = tensor(mask_values).map_err(|e| engine("mask", e))?;
            let pooled = (|| {
                let output = self.model.forward(&ids, &types, Some(&mask))?;
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = output.broadcast_mul(&mask)?.sum(1)?;
                let mean = summed.broadcast_div(&mask.sum(1)?)?;
                let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
                mean.broadcast_div(&norm)?.to_vec2::<f32>()
            })()
            .map_err(|e| engine("encode", e))?;
            vectors.extend(pooled);
        }
        Ok((vectors, tokens))
    }
}
