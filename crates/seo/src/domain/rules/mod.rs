//! YouTube's real rules for a video's metadata (as of late 2026), and the checks a package
//! goes through before it is stored: title, description, tags, hashtags and chapters as
//! YouTube counts them, plus the studio's own rules for title candidates and thumbnail text.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Chapter, Metadata, Package};

pub use super::chapters::chapters_in;

/// The longest title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 100;
/// The longest description, in bytes of UTF-8.
pub const MAX_DESCRIPTION_BYTES: usize = 5_000;
/// The most tag characters, counted as [`tags_length`] does.
pub const MAX_TAGS_LENGTH: usize = 500;
/// More hashtags than this and YouTube ignores them all.
pub const MAX_HASHTAGS: usize = 60;
/// More than this is allowed but dilutes them; 3–5 is what YouTube recommends.
pub const MANY_HASHTAGS: usize = 15;
/// The fewest chapters YouTube shows.
pub const MIN_CHAPTERS: usize = 3;
/// The shortest chapter, in seconds.
pub const MIN_CHAPTER_SECS: u32 = 10;
/// How many title candidates a generated package has: one a strategy.
pub const TITLE_CANDIDATES: usize = 5;

/// Which field a violation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Title,
    /// The title candidates of a package.
    Titles,
    Description,
    Tags,
    Hashtags,
    Chapters,
    ThumbnailTexts,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Titles => "titles",
            Field::Description => "description",
            Field::Tags => "tags",
            Field::Hashtags => "hashtags",
            Field::Chapters => "chapters",
            Field::ThumbnailTexts => "thumbnail_texts",
        }
    }
}

