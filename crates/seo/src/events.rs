//! The SEO studio's live events, published on the owner's topic (`user.<id>`): the WebSocket
//! (`/api/v1/ws`) relays them to the user's tabs and the project's SSE feed
//! (`/api/v1/seo/projects/{id}/events`) streams those of one project.

use confab_bus::{TypedEvent, user_topic};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How far a generation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for a worker.
    Queued,
    /// Summarising a transcript too long for the model's context, window by window.
    Summarising,
    /// Stage 1: summary, main topics, audience, structure.
    Analysis,
    /// Stage 2: titles, description, tags, hashtags, chapters, thumbnail text.
    Generation,
    /// The model's output broke a rule: the one round that sends the violations back.
    Repair,
    /// Validated, scored and stored.
    Saving,
}

/// A generation moved on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenerationProgress {
    #[serde(skip)]
    pub user_id: Uuid,
    pub project_id: Uuid,
    pub job_id: Uuid,
    pub stage: Stage,
    /// 0–100.
    pub percent: f64,
}

impl TypedEvent for GenerationProgress {
    const KIND: &'static str = "seo.generation.progress";
    fn topic(&self) -> String {
        user_topic(self.user_id)
    }
}

/// A generation stored its package as a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenerationCompleted {
    #[serde(skip)]
    pub user_id: Uuid,
    pub project_id: Uuid,
    pub job_id: Uuid,
    pub version: u32,
    pub score: u8,
}

impl TypedEvent for GenerationCompleted {
    const KIND: &'static str = "seo.generation.completed";
    fn topic(&self) -> String {
        user_topic(self.user_id)
    }
}

/// A generation gave up; nothing was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenerationFailed {
    #[serde(skip)]
    pub user_id: Uuid,
    pub project_id: Uuid,
    pub job_id: Uuid,
    /// A stable code (`model_unavailable`, `model_refused`, `no_model`, …).
    pub code: String,
    /// What went wrong, safe to show.
    pub message: String,
}

impl TypedEvent for GenerationFailed {
    const KIND: &'static str = "seo.generation.failed";
    fn topic(&self) -> String {
        user_topic(self.user_id)
    }
}
