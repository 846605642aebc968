//! The embedded engine: llama.cpp (through `llama-cpp-2`) running GGUF models on this machine.
//!
//! A loaded model has `parallel` worker threads, each with its own context (KV cache); jobs
//! wait in a queue and the first free worker takes the next one. A worker streams pieces as
//! they are generated, holding back bytes of a split UTF-8 character, and stops at once
//! when the job is cancelled or its receiver goes away, freeing the slot. [`Engine::shutdown`]
//! stops it in order: no new jobs, the running ones cancelled, the workers joined, so that no
//! thread is inside llama.cpp when the process exits and its static destructors run.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::InferenceError;
use crate::template::Template;
use crate::text::{StopMatcher, StopOutcome, Utf8Buffer};
use crate::types::{ChatEvent, ChatMessage, FinishReason, SamplingParams, Usage};

/// How the engine runs a model.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub threads: u32,
    pub context_size: u32,
    pub parallel: u32,
    pub batch_size: u32,
    /// Requests that may wait for a worker; more are refused as busy. 0 = unlimited.
    pub queue: u32,
}

impl EngineSettings {
    /// Threads per worker: as configured, or the cores shared among the parallel workers
    /// (more would make llama.cpp's spinning threads fight over the cores).
    fn threads(&self) -> i32 {
        let n = if self.threads == 0 {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / self.parallel.max(1) as usize).max(1)
        } else {
            self.threads as usize
        };
        i32::try_from(n).unwrap_or(1)
    }
}

/// llama.cpp's process-wide backend, initialised once.
fn backend() -> Result<&'static LlamaBackend, InferenceError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| InferenceError::Engine(format!("llama.cpp backend: {e}")))
}

/// llama.cpp may touch the model while making a context, so contexts are made one at a time.
#[expect(
    clippy::disallowed_types,
    reason = "held on worker threads only, never across an await"
)]
static CONTEXT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One generation request for a worker.
struct Job {
    messages: Vec<ChatMessage>,
    params: SamplingParams,
    grammar: Option<String>,
    events: mpsc::Sender<Result<ChatEvent, InferenceError>>,
    cancel: CancellationToken,
    /// The engine's: cancelled when it shuts down.
    stop: CancellationToken,
}

impl Job {
    /// Whether the job ends here: `Some(Ok)` when its caller cancelled or went away (nothing
    /// more to say), `Some(Err)` when the engine is shutting down (the caller is told).
    fn halted(&self) -> Option<Result<(), InferenceError>> {
        if self.stop.is_cancelled() {
            Some(Err(shutting_down()))
        } else if self.cancel.is_cancelled() || self.events.is_closed() {
            Some(Ok(()))
        } else {
            None
        }
    }

    /// Sends an event, waiting for room like `blocking_send` but giving up when the engine
    /// stops, so a caller that stopped reading cannot hold a worker past shutdown. Returns
    /// whether the event was sent.
    fn send(&self, event: Result<ChatEvent, InferenceError>) -> bool {
        futures::executor::block_on(async {
            tokio::select! {
                biased;
                sent = self.events.send(event) => sent.is_ok(),
                () = self.stop.cancelled() => false,
            }
        })
    }
}

/// The error of a request the engine can no longer serve.
pub(crate) fn shutting_down() -> InferenceError {
    InferenceError::Unavailable("the embedded engine is shutting down".into())
}

