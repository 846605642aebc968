//! The SEO studio's rules, with no I/O: projects and their inputs, transcripts, metadata
//! packages, YouTube's validation rules, deterministic repair, the scorer, and the prompts and
//! JSON schemas the model is asked with.
//!
//! Everything here is pure and deterministic, so the same code checks a generated package, a
//! hand edit and a video imported from YouTube.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub mod assemble;
pub mod chapters;
pub mod diff;
pub mod draft;
pub mod export;
pub mod project;
pub mod prompt;
pub mod repair;
pub mod research;
pub mod rules;
pub mod score;
pub mod transcript;

pub use assemble::{DescriptionParts, format_timestamp};
pub use diff::{PackageDiff, diff};
pub use draft::{Analysis, Draft, DraftChapter, DraftTitle, parse_analysis, parse_draft};
pub use project::{Link, ProjectChanges, ProjectInput, Tone};
pub use repair::{RepairContext, feedback, repair};
pub use rules::{Field, Severity, Violation, validate, validate_package};
pub use score::{Score, ScoreContext, Weights, evaluate, score, score_title};
pub use transcript::{Segment, Transcript, TranscriptError, TranscriptFormat, Window};

/// An SEO project: what a video is about and everything the studio knows to write its
/// metadata. Private to its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub owner: Uuid,
    pub topic: String,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    /// A BCP 47 language tag such as `en` or `pt-BR`.
    pub language: String,
    pub tone: Tone,
    pub audience: Option<String>,
    pub channel_name: Option<String>,
    pub links: Vec<Link>,
    pub call_to_action: Option<String>,
    /// The video's length, when known: chapters must end inside it.
    pub duration_secs: Option<u32>,
    /// YouTube's category id (`videoCategories.list`), e.g. `"27"` for Education.
    pub category_id: Option<String>,
    /// Whether a transcript is attached (its segments are fetched on their own).
    pub has_transcript: bool,
    pub archived: bool,
    /// The newest package version, if one was made.
    pub latest_version: Option<u32>,
    /// The newest version's score, for lists and the dashboard.
    pub latest_score: Option<u8>,
    /// The generation job running or last run for the project (the bus's job id).
    pub generation_job: Option<Uuid>,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A chapter: where it starts and what it is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Chapter {
    pub start_secs: u32,
    pub title: String,
}

/// How a title candidate tries to win the click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TitleStrategy {
    /// The primary keyword leads.
    KeywordFirst,
    /// Asks the question the viewer has.
    Question,
    /// A numbered list ("7 ways to …").
    Listicle,
    /// Names what the viewer gains.
    Benefit,
    /// Opens a gap the video closes.
    Curiosity,
}

impl TitleStrategy {
    /// All five, in the order candidates are shown.
    pub const ALL: [TitleStrategy; 5] = [
        TitleStrategy::KeywordFirst,
        TitleStrategy::Question,
        TitleStrategy::Listicle,
        TitleStrategy::Benefit,
        TitleStrategy::Curiosity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TitleStrategy::KeywordFirst => "keyword_first",
            TitleStrategy::Question => "question",
            TitleStrategy::Listicle => "listicle",
            TitleStrategy::Benefit => "benefit",
            TitleStrategy::Curiosity => "curiosity",
        }
    }
}

/// One title the studio proposes, with the strategy behind it and its score (0–100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TitleCandidate {
    pub text: String,
    pub strategy: TitleStrategy,
    pub score: u8,
}

/// What YouTube stores for a video's snippet, as the scorer and the validator see it: the
/// same shape for a generated package, a hand edit and an imported video. Chapters and
/// hashtags live inside the description, as on YouTube.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Metadata {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
}

/// A metadata package: the title candidates, the chosen title, the assembled description,
/// tags, and thumbnail text options. Stored only when valid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Package {
    /// Up to five candidates, one a strategy (empty for imported or hand-made packages).
    pub titles: Vec<TitleCandidate>,
    /// The title in use.
    pub title: String,
    /// The whole description: hook, body, chapters, call to action and links, hashtags.
    pub description: String,
    /// Primary keyword first, then broad, then long-tail.
    pub tags: Vec<String>,
    /// 2–3 options of 2–5 words each for the thumbnail.
    pub thumbnail_texts: Vec<String>,
}

impl Package {
    /// The part YouTube stores.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            title: self.title.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// Where a package version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// Written by the model (after validation and repair).
    Generated,
    /// Edited by hand.
    Edited,
    /// A copy of an earlier version, restored.
    Restored,
    /// Read from an existing YouTube video.
    Imported,
}

impl VersionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::Generated => "generated",
            VersionSource::Edited => "edited",
            VersionSource::Restored => "restored",
            VersionSource::Imported => "imported",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "generated" => Some(VersionSource::Generated),
            "edited" => Some(VersionSource::Edited),
            "restored" => Some(VersionSource::Restored),
            "imported" => Some(VersionSource::Imported),
            _ => None,
        }
    }
}

/// One stored version of a project's package. Versions are never changed: an edit or a
/// restore adds a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    pub project_id: Uuid,
    /// 1, 2, 3… within the project.
    pub number: u32,
    pub source: VersionSource,
    /// Who made it (the owner; the model's versions name the user who asked).
    pub author: Uuid,
    pub package: Package,
    /// The score when it was stored (0–100).
    pub score: u8,
    /// For generated versions: the model that wrote it.
    pub model: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}
