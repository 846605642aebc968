//! Titles: after the first exchange, the conversation's model suggests a short title, which
//! replaces the provisional one (the start of the first message) unless the user renamed the
//! conversation meanwhile. Run as a durable `chat.title` job when there is a job queue.

use confab_bus::NewJob;
use confab_core::auth::{Credential, Principal, Role, Scope};
use confab_model_client::types::{ChatEvent, SamplingParams};
use confab_store::StoreError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ChatService;
use crate::domain::{self, Author, Turn};
use crate::ports::{Ask, ModelError};

/// The job kind that names a conversation after its first exchange.
pub const TITLE_JOB: &str = "chat.title";

/// The payload of a [`TITLE_JOB`]: for whom (the title is generated on their behalf and
/// counts as their usage) and which conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TitleJob {
    pub user_id: Uuid,
    pub role: Role,
    /// The user's API key, when they asked through one (its limits and usage apply).
    pub key_id: Option<Uuid>,
    pub conversation_id: Uuid,
}

impl TitleJob {
    fn principal(&self) -> Principal {
        Principal {
            user_id: self.user_id,
            role: self.role,
            credential: Credential::Service {
                key_id: self.key_id,
                scopes: vec![Scope::Chat, Scope::Inference],
            },
        }
    }
}

/// Why no title could be made this time; each is worth another try later.
#[derive(Debug, thiserror::Error)]
pub enum TitleError {
    /// Neither the conversation nor the settings name a model, and none exists.
    #[error("no model is available to suggest a title")]
    NoModel,
    #[error("the model did not suggest a title: {0}")]
    Model(#[from] ModelError),
    #[error("the title could not be saved: {0}")]
    Store(#[from] StoreError),
}

/// The instruction that asks a model for a title.
const TITLE_PROMPT: &str = "You name conversations. Reply with a title of at most six words \
     for the conversation that starts with the user's message. Reply with the title only.";

impl ChatService {
    /// Runs a [`TITLE_JOB`]: the title, or `None` when the conversation is gone, was renamed
    /// by its user, or has nothing to name. A model failure is an error (the job retries).
    pub async fn run_title_job(&self, job: &TitleJob) -> Result<Option<String>, TitleError> {
        self.auto_title(&job.principal(), job.conversation_id).await
    }

    /// Names the conversation in the background: a durable `chat.title` job when a job queue
    /// is configured, else a task of this process.
    pub(super) async fn queue_title(&self, principal: &Principal, conversation_id: Uuid) {
        let Some(jobs) = &self.jobs else {
            if let Err(e) = self.auto_title(principal, conversation_id).await {
                tracing::warn!(conversation = %conversation_id, error = %e, "no title");
            }
            return;
        };
        let key_id = match &principal.credential {
            Credential::ApiKey { key_id, .. } => Some(*key_id),
            Credential::Service { key_id, .. } => *key_id,
            Credential::Session { .. } => None,
        };
        let job = TitleJob {
            user_id: principal.user_id,
            role: principal.role,
            key_id,
            conversation_id,
        };
        let payload = serde_json::to_value(&job).unwrap_or_default();
        if let Err(e) = jobs
            .enqueue(
                NewJob::new(TITLE_JOB, payload)
                    .max_attempts(3)
                    .created_by(principal.user_id),
            )
            .await
        {
            tracing::warn!(conversation = %conversation_id, error = %e, "cannot queue the title");
        }
    }

    /// Asks the conversation's model for a short title, and sets it unless the user renamed
    /// the conversation meanwhile. Idempotent: once titled, the provisional title is gone and
    /// a second run changes nothing.
    async fn auto_title(
        &self,
        principal: &Principal,
        conversation_id: Uuid,
    ) -> Result<Option<String>, TitleError> {
        let Ok(conversation) = self
            .store
            .conversation(principal.user_id, conversation_id)
            .await
        else {
            return Ok(None);
        };
        let Ok(path) = self.active_path(principal, conversation_id).await else {
            return Ok(None);
        };
        let Some((first, _)) = path.first() else {
            return Ok(None);
        };
        let source = domain::title_source(&first.content, &first.attachments);
        let provisional = domain::provisional_title(&source);
        if conversation.title != provisional {
            // Named already: by the user, or by an earlier run of this job.
            return Ok(None);
        }
        // Picking a model fails only when there is none.
        let model = self
            .pick_model(&conversation, None)
            .await
            .map_err(|_| TitleError::NoModel)?;
        let excerpt: String = source.chars().take(1000).collect();
        let ask = Ask {
            model,
            system: Some(TITLE_PROMPT.into()),
            turns: vec![Turn::new(Author::User, excerpt)],
            images: Vec::new(),
            params: SamplingParams {
                temperature: self.settings.title_temperature,
                max_tokens: Some(self.settings.title_max_tokens),
                ..SamplingParams::default()
            },
        };
        let cancel = self.shutdown.child_token();
        let mut stream = self
            .models
            .chat(principal, ask.into_request(), cancel)
            .await?;
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                ChatEvent::Delta(piece) => text.push_str(&piece),
                ChatEvent::Started | ChatEvent::Finished { .. } => {}
            }
        }
        // Replaces the provisional title only: a name the user gave meanwhile stays.
        let Some(title) = domain::clean_title(&text) else {
            return Ok(None);
        };
        let changed = self
            .store
            .retitle(
                principal.user_id,
                conversation_id,
                &provisional,
                &title,
                confab_core::now_ms(),
            )
            .await?;
        if !changed {
            return Ok(None);
        }
        self.publish_conversation(principal.user_id, conversation_id)
            .await;
        Ok(Some(title))
    }
}
