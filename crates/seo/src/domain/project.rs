//! A project's inputs as they come in (create and PATCH) and the one check they go through.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 500;
/// The longest keyword (primary or secondary), in characters.
pub const MAX_KEYWORD_CHARS: usize = 100;
pub const MAX_SECONDARY_KEYWORDS: usize = 20;
pub const MAX_AUDIENCE_CHARS: usize = 300;
pub const MAX_CHANNEL_CHARS: usize = 100;
pub const MAX_CTA_CHARS: usize = 300;
pub const MAX_LINKS: usize = 10;
pub const MAX_LINK_LABEL_CHARS: usize = 100;
pub const MAX_URL_CHARS: usize = 2_000;
/// YouTube's longest upload is 12 hours.
pub const MAX_DURATION_SECS: u32 = 12 * 3600;

/// The voice the metadata is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Neutral,
    Friendly,
    Professional,
    Enthusiastic,
    Educational,
    Humorous,
    Authoritative,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Neutral => "neutral",
            Tone::Friendly => "friendly",
            Tone::Professional => "professional",
            Tone::Enthusiastic => "enthusiastic",
            Tone::Educational => "educational",
            Tone::Humorous => "humorous",
            Tone::Authoritative => "authoritative",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Tone::Neutral,
            Tone::Friendly,
            Tone::Professional,
            Tone::Enthusiastic,
            Tone::Educational,
            Tone::Humorous,
            Tone::Authoritative,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// A link the description ends with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub label: String,
    /// An `http` or `https` URL. It is only written into the description, never fetched.
    pub url: String,
}

/// A new project, as the client sends it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub topic: String,
    pub primary_keyword: String,
    #[serde(default)]
    pub secondary_keywords: Vec<String>,
    /// A language tag (`en`, `de`, `pt-BR`); `en` when left out.
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub tone: Option<Tone>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub channel_name: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub call_to_action: Option<String>,
    #[serde(default)]
    pub duration_secs: Option<u32>,
    #[serde(default)]
    pub category_id: Option<String>,
    /// A transcript: plain text, SRT or WebVTT (recognised by its content).
    #[serde(default)]
    pub transcript: Option<String>,
}

/// Changes to a project; absent fields stay. `Some(None)`-style clearing is spelled with an
/// empty string (text fields) or `0` (duration).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    pub topic: Option<String>,
    pub primary_keyword: Option<String>,
    pub secondary_keywords: Option<Vec<String>>,
    pub language: Option<String>,
    pub tone: Option<Tone>,
    pub audience: Option<String>,
    pub channel_name: Option<String>,
    pub links: Option<Vec<Link>>,
    pub call_to_action: Option<String>,
    pub duration_secs: Option<u32>,
    pub category_id: Option<String>,
    /// A new transcript; an empty string removes it.
    pub transcript: Option<String>,
    pub archived: Option<bool>,
}

/// One problem with a field, for a 422 that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The checked, normalised text fields of a project (everything but the transcript, which
/// [`super::transcript::parse`] reads).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckedFields {
    pub topic: Option<String>,
    pub primary_keyword: Option<String>,
    pub secondary_keywords: Option<Vec<String>>,
    pub language: Option<String>,
    pub audience: Option<Option<String>>,
    pub channel_name: Option<Option<String>>,
    pub links: Option<Vec<Link>>,
    pub call_to_action: Option<Option<String>>,
    pub duration_secs: Option<Option<u32>>,
    pub category_id: Option<Option<String>>,
}

