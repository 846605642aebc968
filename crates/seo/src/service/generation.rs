//! Generation: a metadata package written by the model as a durable `seo.generate` job.
//!
//! Stage 1 asks for an analysis (summary, main topics, audience, structure), stage 2 for the
//! package's parts, both as JSON under a schema (`response_format: json_schema`: a grammar on
//! the embedded engine, passed through to remote providers). A transcript goes with its
//! segments' start times; one too long for the model's context is first summarised window by
//! window. When the parts break a rule, the exact violations go back to the model once; then
//! deterministic repair makes the package valid whatever the model wrote. The package is
//! scored and stored as a new version in one transaction, named by the job, so a job run twice
//! (its worker died after the write) stores it once.

use confab_bus::{JobFilter, JobState, NewJob};
use confab_core::auth::{Credential, Principal, Role, Scope};
use confab_model_client::types::{
    ChatEvent, ChatMessage, ChatRequest, JsonSchemaFormat, ResponseFormat, SamplingParams,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{SeoError, SeoResult, SeoService};
use crate::domain::draft::{self, Analysis, Draft};
use crate::domain::prompt::{self, Plan, TranscriptView, WindowSummary};
use crate::domain::repair::{self, RepairContext};
use crate::domain::rules::{self, Severity};
use crate::domain::transcript::Segment;
use crate::domain::{Version, VersionSource};
use crate::events::{GenerationCompleted, GenerationFailed, GenerationProgress, Stage};
use crate::ports::{ModelError, NewVersion};

/// The job kind that writes a package.
pub const GENERATE_JOB: &str = "seo.generate";

/// The payload of a [`GENERATE_JOB`]: for whom (the model calls are theirs: access, limits,
/// usage) and which project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateJob {
    pub user_id: Uuid,
    pub role: Role,
    /// The user's API key, when they asked through one.
    pub key_id: Option<Uuid>,
    pub project_id: Uuid,
    /// The model asked for; `None`: the studio's or the platform's default.
    pub model: Option<String>,
}

impl GenerateJob {
    fn principal(&self) -> Principal {
        Principal {
            user_id: self.user_id,
            role: self.role,
            credential: Credential::Service {
                key_id: self.key_id,
                scopes: vec![Scope::Seo, Scope::Inference],
            },
        }
    }
}

/// A generation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Generation {
    pub job_id: Uuid,
    pub project_id: Uuid,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub percent: Option<f64>,
    pub message: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The version it stored, once it succeeded.
    pub version: Option<u32>,
}

/// Why a generation did not store a package.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// The project was deleted meanwhile: nothing to do, never retried.
    #[error("the project no longer exists")]
    ProjectGone,
    /// No model is configured or available.
    #[error("no model is available to write the package")]
    NoModel,
    /// The model call failed; `retry` when another attempt may succeed.
    #[error("the model failed: {0}")]
    Model(ModelError),
    #[error("cancelled")]
    Cancelled,
    #[error("storage: {0}")]
    Store(String),
}

impl GenerationError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            GenerationError::Model(e) => e.retry_after_secs().is_some() || e.status() >= 500,
            GenerationError::Store(_) => true,
            _ => false,
        }
    }

    /// The stable code the UI shows words for.
    pub fn code(&self) -> &'static str {
        match self {
            GenerationError::ProjectGone => "not_found",
            GenerationError::NoModel => "no_model",
            GenerationError::Model(e) if e.status() >= 500 => "model_unavailable",
            GenerationError::Model(e) if e.status() == 429 => "rate_limited",
            GenerationError::Model(_) => "model_refused",
            GenerationError::Cancelled => "cancelled",
            GenerationError::Store(_) => "unavailable",
        }
    }

    /// What is safe to show the user.
    pub fn public_message(&self) -> String {
        match self {
            GenerationError::Model(e) => e.public_message(),
            GenerationError::Store(_) => "the studio could not save the package; try again".into(),
            other => other.to_string(),
        }
    }
}

/// What a generation's model calls took: stored with the job's result, for operators and
/// the benchmark (the studio's overhead is the job's time beyond `model_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GenerationStats {
    pub calls: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Milliseconds spent waiting for the model, summed over the calls.
    pub model_ms: u64,
}

/// A stored generation and what it took.
#[derive(Debug, Clone)]
pub struct Generated {
    pub version: Version,
    /// Zero when the job had stored its version before (a retaken job).
    pub stats: GenerationStats,
}

