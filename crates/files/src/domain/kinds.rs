//! Types by content: the kind of a file is read from its first bytes (magic numbers), checked
//! against the allowlist, and compared with the name's extension and the declared type.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::names;

/// The families of files the allowlist is written in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Image,
    Pdf,
    /// Office documents: Word, Excel, PowerPoint (OOXML and the older binary formats), and
    /// OpenDocument.
    Document,
    Text,
    Markdown,
    Audio,
    Video,
    /// zip, tar, gzip, 7z…: off by default.
    Archive,
}

impl FileKind {
    pub const ALL: [FileKind; 8] = [
        FileKind::Image,
        FileKind::Pdf,
        FileKind::Document,
        FileKind::Text,
        FileKind::Markdown,
        FileKind::Audio,
        FileKind::Video,
        FileKind::Archive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Pdf => "pdf",
            FileKind::Document => "document",
            FileKind::Text => "text",
            FileKind::Markdown => "markdown",
            FileKind::Audio => "audio",
            FileKind::Video => "video",
            FileKind::Archive => "archive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// The default allowlist: everything but archives.
    pub fn default_allowed() -> Vec<FileKind> {
        Self::ALL
            .into_iter()
            .filter(|kind| *kind != FileKind::Archive)
            .collect()
    }
}

/// What the content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The MIME type, e.g. `image/png`, `text/plain`.
    pub content_type: String,
    pub kind: FileKind,
}

/// Why a file's type is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("the file is empty")]
    Empty,
    /// The content is of no type Confab recognises (binary without a known signature).
    #[error("the file's type could not be recognised from its content")]
    Unknown,
    /// Recognised, but its kind is not in the allowlist.
    #[error("files of type {content_type} are not allowed here")]
    NotAllowed { content_type: String },
    /// The name's extension or the declared type says one thing, the content another.
    #[error("the file says it is {declared} but its content is {detected}")]
    Mismatch { declared: String, detected: String },
}

/// The kinds an instance accepts, and the checks an upload's type goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRules {
    allowed: BTreeSet<FileKind>,
}

impl Default for TypeRules {
    /// Everything but archives (see [`FileKind::default_allowed`]).
    fn default() -> Self {
        Self::new(FileKind::default_allowed())
    }
}

impl TypeRules {
    pub fn new(allowed: impl IntoIterator<Item = FileKind>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    pub fn allows(&self, kind: FileKind) -> bool {
        self.allowed.contains(&kind)
    }

    /// The allowed kinds, in [`FileKind`] order.
    pub fn allowed(&self) -> impl Iterator<Item = FileKind> + '_ {
        self.allowed.iter().copied()
    }

    /// Types an upload by its content ([`detect`]), refuses kinds outside the allowlist, then
    /// refuses a name extension or a declared type that names another kind than the content.
    ///
    /// The mismatch checks catch a file that is not what its owner thinks it is (a PDF renamed
    /// `photo.png`), and a client that lies about what it sends. Within a kind they are
    /// lenient: a `.jpg` holding a PNG is still an image, and any text-like extension fits text.
    /// The stored and served type is always the detected one, never the declared one.
    pub fn check(
        &self,
        head: &[u8],
        name: &str,
        declared: Option<&str>,
    ) -> Result<Detected, KindError> {
        let detected = detect(head, name)?;
        if !self.allows(detected.kind) {
            return Err(KindError::NotAllowed {
                content_type: detected.content_type,
            });
        }
        if let Some(ext) = names::extension(name)
            && let Some(named) = kind_of_extension(&ext)
            && !same_family(named, detected.kind)
        {
            return Err(KindError::Mismatch {
                declared: format!("a .{ext} file"),
                detected: detected.content_type,
            });
        }
        if let Some(declared) = declared.map(essence)
            && !is_generic(&declared)
            && !declared_agrees(&declared, &detected)
        {
            return Err(KindError::Mismatch {
                declared,
                detected: detected.content_type,
            });
        }
        Ok(detected)
    }
}