/// The fields as they come in, by create or PATCH; unset fields are not checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub topic: Option<&'a str>,
    pub primary_keyword: Option<&'a str>,
    pub secondary_keywords: Option<&'a [String]>,
    pub language: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub channel_name: Option<&'a str>,
    pub links: Option<&'a [Link]>,
    pub call_to_action: Option<&'a str>,
    pub duration_secs: Option<u32>,
    pub category_id: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub fn of_input(input: &'a ProjectInput) -> Self {
        Fields {
            topic: Some(&input.topic),
            primary_keyword: Some(&input.primary_keyword),
            secondary_keywords: Some(&input.secondary_keywords),
            language: Some(input.language.as_deref().unwrap_or("en")),
            audience: input.audience.as_deref(),
            channel_name: input.channel_name.as_deref(),
            links: Some(&input.links),
            call_to_action: input.call_to_action.as_deref(),
            duration_secs: input.duration_secs,
            category_id: input.category_id.as_deref(),
        }
    }

    pub fn of_changes(changes: &'a ProjectChanges) -> Self {
        Fields {
            topic: changes.topic.as_deref(),
            primary_keyword: changes.primary_keyword.as_deref(),
            secondary_keywords: changes.secondary_keywords.as_deref(),
            language: changes.language.as_deref(),
            audience: changes.audience.as_deref(),
            channel_name: changes.channel_name.as_deref(),
            links: changes.links.as_deref(),
            call_to_action: changes.call_to_action.as_deref(),
            duration_secs: changes.duration_secs,
            category_id: changes.category_id.as_deref(),
        }
    }

    /// Checks every field given; returns them normalised, or every problem. The lists are
    /// counted before their items are looked at, so a huge list is refused at once.
    pub fn check(&self) -> Result<CheckedFields, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut out = CheckedFields::default();
        if let Some(topic) = self.topic {
            out.topic = required("topic", topic, MAX_TOPIC_CHARS, &mut problems);
        }
        if let Some(keyword) = self.primary_keyword {
            out.primary_keyword =
                required("primary_keyword", keyword, MAX_KEYWORD_CHARS, &mut problems);
        }
        if let Some(keywords) = self.secondary_keywords {
            out.secondary_keywords = secondary_keywords(keywords, &mut problems);
        }
        if let Some(language) = self.language {
            match normalize_language(language) {
                Ok(tag) => out.language = Some(tag),
                Err(message) => problems.push(FieldProblem::new("language", message)),
            }
        }
        if let Some(text) = self.audience {
            out.audience = Some(optional(
                "audience",
                text,
                MAX_AUDIENCE_CHARS,
                &mut problems,
            ));
        }
        if let Some(text) = self.channel_name {
            out.channel_name = Some(optional(
                "channel_name",
                text,
                MAX_CHANNEL_CHARS,
                &mut problems,
            ));
        }
        if let Some(text) = self.call_to_action {
            out.call_to_action = Some(optional(
                "call_to_action",
                text,
                MAX_CTA_CHARS,
                &mut problems,
            ));
        }
        if let Some(links) = self.links {
            out.links = check_links(links, &mut problems);
        }
        if let Some(secs) = self.duration_secs {
            if secs > MAX_DURATION_SECS {
                problems.push(FieldProblem::new(
                    "duration_secs",
                    format!("{secs} s is longer than YouTube's 12 hours ({MAX_DURATION_SECS} s)"),
                ));
            } else {
                out.duration_secs = Some((secs > 0).then_some(secs));
            }
        }
        if let Some(id) = self.category_id {
            let id = id.trim();
            if id.is_empty() {
                out.category_id = Some(None);
            } else if id.len() <= 4 && id.bytes().all(|b| b.is_ascii_digit()) {
                out.category_id = Some(Some(id.to_owned()));
            } else {
                problems.push(FieldProblem::new(
                    "category_id",
                    "a YouTube category id is a number such as 27 (Education)",
                ));
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

fn char_count_over(value: &str, max: usize) -> Option<usize> {
    // Counting stops one past the limit, so a huge value costs no more than a short one.
    let n = value.chars().take(max + 1).count();
    (n > max).then_some(n)
}

fn required(
    field: &str,
    value: &str,
    max: usize,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        problems.push(FieldProblem::new(
            field,
            format!("{field} may not be empty"),
        ));
        return None;
    }
    if char_count_over(value, max).is_some() {
        problems.push(FieldProblem::new(
            field,
            format!("{field} is longer than {max} characters"),
        ));
        return None;
    }
    Some(value.to_owned())
}

fn optional(
    field: &str,
    value: &str,
    max: usize,
    problems: &mut Vec<FieldProblem>,
) -> Option<String> {
    let value = value.trim();
    if char_count_over(value, max).is_some() {
        problems.push(FieldProblem::new(
            field,
            format!("{field} is longer than {max} characters"),
        ));
        return None;
    }
    (!value.is_empty()).then(|| value.to_owned())
}

fn secondary_keywords(
    keywords: &[String],
    problems: &mut Vec<FieldProblem>,
) -> Option<Vec<String>> {
    if keywords.len() > MAX_SECONDARY_KEYWORDS {
        problems.push(FieldProblem::new(
            "secondary_keywords",
            format!(
                "at most {MAX_SECONDARY_KEYWORDS} secondary keywords, got {}",
                keywords.len()
            ),
        ));
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(keywords.len());
    for keyword in keywords {
        let keyword = keyword.trim();
        if keyword.is_empty() {
            continue;
        }
        if char_count_over(keyword, MAX_KEYWORD_CHARS).is_some() {
            problems.push(FieldProblem::new(
                "secondary_keywords",
                format!("a keyword is longer than {MAX_KEYWORD_CHARS} characters"),
            ));
            return None;
        }
        if seen.insert(keyword.to_lowercase()) {
            out.push(keyword.to_owned());
        }
    }
    Some(out)
}

fn check_links(links: &[Link], problems: &mut Vec<FieldProblem>) -> Option<Vec<Link>> {
    if links.len() > MAX_LINKS {
        problems.push(FieldProblem::new(
            "links",
            format!("at most {MAX_LINKS} links, got {}", links.len()),
        ));
        return None;
    }
    let mut out = Vec::with_capacity(links.len());
    for (i, link) in links.iter().enumerate() {
        let field = format!("links[{i}]");
        let label = link.label.trim();
        if label.is_empty() || char_count_over(label, MAX_LINK_LABEL_CHARS).is_some() {
            problems.push(FieldProblem::new(
                &field,
                format!("a link's label must be 1 to {MAX_LINK_LABEL_CHARS} characters"),
            ));
            continue;
        }
        if label.contains(['<', '>']) {
            problems.push(FieldProblem::new(
                &field,
                "a link's label may not contain < or > (YouTube refuses them)",
            ));
            continue;
        }
        let url = link.url.trim();
        if url.len() > MAX_URL_CHARS {
            problems.push(FieldProblem::new(
                &field,
                format!("a URL may be at most {MAX_URL_CHARS} characters"),
            ));
            continue;
        }
        match url::Url::parse(url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
            {
                if url.contains(['<', '>']) {
                    problems.push(FieldProblem::new(&field, "a URL may not contain < or >"));
                    continue;
                }
                out.push(Link {
                    label: label.to_owned(),
                    url: url.to_owned(),
                });
            }
            _ => problems.push(FieldProblem::new(
                &field,
                format!("`{}` is not an http or https URL", truncate(url, 80)),
            )),
        }
    }
    Some(out)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// ISO 639-1 language codes: the primary subtag of a language tag must be one of them.
const LANGUAGES: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// A language tag as stored: the primary subtag lower-case and known (ISO 639-1), a region
/// upper-case, a script title-case (`en`, `pt-BR`, `zh-Hant`, `zh-Hant-TW`).
pub fn normalize_language(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 20 {
        return Err("give a language tag such as `en`, `de` or `pt-BR`".into());
    }
    let mut parts = raw.split(['-', '_']);
    let primary = parts.next().unwrap_or_default().to_ascii_lowercase();
    if !LANGUAGES.contains(&primary.as_str()) {
        return Err(format!(
            "`{raw}` is not a known language; give an ISO 639-1 code such as `en`, `de` or `pt-BR`"
        ));
    }
    let mut tag = primary;
    for part in parts {
        let normalized = match part.len() {
            2 if part.bytes().all(|b| b.is_ascii_alphabetic()) => part.to_ascii_uppercase(),
            3 if part.bytes().all(|b| b.is_ascii_digit()) => part.to_owned(),
            4 if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                let lower = part.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
            _ => {
                return Err(format!(
                    "`{raw}` is not a language tag; give one such as `en`, `de` or `pt-BR`"
                ));
            }
        };
        tag.push('-');
        tag.push_str(&normalized);
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProjectInput {
        ProjectInput {
            topic: "Sourdough for beginners".into(),
            primary_keyword: "sourdough bread".into(),
            ..ProjectInput::default()
        }
    }

    #[test]
    fn a_minimal_project_is_valid_and_defaults_to_english() {
        let checked = Fields::of_input(&input()).check().unwrap();
        assert_eq!(checked.language.as_deref(), Some("en"));
        assert_eq!(checked.topic.as_deref(), Some("Sourdough for beginners"));
    }

    #[test]
    fn languages_are_normalised_and_unknown_ones_refused() {
        assert_eq!(normalize_language("pt_br").unwrap(), "pt-BR");
        assert_eq!(normalize_language("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert_eq!(normalize_language("es-419").unwrap(), "es-419");
        assert!(normalize_language("klingon").is_err());
        assert!(normalize_language("xx").is_err());
        assert!(normalize_language("en-toolongsubtag").is_err());
    }

    #[test]
    fn every_field_names_its_problem() {
        let bad = ProjectInput {
            topic: " ".into(),
            primary_keyword: "k".repeat(101),
            secondary_keywords: vec!["a".into(); 21],
            language: Some("zz".into()),
            links: vec![Link {
                label: "Site".into(),
                url: "javascript:alert(1)".into(),
            }],
            duration_secs: Some(MAX_DURATION_SECS + 1),
            category_id: Some("education".into()),
            ..ProjectInput::default()
        };
        let problems = Fields::of_input(&bad).check().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "topic",
                "primary_keyword",
                "secondary_keywords",
                "language",
                "links[0]",
                "duration_secs",
                "category_id"
            ]
        );
    }

    #[test]
    fn a_huge_keyword_list_is_refused_before_it_is_read() {
        let keywords = vec!["x".repeat(10); 1_000_000];
        let fields = Fields {
            secondary_keywords: Some(&keywords),
            ..Fields::default()
        };
        let problems = fields.check().unwrap_err();
        assert!(problems[0].message.contains("at most 20"));
    }
}