/// Reports a job's progress to the worker (stored with the job) and to the owner's tabs.
pub type ProgressFn = Box<dyn Fn(f64, &str) + Send + Sync>;

impl SeoService {
    /// Queues a generation of the project's package: 409 while one runs for the project, 429
    /// past the user's cap on queued and running generations.
    pub async fn start_generation(
        &self,
        principal: &Principal,
        project_id: Uuid,
        model: Option<String>,
    ) -> SeoResult<Generation> {
        let project = self.store.project(principal.user_id, project_id).await?;
        if let Some(model) = &model
            && !self.models.knows_model(model).await
        {
            return Err(SeoError::Model(ModelError::ModelNotFound(model.clone())));
        }
        let _one_at_a_time = self.starting.lock().await;
        if let Some(job) = project.generation_job
            && let Some(job) = self.jobs.get(job).await?
            && matches!(job.state, JobState::Queued | JobState::Running)
        {
            return Err(SeoError::AlreadyGenerating);
        }
        let mut running = 0;
        for state in [JobState::Queued, JobState::Running] {
            let filter = JobFilter {
                state: Some(state),
                kind: Some(GENERATE_JOB.into()),
                created_by: Some(principal.user_id),
                before: None,
                limit: u32::try_from(self.settings.generations_per_user + 1).unwrap_or(u32::MAX),
            };
            running += self.jobs.list(&filter).await?.len();
        }
        let max = self.settings.generations_per_user;
        if running >= max {
            return Err(SeoError::TooManyGenerations { running, max });
        }
        let key_id = match &principal.credential {
            Credential::ApiKey { key_id, .. } => Some(*key_id),
            Credential::Service { key_id, .. } => *key_id,
            Credential::Session { .. } => None,
        };
        let payload = GenerateJob {
            user_id: principal.user_id,
            role: principal.role,
            key_id,
            project_id,
            model,
        };
        let job = self
            .jobs
            .enqueue(
                NewJob::new(
                    GENERATE_JOB,
                    serde_json::to_value(&payload).unwrap_or_default(),
                )
                .max_attempts(3)
                .created_by(principal.user_id),
            )
            .await?;
        self.store
            .set_generation_job(principal.user_id, project_id, job.id)
            .await?;
        self.publish(&GenerationProgress {
            user_id: principal.user_id,
            project_id,
            job_id: job.id,
            stage: Stage::Queued,
            percent: 0.0,
        })
        .await;
        Ok(Generation {
            job_id: job.id,
            project_id,
            state: job.state.as_str().into(),
            percent: Some(0.0),
            message: None,
            error: None,
            version: None,
        })
    }

    /// The project's current or last generation, if it had one.
    pub async fn generation(
        &self,
        principal: &Principal,
        project_id: Uuid,
    ) -> SeoResult<Option<Generation>> {
        let project = self.store.project(principal.user_id, project_id).await?;
        let Some(job_id) = project.generation_job else {
            return Ok(None);
        };
        let Some(job) = self.jobs.get(job_id).await? else {
            return Ok(None);
        };
        let version = self
            .store
            .version_of_job(principal.user_id, job_id)
            .await?
            .map(|v| v.number);
        Ok(Some(Generation {
            job_id,
            project_id,
            state: job.state.as_str().into(),
            percent: job.progress,
            message: job.progress_message,
            error: job.error,
            version,
        }))
    }

    /// Runs a [`GENERATE_JOB`] to its stored version. Idempotent: a job that already stored
    /// its version returns it.
    pub async fn run_generation(
        &self,
        job_id: Uuid,
        job: &GenerateJob,
        cancel: CancellationToken,
        progress: ProgressFn,
    ) -> Result<Generated, GenerationError> {
        let result = self.generate(job_id, job, &cancel, &progress).await;
        match &result {
            Ok(Generated { version, .. }) => {
                self.publish(&GenerationCompleted {
                    user_id: job.user_id,
                    project_id: job.project_id,
                    job_id,
                    version: version.number,
                    score: version.score,
                })
                .await;
            }
            Err(e) => {
                tracing::warn!(job = %job_id, project = %job.project_id, error = %e, "generation failed");
                self.publish(&GenerationFailed {
                    user_id: job.user_id,
                    project_id: job.project_id,
                    job_id,
                    code: e.code().into(),
                    message: e.public_message(),
                })
                .await;
            }
        }
        result
    }