/// Reads what a file is from its first bytes (`head`, up to 64 KiB, or the whole file).
///
/// Magic numbers decide first. Content without one that reads as UTF-8 text is text (or
/// Markdown, by extension); text is always `text/plain` or `text/markdown`, so HTML, SVG and
/// XML are never given a type a browser would render. Text also wins over a magic number made
/// of printable characters (`BM` for BMP, `MZ` for executables, `BZh` for bzip2), since a real
/// file of those formats has binary bytes right after; PDF and RTF stay themselves, as they
/// can be plain ASCII. A recognised format Confab has no kind for (an executable, a font) is
/// `NotAllowed`; binary content without a known signature is `Unknown`.
pub fn detect(head: &[u8], name: &str) -> Result<Detected, KindError> {
    if head.is_empty() {
        return Err(KindError::Empty);
    }
    let ext = names::extension(name);
    let text = looks_like_text(head);
    let Some(found) = infer::get(head) else {
        return if text {
            Ok(text_kind(ext.as_deref()))
        } else {
            Err(KindError::Unknown)
        };
    };
    if text && !matches!(found.extension(), "pdf" | "rtf") {
        return Ok(text_kind(ext.as_deref()));
    }
    if found.extension() == "zip" {
        return Ok(zip_kind(head, ext.as_deref()));
    }
    if found.extension() == "msi" {
        // An OLE compound file: infer names the Office formats only when it can read the
        // whole directory, which a truncated head may not hold.
        if let Some(content_type) = ext.as_deref().and_then(legacy_office_type) {
            return Ok(detected(FileKind::Document, content_type));
        }
    }
    match known_format(found.extension()) {
        Some((kind, content_type)) => Ok(detected(kind, content_type)),
        None => Err(KindError::NotAllowed {
            content_type: found.mime_type().to_owned(),
        }),
    }
}

fn detected(kind: FileKind, content_type: &str) -> Detected {
    Detected {
        content_type: content_type.to_owned(),
        kind,
    }
}

/// The kind and standard MIME type of a format infer recognises, by infer's extension for it.
fn known_format(infer_ext: &str) -> Option<(FileKind, &'static str)> {
    use FileKind::*;
    let found = match infer_ext {
        "jpg" => (Image, "image/jpeg"),
        "png" => (Image, "image/png"),
        "gif" => (Image, "image/gif"),
        "webp" => (Image, "image/webp"),
        "bmp" => (Image, "image/bmp"),
        "tif" => (Image, "image/tiff"),
        "heif" => (Image, "image/heif"),
        "avif" => (Image, "image/avif"),
        "jxl" => (Image, "image/jxl"),
        "jp2" => (Image, "image/jp2"),
        "ico" => (Image, "image/vnd.microsoft.icon"),
        "pdf" => (Pdf, "application/pdf"),
        "rtf" => (Document, "application/rtf"),
        "doc" | "xls" | "ppt" | "docx" | "xlsx" | "pptx" | "odt" | "ods" | "odp" => {
            (Document, office_type(infer_ext)?)
        }
        "mp3" => (Audio, "audio/mpeg"),
        "m4a" => (Audio, "audio/mp4"),
        "ogg" | "opus" => (Audio, "audio/ogg"),
        "flac" => (Audio, "audio/flac"),
        "wav" => (Audio, "audio/wav"),
        "aac" => (Audio, "audio/aac"),
        "amr" => (Audio, "audio/amr"),
        "aiff" => (Audio, "audio/aiff"),
        "midi" => (Audio, "audio/midi"),
        "mp4" => (Video, "video/mp4"),
        "m4v" => (Video, "video/x-m4v"),
        "webm" => (Video, "video/webm"),
        "mkv" => (Video, "video/x-matroska"),
        "mov" => (Video, "video/quicktime"),
        "avi" => (Video, "video/x-msvideo"),
        "wmv" => (Video, "video/x-ms-wmv"),
        "mpg" => (Video, "video/mpeg"),
        "flv" => (Video, "video/x-flv"),
        "zip" => (Archive, "application/zip"),
        "epub" => (Archive, "application/epub+zip"),
        "tar" => (Archive, "application/x-tar"),
        "gz" => (Archive, "application/gzip"),
        "bz2" => (Archive, "application/x-bzip2"),
        "xz" => (Archive, "application/x-xz"),
        "7z" => (Archive, "application/x-7z-compressed"),
        "rar" => (Archive, "application/vnd.rar"),
        "zst" => (Archive, "application/zstd"),
        "lz4" => (Archive, "application/x-lz4"),
        "lz" => (Archive, "application/x-lzip"),
        "Z" => (Archive, "application/x-compress"),
        _ => return None,
    };
    Some(found)
}

