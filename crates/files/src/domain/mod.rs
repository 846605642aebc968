//! The files service's pure rules: what a stored file is and the states it moves through,
//! names (`names`), types by content (`kinds`), how a file is served (`serve`), byte ranges
//! (`range`) and signed share links (`links`). No I/O here.

pub mod kinds;
pub mod links;
pub mod names;
pub mod range;
pub mod serve;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use kinds::{Detected, FileKind, KindError};

/// Where a file is in its checks. Only `clean` and `unscanned` files are ever served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Waiting for the virus scan (clamd is configured): not served yet.
    Pending,
    /// Scanned, nothing found.
    Clean,
    /// Scanned, a signature matched: quarantined, never served.
    Infected,
    /// Stored without a scan because no scanner is configured.
    Unscanned,
}

impl FileState {
    pub const ALL: [FileState; 4] = [
        FileState::Pending,
        FileState::Clean,
        FileState::Infected,
        FileState::Unscanned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Clean => "clean",
            FileState::Infected => "infected",
            FileState::Unscanned => "unscanned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the file's bytes may be served (to its owner or through a link).
    pub fn servable(self) -> bool {
        matches!(self, FileState::Clean | FileState::Unscanned)
    }
}

/// A stored file's metadata (its bytes are in the blob store under [`FileRecord::blob_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: Uuid,
    pub owner: Uuid,
    /// The sanitised name the user gave, kept only as metadata.
    pub name: String,
    /// The MIME type detected from the content.
    pub content_type: String,
    pub kind: FileKind,
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub state: FileState,
    /// The signature clamd named, for an infected file.
    pub threat: Option<String>,
    /// Image dimensions, once known.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Whether the thumbnail and preview variants are stored.
    pub variants: bool,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub scanned_ms: Option<i64>,
}

impl FileRecord {
    /// Where the content lives in the blob store.
    pub fn blob_key(&self) -> String {
        blob_key(self.owner, self.id)
    }

    /// Where an image variant lives (`thumb` or `preview`).
    pub fn variant_key(&self, variant: Variant) -> String {
        format!("{}.{}", self.blob_key(), variant.as_str())
    }

    /// Where a PDF's extracted text is kept once read (for models), beside its content.
    pub fn text_key(&self) -> String {
        format!("{}.text", self.blob_key())
    }
}

/// The content's key: by owner and id, never by the user's name.
pub fn blob_key(owner: Uuid, id: Uuid) -> String {
    format!("files/{}/{}", owner.simple(), id.simple())
}

/// The resized copies made of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// At most 320 px on its longer side.
    Thumb,
    /// At most 1600 px on its longer side.
    Preview,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Thumb, Variant::Preview];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Thumb => "thumb",
            Variant::Preview => "preview",
        }
    }

    /// The longest side, in pixels.
    pub fn max_side(self) -> u32 {
        match self {
            Variant::Thumb => 320,
            Variant::Preview => 1600,
        }
    }
}

/// A user's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_files: u64,
}

/// What a user stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = FileUsage)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
}

/// A share link as stored: the token is signed from these fields and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub id: Uuid,
    pub file_id: Uuid,
    pub owner: Uuid,
    /// Unix milliseconds.
    pub expires_ms: i64,
    pub created_ms: i64,
    pub revoked: bool,
}