    async fn generate(
        &self,
        job_id: Uuid,
        job: &GenerateJob,
        cancel: &CancellationToken,
        progress: &ProgressFn,
    ) -> Result<Generated, GenerationError> {
        let store_error = |e: confab_store::StoreError| GenerationError::Store(e.to_string());
        let owner = job.user_id;
        let project = match self.store.project(owner, job.project_id).await {
            Ok(p) => p,
            Err(confab_store::StoreError::NotFound) => return Err(GenerationError::ProjectGone),
            Err(e) => return Err(store_error(e)),
        };
        if let Some(done) = self
            .store
            .version_of_job(owner, job_id)
            .await
            .map_err(store_error)?
        {
            return Ok(Generated {
                version: done,
                stats: GenerationStats::default(),
            });
        }
        let principal = job.principal();
        let model = match job.model.clone().or_else(|| self.settings.model.clone()) {
            Some(model) => model,
            None => self
                .models
                .default_model()
                .await
                .ok_or(GenerationError::NoModel)?,
        };
        let context_tokens = self
            .models
            .context_tokens(&model)
            .await
            .unwrap_or(self.settings.default_context_tokens);
        let transcript = self
            .store
            .transcript(owner, job.project_id)
            .await
            .map_err(store_error)?;
        let step = |stage: Stage, percent: f64| {
            progress(percent, stage_name(stage));
            let event = GenerationProgress {
                user_id: owner,
                project_id: job.project_id,
                job_id,
                stage,
                percent,
            };
            async move { self.publish(&event).await }
        };
        let ask = Asker {
            service: self,
            principal: &principal,
            model: &model,
            cancel,
            stats: parking_lot::Mutex::new(GenerationStats::default()),
        };

        // A transcript too long for the context is summarised window by window first; the
        // summaries keep their windows' start and end times.
        let view = match prompt::plan(transcript.as_ref(), context_tokens) {
            Plan::Full(view) => view,
            Plan::Summarise(windows) => {
                step(Stage::Summarising, 5.0).await;
                let mut summaries = Vec::with_capacity(windows.len());
                for (i, window) in windows.iter().enumerate() {
                    let text = ask
                        .text_capped(
                            prompt::summary_messages(&project, window),
                            prompt::SUMMARY_MAX_TOKENS,
                        )
                        .await?;
                    summaries.push(WindowSummary {
                        start_ms: window.start_ms,
                        end_ms: window.end_ms,
                        summary: text,
                    });
                    // 5 % to 15 % over the windows.
                    let done = (i + 1) as f64 / windows.len() as f64;
                    progress(5.0 + 10.0 * done, stage_name(Stage::Summarising));
                }
                TranscriptView::Summaries(prompt::fit_summaries(summaries, context_tokens))
            }
        };

        step(Stage::Analysis, 15.0).await;
        let analysis_text = ask
            .text(
                prompt::analysis_messages(&project, &view),
                Some(("seo_analysis", draft::analysis_schema())),
            )
            .await?;
        let analysis: Analysis = draft::parse_analysis(&analysis_text);

        step(Stage::Generation, 45.0).await;
        let draft_prompt = prompt::draft_messages(&project, &analysis, &view);
        let draft_text = ask
            .text(
                draft_prompt.clone(),
                Some(("seo_package", draft::draft_schema())),
            )
            .await?;
        let mut draft: Draft = draft::parse_draft(&draft_text);

        let segments: &[Segment] = match &transcript {
            Some(t) if t.is_timed() => &t.segments,
            _ => &[],
        };
        let ctx = RepairContext::for_project(&project, segments);
        let errors = |d: &Draft| {
            rules::validate_package(&repair::as_given(d, &ctx), project.duration_secs)
                .into_iter()
                .filter(|v| v.severity == Severity::Error)
                .collect::<Vec<_>>()
        };
        let violations = errors(&draft);
        if !violations.is_empty() {
            step(Stage::Repair, 75.0).await;
            let messages =
                prompt::repair_messages(&draft_prompt, &draft_text, &repair::feedback(&violations));
            match ask
                .text(messages, Some(("seo_package", draft::draft_schema())))
                .await
            {
                Ok(text) => {
                    let again = draft::parse_draft(&text);
                    // The second answer is used only when it breaks fewer rules.
                    if errors(&again).len() < violations.len() {
                        draft = again;
                    }
                }
                Err(GenerationError::Cancelled) => return Err(GenerationError::Cancelled),
                Err(e) => tracing::warn!(error = %e, "the repair round failed; repairing alone"),
            }
        }

        step(Stage::Saving, 90.0).await;
        let mut package = repair::repair(&draft, &ctx);
        let score = self.check_package(&project, &mut package).map_err(|e| {
            // Repair guarantees validity; reaching this is a bug in it, not the model's fault.
            tracing::error!(error = %e, "a repaired package failed validation");
            GenerationError::Store("the repaired package was invalid".into())
        })?;
        let version = self
            .store
            .add_version(
                owner,
                job.project_id,
                NewVersion {
                    source: VersionSource::Generated,
                    author: owner,
                    package,
                    score,
                    model: Some(model.clone()),
                    job_id: Some(job_id),
                },
                confab_core::now_ms(),
            )
            .await
            .map_err(|e| match e {
                confab_store::StoreError::NotFound => GenerationError::ProjectGone,
                other => store_error(other),
            })?;
        progress(100.0, "done");
        Ok(Generated {
            version,
            stats: *ask.stats.lock(),
        })
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued => "queued",
        Stage::Summarising => "summarising the transcript",
        Stage::Analysis => "analysing",
        Stage::Generation => "writing the package",
        Stage::Repair => "fixing what breaks YouTube's rules",
        Stage::Saving => "validating, scoring and saving",
    }
}

