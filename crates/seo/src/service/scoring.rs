//! Scoring any metadata — a generated package, a hand edit in progress, an existing video —
//! with the one validator and scorer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{SeoError, SeoResult, SeoService};
use crate::domain::Metadata;
use crate::domain::project::FieldProblem;
use crate::domain::rules::{self, Violation};
use crate::domain::score::{self, Score, ScoreContext};

/// Input sizes past which scoring is refused (422) instead of judged: far beyond YouTube's
/// own limits, so any real metadata is judged and told what to cut.
pub const MAX_SCORED_TITLE_BYTES: usize = 4_000;
pub const MAX_SCORED_DESCRIPTION_BYTES: usize = 50_000;
pub const MAX_SCORED_TAGS: usize = 1_000;
pub const MAX_SCORED_TAG_BYTES: usize = 1_000;
/// The most secondary keywords or thumbnail texts scored.
pub const MAX_SCORED_LIST: usize = 100;

/// What `POST /api/v1/seo/score` judges.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    #[serde(flatten)]
    pub metadata: Metadata,
    #[serde(default)]
    pub primary_keyword: String,
    #[serde(default)]
    pub secondary_keywords: Vec<String>,
    #[serde(default)]
    pub duration_secs: Option<u32>,
    #[serde(default)]
    pub thumbnail_texts: Vec<String>,
}

/// The verdict: YouTube's rules broken (errors and warnings) and the explained score.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoreReport {
    pub violations: Vec<Violation>,
    pub score: Score,
}

impl SeoService {
    /// Validates and scores `request`; pure and cheap (bounded by the sizes above).
    pub fn score(&self, request: &ScoreRequest) -> SeoResult<ScoreReport> {
        let mut problems = Vec::new();
        let m = &request.metadata;
        if m.title.len() > MAX_SCORED_TITLE_BYTES {
            problems.push(problem("title", MAX_SCORED_TITLE_BYTES));
        }
        if m.description.len() > MAX_SCORED_DESCRIPTION_BYTES {
            problems.push(problem("description", MAX_SCORED_DESCRIPTION_BYTES));
        }
        if m.tags.len() > MAX_SCORED_TAGS || m.tags.iter().any(|t| t.len() > MAX_SCORED_TAG_BYTES) {
            problems.push(FieldProblem {
                field: "tags".into(),
                message: format!(
                    "at most {MAX_SCORED_TAGS} tags of at most {MAX_SCORED_TAG_BYTES} bytes are scored"
                ),
            });
        }
        for (field, count) in [
            ("secondary_keywords", request.secondary_keywords.len()),
            ("thumbnail_texts", request.thumbnail_texts.len()),
        ] {
            if count > MAX_SCORED_LIST {
                problems.push(FieldProblem {
                    field: field.into(),
                    message: format!("at most {MAX_SCORED_LIST} {field} are scored, got {count}"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(SeoError::Invalid(problems));
        }
        let ctx = ScoreContext {
            primary_keyword: request.primary_keyword.clone(),
            secondary_keywords: request.secondary_keywords.clone(),
            duration_secs: request.duration_secs,
            thumbnail_texts: request.thumbnail_texts.clone(),
        };
        Ok(ScoreReport {
            violations: rules::validate(m, request.duration_secs),
            score: score::score(m, &ctx, &self.settings.weights),
        })
    }
}

fn problem(field: &str, max: usize) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        message: format!("{field} is over {max} bytes, too long to score"),
    }
}
