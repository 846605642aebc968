//! Projects: create (with a transcript, parsed and checked before anything is stored), list
//! with search and cursor, read, change, archive, delete.

use confab_core::auth::Principal;
use uuid::Uuid;

use super::{SeoError, SeoResult, SeoService};
use crate::domain::project::{Fields, ProjectChanges, ProjectInput};
use crate::domain::transcript::{self, Transcript};
use crate::domain::{Project, Tone};
use crate::ports::ProjectFilter;

/// Transcripts longer than this are parsed on a blocking thread.
const BLOCKING_PARSE_BYTES: usize = 64 * 1024;

impl SeoService {
    /// Reads a transcript after checking its size; `None` for an empty one. Parsing is linear
    /// in the text and the size cap bounds it; a long one is parsed off the async threads.
    async fn read_transcript(&self, text: &str) -> SeoResult<Option<Transcript>> {
        let max = self.settings.transcript_max_bytes;
        if text.len() > max {
            return Err(SeoError::TranscriptTooLarge {
                size: text.len(),
                max,
            });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        let parsed = if text.len() > BLOCKING_PARSE_BYTES {
            let owned = text.to_owned();
            tokio::task::spawn_blocking(move || transcript::parse(&owned))
                .await
                .map_err(|e| SeoError::Store(confab_store::StoreError::Other(e.to_string())))?
        } else {
            transcript::parse(text)
        };
        parsed.map(Some).map_err(SeoError::Transcript)
    }

    pub async fn create_project(
        &self,
        principal: &Principal,
        input: ProjectInput,
    ) -> SeoResult<Project> {
        let checked = Fields::of_input(&input)
            .check()
            .map_err(SeoError::Invalid)?;
        let transcript = match input.transcript.as_deref() {
            Some(text) => self.read_transcript(text).await?,
            None => None,
        };
        let now = confab_core::now_ms();
        let project = Project {
            id: confab_core::id::new_id(),
            owner: principal.user_id,
            topic: checked.topic.unwrap_or_default(),
            primary_keyword: checked.primary_keyword.unwrap_or_default(),
            secondary_keywords: checked.secondary_keywords.unwrap_or_default(),
            language: checked.language.unwrap_or_else(|| "en".into()),
            tone: input.tone.unwrap_or(Tone::Neutral),
            audience: checked.audience.flatten(),
            channel_name: checked.channel_name.flatten(),
            links: checked.links.unwrap_or_default(),
            call_to_action: checked.call_to_action.flatten(),
            duration_secs: checked.duration_secs.flatten(),
            category_id: checked.category_id.flatten(),
            has_transcript: transcript.is_some(),
            archived: false,
            latest_version: None,
            latest_score: None,
            generation_job: None,
            created_at: now,
            updated_at: now,
        };
        let raw = input.transcript.as_deref().unwrap_or_default();
        self.store
            .create_project(&project, transcript.as_ref().map(|t| (raw, t)))
            .await?;
        Ok(project)
    }

    pub async fn project(&self, principal: &Principal, id: Uuid) -> SeoResult<Project> {
        Ok(self.store.project(principal.user_id, id).await?)
    }

    pub async fn projects(
        &self,
        principal: &Principal,
        filter: ProjectFilter,
    ) -> SeoResult<Vec<Project>> {
        Ok(self.store.projects(principal.user_id, &filter).await?)
    }

    pub async fn update_project(
        &self,
        principal: &Principal,
        id: Uuid,
        changes: ProjectChanges,
    ) -> SeoResult<Project> {
        let checked = Fields::of_changes(&changes)
            .check()
            .map_err(SeoError::Invalid)?;
        let transcript = match changes.transcript.as_deref() {
            None => None,
            Some(text) => Some(self.read_transcript(text).await?),
        };
        let mut project = self.store.project(principal.user_id, id).await?;
        if let Some(v) = checked.topic {
            project.topic = v;
        }
        if let Some(v) = checked.primary_keyword {
            project.primary_keyword = v;
        }
        if let Some(v) = checked.secondary_keywords {
            project.secondary_keywords = v;
        }
        if let Some(v) = checked.language {
            project.language = v;
        }
        if let Some(v) = changes.tone {
            project.tone = v;
        }
        if let Some(v) = checked.audience {
            project.audience = v;
        }
        if let Some(v) = checked.channel_name {
            project.channel_name = v;
        }
        if let Some(v) = checked.links {
            project.links = v;
        }
        if let Some(v) = checked.call_to_action {
            project.call_to_action = v;
        }
        if let Some(v) = checked.duration_secs {
            project.duration_secs = v;
        }
        if let Some(v) = checked.category_id {
            project.category_id = v;
        }
        if let Some(v) = changes.archived {
            project.archived = v;
        }
        if let Some(t) = &transcript {
            project.has_transcript = t.is_some();
        }
        project.updated_at = confab_core::now_ms();
        let raw = changes.transcript.as_deref().unwrap_or_default();
        self.store
            .update_project(
                &project,
                transcript.as_ref().map(|t| t.as_ref().map(|t| (raw, t))),
            )
            .await?;
        Ok(project)
    }

    pub async fn delete_project(&self, principal: &Principal, id: Uuid) -> SeoResult<()> {
        Ok(self.store.delete_project(principal.user_id, id).await?)
    }

    /// The project's transcript as given and as parsed, if it has one.
    pub async fn transcript(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> SeoResult<Option<(String, Transcript)>> {
        // Through the project first, so a missing project is 404, not an empty answer.
        self.store.project(principal.user_id, id).await?;
        let text = self.store.transcript_text(principal.user_id, id).await?;
        let parsed = self.store.transcript(principal.user_id, id).await?;
        Ok(text.zip(parsed))
    }
}
