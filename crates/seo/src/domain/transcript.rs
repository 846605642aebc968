//! Transcripts: plain text, SRT or WebVTT, read into segments with their start and end times.
//! A file that is not what it claims gets an error naming the line that is wrong.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a transcript was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    /// Plain text: no times.
    Text,
    Srt,
    Vtt,
}

impl TranscriptFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptFormat::Text => "text",
            TranscriptFormat::Srt => "srt",
            TranscriptFormat::Vtt => "vtt",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(TranscriptFormat::Text),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" => Some(TranscriptFormat::Vtt),
            _ => None,
        }
    }
}

/// One timed piece of a transcript. Plain text has a single segment without times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// Milliseconds from the start of the video (0 for plain text).
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// A parsed transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    pub format: TranscriptFormat,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// Whether its segments carry times (SRT and WebVTT).
    pub fn is_timed(&self) -> bool {
        self.format != TranscriptFormat::Text
    }
}

/// Why a transcript could not be read: the 1-based line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, ToSchema)]
#[error("line {line}: {message}")]
pub struct TranscriptError {
    pub line: usize,
    pub message: String,
}