/// One model call of a generation, its answer collected whole.
struct Asker<'a> {
    service: &'a SeoService,
    principal: &'a Principal,
    model: &'a str,
    cancel: &'a CancellationToken,
    stats: parking_lot::Mutex<GenerationStats>,
}

impl Asker<'_> {
    /// Asks the model and collects the answer. With `schema`, the answer is constrained to
    /// it (a grammar on the embedded engine, `response_format` for remote providers); a model
    /// that cannot be constrained is asked again without, and the lenient reader copes.
    async fn text(
        &self,
        messages: Vec<ChatMessage>,
        schema: Option<(&str, serde_json::Value)>,
    ) -> Result<String, GenerationError> {
        let format = schema.map(|(name, schema)| ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: name.into(),
                schema,
                strict: Some(true),
                description: None,
            },
        });
        let max_tokens = self.service.settings.max_tokens;
        match self
            .once(messages.clone(), format.clone(), max_tokens)
            .await
        {
            Err(GenerationError::Model(ModelError::Unsupported(reason))) if format.is_some() => {
                tracing::info!(model = self.model, %reason, "asking again without a schema");
                self.once(messages, None, max_tokens).await
            }
            other => other,
        }
    }

    /// A plain-text answer of at most `max_tokens` (a window's summary).
    async fn text_capped(
        &self,
        messages: Vec<ChatMessage>,
        max_tokens: u32,
    ) -> Result<String, GenerationError> {
        self.once(
            messages,
            None,
            max_tokens.min(self.service.settings.max_tokens),
        )
        .await
    }

    async fn once(
        &self,
        messages: Vec<ChatMessage>,
        response_format: Option<ResponseFormat>,
        max_tokens: u32,
    ) -> Result<String, GenerationError> {
        let settings = &self.service.settings;
        let request = ChatRequest {
            model: self.model.to_owned(),
            messages,
            params: SamplingParams {
                temperature: settings.temperature,
                max_tokens: Some(max_tokens),
                ..SamplingParams::default()
            },
            response_format,
            stream: false,
        };
        let started = std::time::Instant::now();
        let mut stream = self
            .service
            .models
            .chat(self.principal, request, self.cancel.child_token())
            .await
            .map_err(GenerationError::Model)?;
        let mut text = String::new();
        let mut usage = None;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Err(GenerationError::Cancelled),
                event = stream.next() => match event {
                    Some(Ok(ChatEvent::Delta(piece))) => text.push_str(&piece),
                    Some(Ok(ChatEvent::Finished { usage: used, .. })) => {
                        usage = Some(used);
                        break;
                    }
                    None => break,
                    Some(Ok(ChatEvent::Started)) => {}
                    Some(Err(e)) => return Err(GenerationError::Model(e)),
                },
            }
        }
        let mut stats = self.stats.lock();
        stats.calls += 1;
        stats.model_ms += u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(usage) = usage {
            stats.prompt_tokens += usage.prompt_tokens;
            stats.completion_tokens += usage.completion_tokens;
        }
        Ok(text)
    }
}