/// Whether YouTube refuses it (or silently drops it), or it is only advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule: the field, a stable snake_case code, and a message that says what to
/// fix, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    pub field: Field,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Violation {
    fn error(field: Field, code: &'static str, message: String) -> Self {
        Self {
            field,
            code,
            severity: Severity::Error,
            message,
        }
    }

    fn warning(field: Field, code: &'static str, message: String) -> Self {
        Self {
            field,
            code,
            severity: Severity::Warning,
            message,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Whether any violation is an error.
pub fn has_errors(violations: &[Violation]) -> bool {
    violations.iter().any(Violation::is_error)
}

/// The tags' length as YouTube counts it: every tag's characters, a comma between tags, and
/// two more for a tag with a space (YouTube quotes it). `Foo-Baz` is 7, `Foo Baz` 9, `a`
/// and `b` together 3.
pub fn tags_length(tags: &[String]) -> usize {
    let chars: usize = tags
        .iter()
        .map(|tag| tag.chars().count() + if tag.contains(' ') { 2 } else { 0 })
        .sum();
    chars + tags.len().saturating_sub(1)
}

/// The hashtags of a description as YouTube finds them: `#` at the start of a word, then
/// letters, digits and underscores (Unicode), at least one of them not a digit. Words that
/// are URLs are skipped (`https://x.com/#top` is no hashtag). Each hashtag once, in the
/// spelling it first has, with its `#`.
pub fn hashtags_in(description: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The word (between whitespace) the last `#` was in, and whether it is a URL.
    let mut word: (usize, bool) = (0, false);
    for i in memchr::memchr_iter(b'#', description.as_bytes()) {
        let (head, after) = (
            description.get(..i).unwrap_or_default(),
            description.get(i + 1..).unwrap_or_default(),
        );
        if head
            .chars()
            .next_back()
            .is_some_and(|p| is_hashtag_char(p) || p == '&' || p == '#')
        {
            continue;
        }
        let len = after
            .find(|c: char| !is_hashtag_char(c))
            .unwrap_or(after.len());
        let tag = after.get(..len).unwrap_or_default();
        if !tag.chars().any(|c| !c.is_ascii_digit()) {
            continue;
        }
        if i >= word.0 {
            let start = head.rfind(char::is_whitespace).map_or(0, |j| {
                j + head
                    .get(j..)
                    .and_then(|w| w.chars().next())
                    .map_or(1, char::len_utf8)
            });
            let end = i + 1 + after.find(char::is_whitespace).unwrap_or(after.len());
            let text = description.get(start..end).unwrap_or_default();
            word = (end, text.contains("://") || text.starts_with("www."));
        }
        if !word.1 && seen.insert(tag.to_lowercase()) {
            out.push(format!("#{tag}"));
        }
    }
    out
}

/// A character a hashtag may hold after its `#`.
pub fn is_hashtag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Checks metadata against YouTube's rules. `duration_secs`, when known, lets the chapters
/// be checked against the video's end.
pub fn validate(meta: &Metadata, duration_secs: Option<u32>) -> Vec<Violation> {
    let facts = DescriptionFacts::of(&meta.description);
    validate_fields(
        &meta.title,
        &meta.description,
        &meta.tags,
        &facts,
        duration_secs,
    )
}

/// What the rules and the scorer both read from a description, found once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescriptionFacts {
    pub hashtags: Vec<String>,
    pub chapters: Vec<Chapter>,
}

impl DescriptionFacts {
    pub fn of(description: &str) -> Self {
        DescriptionFacts {
            hashtags: hashtags_in(description),
            chapters: chapters_in(description),
        }
    }
}

/// [`validate`] on the fields themselves, with the description's facts already found.
pub fn validate_fields(
    title: &str,
    description: &str,
    tags: &[String],
    facts: &DescriptionFacts,
    duration_secs: Option<u32>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    check_title(title, Field::Title, "title", &mut out);
    check_description(description, &mut out);
    check_tags(tags, &mut out);
    check_hashtags(facts.hashtags.len(), &mut out);
    check_chapters(&facts.chapters, duration_secs, &mut out);
    out
}

fn check_title(title: &str, field: Field, prefix: &'static str, out: &mut Vec<Violation>) {
    let (empty, too_long, brackets) = match prefix {
        "title" => ("title_empty", "title_too_long", "title_angle_brackets"),
        _ => (
            "title_candidate_empty",
            "title_candidate_too_long",
            "title_candidate_angle_brackets",
        ),
    };
    if title.trim().is_empty() {
        out.push(Violation::error(
            field,
            empty,
            format!("the {prefix} is empty: write 1 to {MAX_TITLE_CHARS} characters"),
        ));
        return;
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        out.push(Violation::error(
            field,
            too_long,
            format!("the {prefix} has {chars} characters: shorten it to at most {MAX_TITLE_CHARS}"),
        ));
    }
    if title.contains(['<', '>']) {
        out.push(Violation::error(
            field,
            brackets,
            format!("the {prefix} contains < or >, which YouTube refuses: remove them"),
        ));
    }
}

fn check_description(description: &str, out: &mut Vec<Violation>) {
    let bytes = description.len();
    if bytes > MAX_DESCRIPTION_BYTES {
        out.push(Violation::error(
            Field::Description,
            "description_too_long",
            format!(
                "the description has {bytes} bytes (UTF-8): shorten it to at most \
                 {MAX_DESCRIPTION_BYTES}, {} fewer",
                bytes - MAX_DESCRIPTION_BYTES
            ),
        ));
    }
    if memchr::memchr2(b'<', b'>', description.as_bytes()).is_some() {
        out.push(Violation::error(
            Field::Description,
            "description_angle_brackets",
            "the description contains < or >, which YouTube refuses: remove them".into(),
        ));
    }
}

fn check_tags(tags: &[String], out: &mut Vec<Violation>) {
    let length = tags_length(tags);
    if length > MAX_TAGS_LENGTH {
        out.push(Violation::error(
            Field::Tags,
            "tags_too_long",
            format!(
                "the tags count {length} characters (commas included, 2 more for each tag \
                 with a space): remove tags to get to at most {MAX_TAGS_LENGTH}"
            ),
        ));
    }
    if tags.iter().any(|t| t.contains(['<', '>', ','])) {
        out.push(Violation::error(
            Field::Tags,
            "tags_invalid_characters",
            "a tag contains <, > or a comma, which YouTube refuses: remove them".into(),
        ));
    }
}

fn check_hashtags(count: usize, out: &mut Vec<Violation>) {
    if count > MAX_HASHTAGS {
        out.push(Violation::error(
            Field::Hashtags,
            "hashtags_ignored",
            format!(
                "the description has {count} hashtags: with more than {MAX_HASHTAGS} YouTube \
                 ignores them all; keep 3 to 5"
            ),
        ));
    } else if count > MANY_HASHTAGS {
        out.push(Violation::warning(
            Field::Hashtags,
            "hashtags_many",
            format!(
                "the description has {count} hashtags: more than {MANY_HASHTAGS} dilutes them; \
                 keep the 3 to 5 most relevant"
            ),
        ));
    }
}

/// Chapter rules, applied when the description has any timestamp line.
fn check_chapters(chapters: &[Chapter], duration_secs: Option<u32>, out: &mut Vec<Violation>) {
    let Some(first) = chapters.first() else {
        return;
    };
    if first.start_secs != 0 {
        out.push(Violation::error(
            Field::Chapters,
            "chapters_first_not_zero",
            format!(
                "the first chapter starts at {}: chapters must start at 0:00",
                super::assemble::format_timestamp(first.start_secs, first.start_secs >= 3600)
            ),
        ));
    }
    if chapters.len() < MIN_CHAPTERS {
        out.push(Violation::error(
            Field::Chapters,
            "chapters_too_few",
            format!(
                "the description lists {} chapter timestamps: YouTube needs at least \
                 {MIN_CHAPTERS} (or none)",
                chapters.len()
            ),
        ));
    }
    for (i, pair) in chapters.windows(2).enumerate() {
        let [a, b] = pair else { continue };
        if b.start_secs <= a.start_secs {
            out.push(Violation::error(
                Field::Chapters,
                "chapters_not_ascending",
                format!(
                    "chapter {} ({}) does not start after chapter {} ({}): list chapters in \
                     ascending order",
                    i + 2,
                    b.start_secs,
                    i + 1,
                    a.start_secs
                ),
            ));
        } else if b.start_secs - a.start_secs < MIN_CHAPTER_SECS {
            out.push(too_short(i + 1, a, b.start_secs - a.start_secs));
        }
    }
    if let (Some(duration), Some(last)) = (duration_secs, chapters.last()) {
        if let Some(past) = chapters.iter().position(|c| c.start_secs >= duration) {
            out.push(Violation::error(
                Field::Chapters,
                "chapter_past_end",
                format!(
                    "chapter {} starts at {} s, not before the video's end ({duration} s): \
                     remove it",
                    past + 1,
                    chapters.get(past).map_or(0, |c| c.start_secs)
                ),
            ));
        } else if duration - last.start_secs < MIN_CHAPTER_SECS {
            out.push(too_short(chapters.len(), last, duration - last.start_secs));
        }
    }
    for (i, chapter) in chapters.iter().enumerate() {
        if chapter.title.is_empty() {
            out.push(Violation::warning(
                Field::Chapters,
                "chapter_untitled",
                format!("chapter {} has no title: name it", i + 1),
            ));
        }
    }
}

fn too_short(number: usize, chapter: &Chapter, secs: u32) -> Violation {
    Violation::error(
        Field::Chapters,
        "chapter_too_short",
        format!(
            "chapter {number} (\"{}\") lasts {secs} s: each chapter must last at least \
             {MIN_CHAPTER_SECS} s",
            chapter.title
        ),
    )
}

/// [`validate`] for a whole package, plus the studio's rules: five title candidates when
/// there are any (imported and hand-made packages have none), each a valid title; 2–3
/// thumbnail text options of 2–5 words. Thumbnail text problems are warnings, so a hand
/// edit without them can still be stored.
pub fn validate_package(package: &Package, duration_secs: Option<u32>) -> Vec<Violation> {
    let facts = DescriptionFacts::of(&package.description);
    validate_package_with(package, &facts, duration_secs)
}

/// [`validate_package`] with the description's facts already found.
pub fn validate_package_with(
    package: &Package,
    facts: &DescriptionFacts,
    duration_secs: Option<u32>,
) -> Vec<Violation> {
    let mut out = validate_fields(
        &package.title,
        &package.description,
        &package.tags,
        facts,
        duration_secs,
    );
    if !package.titles.is_empty() {
        if package.titles.len() != TITLE_CANDIDATES {
            out.push(Violation::warning(
                Field::Titles,
                "title_candidates_count",
                format!(
                    "there are {} title candidates: give {TITLE_CANDIDATES}, one for each strategy",
                    package.titles.len()
                ),
            ));
        }
        for candidate in &package.titles {
            check_title(&candidate.text, Field::Titles, "title candidate", &mut out);
        }
    }
    let options = package.thumbnail_texts.len();
    if !(2..=3).contains(&options) {
        out.push(Violation::warning(
            Field::ThumbnailTexts,
            "thumbnail_texts_count",
            format!("there are {options} thumbnail text options: give 2 or 3"),
        ));
    }
    for (i, text) in package.thumbnail_texts.iter().enumerate() {
        let words = text.split_whitespace().count();
        if !(2..=5).contains(&words) {
            out.push(Violation::warning(
                Field::ThumbnailTexts,
                "thumbnail_text_words",
                format!("thumbnail text {} has {words} words: use 2 to 5", i + 1),
            ));
        }
        if text.contains(['<', '>']) {
            out.push(Violation::error(
                Field::ThumbnailTexts,
                "thumbnail_text_angle_brackets",
                format!("thumbnail text {} contains < or >: remove them", i + 1),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