/// The MIME type of an Office or OpenDocument format, by its usual extension.
fn office_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        _ => legacy_office_type(ext)?,
    })
}

fn legacy_office_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        _ => return None,
    })
}

/// A zip that infer could not tell apart from an office document.
///
/// infer reads OOXML and OpenDocument from the order of the first entries, which not every
/// writer follows. When the name says it is a document, the entry names in the head decide;
/// anything else is an archive.
fn zip_kind(head: &[u8], ext: Option<&str>) -> Detected {
    let zip = detected(FileKind::Archive, "application/zip");
    let Some(ext) = ext else { return zip };
    let ooxml_dirs = [("docx", "word/"), ("xlsx", "xl/"), ("pptx", "ppt/")];
    match ext {
        "docx" | "xlsx" | "pptx" if contains(head, b"[Content_Types].xml") => {
            // The name's own directory first; a document misnamed within Office is still one.
            let own = ooxml_dirs.iter().filter(|(e, _)| *e == ext);
            let others = ooxml_dirs.iter().filter(|(e, _)| *e != ext);
            own.chain(others)
                .find(|(_, dir)| contains(head, dir.as_bytes()))
                .and_then(|(e, _)| office_type(e))
                .map_or(zip, |content_type| {
                    detected(FileKind::Document, content_type)
                })
        }
        "odt" | "ods" | "odp"
            if contains(head, b"mimetype")
                && contains(head, b"application/vnd.oasis.opendocument") =>
        {
            office_type(ext).map_or(zip, |content_type| {
                detected(FileKind::Document, content_type)
            })
        }
        _ => zip,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn text_kind(ext: Option<&str>) -> Detected {
    match ext {
        Some("md" | "markdown") => detected(FileKind::Markdown, "text/markdown"),
        _ => detected(FileKind::Text, "text/plain"),
    }
}

/// Whether the head reads as text: UTF-8 (the head may cut the last character in two), no
/// NUL, and at most one control character in a hundred besides tab, newline, carriage return
/// and form feed.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // `error_len() == None`: the input ended inside a character, which a cut head does.
        Err(err) if err.error_len().is_none() => {
            match std::str::from_utf8(&head[..err.valid_up_to()]) {
                Ok(text) => text,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    if text.is_empty() || text.contains('\0') {
        return false;
    }
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        chars += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c') {
            controls += 1;
        }
    }
    controls.saturating_mul(100) <= chars
}

/// The kind a file name's extension promises, for the extensions Confab knows.
fn kind_of_extension(ext: &str) -> Option<FileKind> {
    use FileKind::*;
    let kind = match ext {
        "png" | "jpg" | "jpeg" | "jpe" | "jfif" | "gif" | "webp" | "bmp" | "tif" | "tiff"
        | "heic" | "heif" | "avif" | "jxl" | "jp2" | "ico" => Image,
        "pdf" => Pdf,
        "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "odt" | "ods" | "odp" | "rtf" => {
            Document
        }
        "txt" | "text" | "csv" | "tsv" | "json" | "jsonl" | "ndjson" | "log" | "xml" | "yaml"
        | "yml" | "toml" | "ini" | "cfg" | "conf" | "html" | "htm" | "xhtml" | "svg" | "css"
        | "js" | "mjs" | "ts" | "py" | "rs" | "go" | "java" | "c" | "h" | "cpp" | "hpp" | "sh"
        | "sql" | "tex" | "srt" | "vtt" => Text,
        "md" | "markdown" => Markdown,
        "mp3" | "wav" | "ogg" | "oga" | "opus" | "flac" | "m4a" | "aac" | "amr" | "aif"
        | "aiff" | "mid" | "midi" => Audio,
        "mp4" | "m4v" | "webm" | "mkv" | "mov" | "avi" | "wmv" | "mpg" | "mpeg" | "flv" => Video,
        "zip" | "tar" | "gz" | "tgz" | "bz2" | "xz" | "7z" | "rar" | "zst" | "lz4" | "lz"
        | "epub" => Archive,
        _ => return None,
    };
    Some(kind)
}