/// A loaded model with its workers. Dropping it closes the queue: the workers stop once the
/// queued jobs finish. [`Engine::shutdown`] stops them at once and joins them.
pub struct Engine {
    name: String,
    path: PathBuf,
    /// The queue's only sender; taken (closing the queue) at shutdown.
    jobs: parking_lot::Mutex<Option<flume::Sender<Job>>>,
    /// Cancelled at shutdown: running jobs stop at their next token, queued ones are refused.
    stop: CancellationToken,
    /// The worker threads not yet joined.
    workers: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    context_size: u32,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl Engine {
    /// Loads a GGUF file and starts its workers (blocking: call from a blocking thread).
    pub fn load(
        name: &str,
        path: &Path,
        settings: &EngineSettings,
    ) -> Result<Arc<Self>, InferenceError> {
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| InferenceError::Engine(format!("cannot load {}: {e}", path.display())))?;
        let model = Arc::new(model);
        let template = Arc::new(Template::for_model(&model));
        let context_size = settings.context_size.min(model.n_ctx_train().max(64));
        // A bounded queue: past it, requests are refused at once (503 with Retry-After)
        // instead of waiting behind a backlog nobody will read in time.
        let (jobs, queue) = match settings.queue {
            0 => flume::unbounded::<Job>(),
            n => flume::bounded::<Job>(n as usize),
        };
        let threads = settings.threads();
        let mut workers = Vec::new();
        for slot in 0..settings.parallel.max(1) {
            let model = model.clone();
            let template = template.clone();
            let queue = queue.clone();
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(context_size))
                .with_n_batch(settings.batch_size)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
            let started = std::thread::Builder::new()
                .name(format!("llama-{slot}"))
                // The worker owns its clone of the model: the last worker to leave frees it,
                // on its own thread, after its context.
                .spawn(move || worker(&model, &template, params, &queue, &ready_tx))
                .map_err(|e| InferenceError::Engine(format!("cannot start a worker thread: {e}")))
                .and_then(|handle| {
                    workers.push(handle);
                    ready_rx
                        .recv()
                        .map_err(|_| {
                            InferenceError::Engine("a worker thread died while starting".into())
                        })?
                        .map_err(InferenceError::Engine)
                });
            if let Err(e) = started {
                // The workers already started leave once the queue closes.
                drop(jobs);
                for handle in workers {
                    let _ = handle.join();
                }
                return Err(e);
            }
        }
        tracing::info!(model = name, path = %path.display(), context_size, threads, parallel = settings.parallel, "model loaded");
        Ok(Arc::new(Self {
            name: name.to_owned(),
            path: path.to_owned(),
            jobs: parking_lot::Mutex::new(Some(jobs)),
            stop: CancellationToken::new(),
            workers: parking_lot::Mutex::new(workers),
            context_size,
        }))
    }

    /// Stops the engine in order: new requests are refused as shutting down, running
    /// generations end at their next token with that error, the queue closes and the worker
    /// threads are joined, each freeing its context (and the last one the model) on its own
    /// thread. Waits at most `timeout` for the workers (a join on a helper thread, so a stuck
    /// one cannot hold the caller); returns whether every worker was joined in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.stop.cancel();
        drop(self.jobs.lock().take());
        let workers = std::mem::take(&mut *self.workers.lock());
        if workers.is_empty() {
            return true;
        }
        let (joined_tx, joined) = tokio::sync::oneshot::channel();
        let joiner = std::thread::Builder::new()
            .name("llama-join".into())
            .spawn(move || {
                for handle in workers {
                    if handle.join().is_err() {
                        tracing::warn!("an engine worker thread panicked");
                    }
                }
                let _ = joined_tx.send(());
            });
        if let Err(e) = joiner {
            tracing::warn!(model = %self.name, error = %e, "cannot start the thread that joins the engine's workers");
            return false;
        }
        if let Ok(Ok(())) = tokio::time::timeout(timeout, joined).await {
            tracing::debug!(model = %self.name, "engine stopped");
            true
        } else {
            tracing::warn!(
                model = %self.name,
                timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                "the engine's workers did not stop in time"
            );
            false
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn context_size(&self) -> u32 {
        self.context_size
    }

    /// Queues a generation; events arrive on the returned receiver. Cancelling `cancel` or
    /// dropping the receiver stops it.
    pub fn generate(
        &self,
        messages: Vec<ChatMessage>,
        params: SamplingParams,
        grammar: Option<String>,
        cancel: CancellationToken,
    ) -> Result<mpsc::Receiver<Result<ChatEvent, InferenceError>>, InferenceError> {
        let jobs = self.jobs.lock();
        let Some(jobs) = jobs.as_ref() else {
            return Err(shutting_down());
        };
        let (events, receiver) = mpsc::channel(64);
        let job = Job {
            messages,
            params,
            grammar,
            events,
            cancel,
            stop: self.stop.clone(),
        };
        match jobs.try_send(job) {
            Ok(()) => Ok(receiver),
            Err(flume::TrySendError::Full(_)) => Err(InferenceError::Busy {
                message: format!(
                    "the model `{}` has {} requests waiting; retry shortly",
                    self.name,
                    jobs.len()
                ),
                retry_after_secs: Some(2),
            }),
            Err(flume::TrySendError::Disconnected(_)) => Err(shutting_down()),
        }
    }
}

/// Converts a JSON schema into a llama.cpp grammar.
pub fn grammar_for_schema(schema: &serde_json::Value) -> Result<String, InferenceError> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        InferenceError::invalid(
            "response_format",
            format!("the JSON schema cannot be enforced: {e}"),
        )
    })
}