/// Whether two kinds are the same for the mismatch checks: text and Markdown are both text,
/// and audio and video share their containers (an `.mp4` may hold only sound, a `.ogg` video).
fn same_family(a: FileKind, b: FileKind) -> bool {
    use FileKind::*;
    a == b
        || matches!(
            (a, b),
            (Text | Markdown, Text | Markdown) | (Audio | Video, Audio | Video)
        )
}

/// A MIME type without its parameters, lowercased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Types that say nothing about the content: clients send them when they do not know.
fn is_generic(essence: &str) -> bool {
    matches!(
        essence,
        "" | "application/octet-stream"
            | "binary/octet-stream"
            | "application/unknown"
            | "application/x-unknown"
            | "application/download"
            | "application/force-download"
    )
}

/// The kind a declared MIME type names, when it names one.
fn declared_kind(essence: &str) -> Option<FileKind> {
    use FileKind::*;
    let (top, sub) = essence.split_once('/')?;
    let kind = match (top, sub) {
        ("image", "svg+xml") => Text,
        ("image", _) => Image,
        ("audio", _) | ("application", "ogg") => Audio,
        ("video", _) => Video,
        ("text", "markdown" | "x-markdown") => Markdown,
        ("text", "rtf") | ("application", "rtf") => Document,
        ("text", _) => Text,
        ("application", "pdf" | "x-pdf" | "acrobat") => Pdf,
        ("application", sub)
            if sub == "msword"
                || sub.starts_with("vnd.ms-")
                || sub.starts_with("vnd.openxmlformats-officedocument.")
                || sub.starts_with("vnd.oasis.opendocument.") =>
        {
            Document
        }
        ("application", sub)
            if [
                "zip", "tar", "rar", "7z", "gzip", "bzip", "xz", "zstd", "lz", "compress",
            ]
            .iter()
            .any(|token| sub.contains(token)) =>
        {
            Archive
        }
        ("application", sub)
            if sub.ends_with("+json")
                || sub.ends_with("+xml")
                || matches!(
                    sub,
                    "json"
                        | "xml"
                        | "javascript"
                        | "x-javascript"
                        | "ecmascript"
                        | "yaml"
                        | "x-yaml"
                        | "toml"
                        | "sql"
                        | "x-sh"
                        | "x-shellscript"
                        | "x-ndjson"
                        | "x-tex"
                        | "x-latex"
                        | "x-subrip"
                ) =>
        {
            Text
        }
        _ => return None,
    };
    Some(kind)
}

/// Whether a declared (non-generic) type agrees with the detected content.
fn declared_agrees(essence: &str, detected: &Detected) -> bool {
    use FileKind::*;
    match (declared_kind(essence), detected.kind) {
        (Some(named), kind) if same_family(named, kind) => true,
        // Browsers take the type from the OS's table of extensions, which maps `.csv` to
        // Excel on Windows and `.ts` (TypeScript) to MPEG transport streams; and code files
        // get whatever vendor type the OS knows. Text content is served as text/plain
        // whatever was declared, so only a type naming another kind outright is refused.
        (_, Text | Markdown) if matches!(essence, "application/vnd.ms-excel" | "video/mp2t") => {
            true
        }
        (None, Text | Markdown) => true,
        // OOXML and OpenDocument files are zips, and some clients say so.
        (Some(Archive), Document) => {
            essence.contains("zip")
                && (detected.content_type.contains("openxmlformats")
                    || detected.content_type.contains("opendocument"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