fn worker(
    model: &LlamaModel,
    template: &Template,
    params: LlamaContextParams,
    queue: &flume::Receiver<Job>,
    ready: &std::sync::mpsc::Sender<Result<(), String>>,
) {
    let context = {
        let _guard = CONTEXT_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        backend().and_then(|backend| {
            model
                .new_context(backend, params)
                .map_err(|e| InferenceError::Engine(format!("cannot make a context: {e}")))
        })
    };
    let mut context = match context {
        Ok(context) => {
            let _ = ready.send(Ok(()));
            context
        }
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    // The queue closes at shutdown (or when the engine is dropped): the loop ends once the
    // jobs still queued are done with, refused as shutting down if the engine stops.
    while let Ok(job) = queue.recv() {
        let outcome = match job.halted() {
            Some(outcome) => outcome,
            None => run(model, template, &mut context, &job),
        };
        if let Err(e) = outcome {
            job.send(Err(e));
        }
    }
    // Freed here, on the worker's thread, before the thread's clone of the model goes.
    drop(context);
}

fn run(
    model: &LlamaModel,
    template: &Template,
    context: &mut LlamaContext<'_>,
    job: &Job,
) -> Result<(), InferenceError> {
    let engine_err =
        |what: &str, e: &dyn std::fmt::Display| InferenceError::Engine(format!("{what}: {e}"));
    let prompt = template.render(model, &job.messages)?;
    let vocab = model.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    let n_ctx = context.n_ctx();
    let prompt_tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
    if prompt_tokens >= n_ctx {
        return Err(InferenceError::ContextLengthExceeded(format!(
            "This model's maximum context length is {n_ctx} tokens. However, your messages resulted in {prompt_tokens} tokens. Shorten the messages."
        )));
    }
    let mut sampler = sampler(model, &job.params, job.grammar.as_deref())?;
    context.clear_kv_cache();

    // Prefill in batches; only the last prompt token needs logits.
    let n_batch = context.n_batch().max(1) as usize;
    let mut batch = LlamaBatch::new(n_batch, 1);
    let last = tokens.len().saturating_sub(1);
    for (chunk_index, chunk) in tokens.chunks(n_batch).enumerate() {
        if let Some(halted) = job.halted() {
            return halted;
        }
        batch.clear();
        for (i, token) in chunk.iter().enumerate() {
            let pos = chunk_index * n_batch + i;
            batch
                .add(
                    *token,
                    i32::try_from(pos).unwrap_or(i32::MAX),
                    &[0],
                    pos == last,
                )
                .map_err(|e| engine_err("batch", &e))?;
        }
        context
            .decode(&mut batch)
            .map_err(|e| engine_err("prompt evaluation", &e))?;
    }
    if !job.send(Ok(ChatEvent::Started)) {
        return job.halted().unwrap_or(Ok(()));
    }

    let max_new = job
        .params
        .max_tokens
        .unwrap_or(u32::MAX)
        .min(n_ctx - prompt_tokens);
    let mut utf8 = Utf8Buffer::default();
    let mut stops = StopMatcher::new(job.params.stop.clone());
    let mut generated: u32 = 0;
    let mut position = tokens.len();
    let mut piece = Vec::with_capacity(16);
    let reason = loop {
        if let Some(halted) = job.halted() {
            return halted;
        }
        if generated >= max_new {
            break FinishReason::Length;
        }
        let token = sampler.sample(context, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        generated += 1;
        piece.clear();
        vocab.token_to_piece_into(token, &mut piece, false, None);
        let text = utf8.push(&piece);
        match stops.push(&text) {
            StopOutcome::Emit(text) => {
                if !text.is_empty() && !job.send(Ok(ChatEvent::Delta(text))) {
                    return job.halted().unwrap_or(Ok(()));
                }
            }
            StopOutcome::Stopped(text) => {
                if !text.is_empty() {
                    job.send(Ok(ChatEvent::Delta(text)));
                }
                return finish(job, FinishReason::Stop, prompt_tokens, generated);
            }
        }
        batch.clear();
        batch
            .add(
                token,
                i32::try_from(position).unwrap_or(i32::MAX),
                &[0],
                true,
            )
            .map_err(|e| engine_err("batch", &e))?;
        position += 1;
        context
            .decode(&mut batch)
            .map_err(|e| engine_err("generation", &e))?;
    };
    let mut rest = utf8.finish();
    rest = match stops.push(&rest) {
        StopOutcome::Emit(text) | StopOutcome::Stopped(text) => text,
    };
    rest.push_str(&stops.finish());
    if !rest.is_empty() {
        job.send(Ok(ChatEvent::Delta(rest)));
    }
    finish(job, reason, prompt_tokens, generated)
}

fn finish(
    job: &Job,
    reason: FinishReason,
    prompt_tokens: u32,
    generated: u32,
) -> Result<(), InferenceError> {
    job.send(Ok(ChatEvent::Finished {
        reason,
        usage: Usage::new(prompt_tokens, generated),
    }));
    Ok(())
}

fn sampler(
    model: &LlamaModel,
    params: &SamplingParams,
    grammar: Option<&str>,
) -> Result<LlamaSampler, InferenceError> {
    let mut chain = Vec::new();
    if let Some(grammar) = grammar {
        chain.push(LlamaSampler::grammar(model, grammar, "root").map_err(|e| {
            InferenceError::invalid("response_format", format!("bad grammar: {e}"))
        })?);
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        let seed = params
            .seed
            .map_or_else(rand_seed, |s| (s & 0xffff_ffff) as u32);
        chain.push(LlamaSampler::dist(seed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}

fn rand_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

/// Applies llama.cpp's built-in template support, for [`Template`].
pub(crate) fn apply_llama_template(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String, String> {
    let chat = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().to_owned(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| e.to_string())
}
