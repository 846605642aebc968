//! The chat vocabulary and its rules: conversations, messages in a tree, statuses, limits on
//! what users may store, and which turns of a conversation fit a model's context window.
//! No I/O here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest title, folder name or tag, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_FOLDER_CHARS: usize = 100;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_TAGS: usize = 20;
/// The longest model name a conversation or message may name.
pub const MAX_MODEL_CHARS: usize = 200;
/// The longest system prompt and message, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// The longest error an answer may carry (imports bring their own).
pub const MAX_ERROR_CHARS: usize = 10_000;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    User,
    Assistant,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Author::User),
            "assistant" => Some(Author::Assistant),
            _ => None,
        }
    }
}

/// Where a message stands. A user's message is `complete` when stored; an answer is
/// `streaming` from its first moment and ends in one of the other four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Streaming,
    Complete,
    /// The user pressed stop.
    Stopped,
    /// The process ended while it streamed (found so at the next start).
    Interrupted,
    /// The model failed; `error` says why.
    Error,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Streaming => "streaming",
            MessageStatus::Complete => "complete",
            MessageStatus::Stopped => "stopped",
            MessageStatus::Interrupted => "interrupted",
            MessageStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "streaming" => MessageStatus::Streaming,
            "complete" => MessageStatus::Complete,
            "stopped" => MessageStatus::Stopped,
            "interrupted" => MessageStatus::Interrupted,
            "error" => MessageStatus::Error,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != MessageStatus::Streaming
    }
}

/// Sampling settings of a conversation or preset; unset ones take the model's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Params {
    /// Every problem with the values, for one error listing them all.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            problems.push(format!(
                "params.temperature must be between 0 and 2, got {t}"
            ));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            problems.push(format!(
                "params.top_p must be above 0 and at most 1, got {p}"
            ));
        }
        if self.max_tokens == Some(0) {
            problems.push("params.max_tokens must be at least 1".into());
        }
        problems
    }
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Params,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub pinned: bool,
    pub archived: bool,
    /// The last message of the branch shown; new messages continue from it.
    pub active_leaf_id: Option<Uuid>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Last activity: a message, or a change to the conversation.
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub role: Author,
    pub content: String,
    pub status: MessageStatus,
    /// The model that answered (assistant messages).
    pub model: Option<String>,
    /// Why the answer failed (status `error`).
    pub error: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A named system prompt with parameters.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Preset {
    pub id: Uuid,
    pub name: String,
    pub system_prompt: Option<String>,
    pub params: Params,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A read-only link to a snapshot of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ShareLink {
    pub token: String,
    pub conversation_id: Uuid,
    /// The page anyone with the link can read: `/s/{token}`.
    pub url: String,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    pub revoked: bool,
}

/// What a share link shows: the title and the active branch when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedConversation {
    pub title: String,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub shared_at: i64,
    pub messages: Vec<SharedMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedMessage {
    pub role: Author,
    pub content: String,
}

/// The reactions to a message: each emoji with its count and whether the reader gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    pub mine: bool,
}

/// A reaction must be short and without spaces (an emoji, or a short code like `+1`).
pub fn check_emoji(emoji: &str) -> Result<(), String> {
    let n = emoji.chars().count();
    if n == 0 || n > 16 || emoji.chars().any(char::is_whitespace) {
        return Err("a reaction is 1 to 16 characters without spaces".into());
    }
    Ok(())
}

/// A piece of a search snippet; `highlight` marks the words that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SnippetPart {
    pub text: String,
    pub highlight: bool,
}

/// Where a search matched: a conversation's title or one of its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HitKind {
    Title,
    Message,
}

/// One search result, with what is needed to link to it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchHit {
    pub kind: HitKind,
    pub conversation_id: Uuid,
    pub conversation_title: String,
    /// The message that matched (`kind` = message).
    pub message_id: Option<Uuid>,
    pub role: Option<Author>,
    /// The matching text around the match, the matched words marked.
    pub snippet: Vec<SnippetPart>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Markers the databases put around matched words in snippets (private-use characters, which
/// stored text does not contain in practice); [`snippet_parts`] turns them into parts.
pub const MARK_START: char = '\u{E000}';
pub const MARK_END: char = '\u{E001}';

/// Splits a marked snippet into plain and highlighted parts.
pub fn snippet_parts(marked: &str) -> Vec<SnippetPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut highlight = false;
    for c in marked.chars() {
        if c == MARK_START || c == MARK_END {
            if !current.is_empty() {
                parts.push(SnippetPart {
                    text: std::mem::take(&mut current),
                    highlight,
                });
            }
            highlight = c == MARK_START;
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(SnippetPart {
            text: current,
            highlight,
        });
    }
    parts
}

/// A snippet of `content` around the first word matching the query, matches marked: a word
/// matches when its English stem equals a query word's stem (as the index stems them), or,
/// for the last query word (of three letters or more), when it starts with it. At most
/// `width` words, with `…` where text is cut.
pub fn highlight(content: &str, words: &[String], width: usize) -> Vec<SnippetPart> {
    let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    let stems: Vec<String> = words.iter().map(|w| stemmer.stem(w).into_owned()).collect();
    let prefix = words.last().filter(|w| w.chars().count() >= 3);
    // Words with their byte spans; what lies between them is kept as it is.
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in content.char_indices() {
        match (c.is_alphanumeric() || c == '\'', start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, content.len()));
    }
    let matches = |&(s, e): &(usize, usize)| {
        let word = content[s..e].to_lowercase();
        stems.iter().any(|stem| *stem == stemmer.stem(&word))
            || prefix.is_some_and(|p| word.starts_with(p.as_str()))
    };
    let first = spans.iter().position(matches).unwrap_or(0);
    let from = first.saturating_sub(width / 4);
    let to = (from + width).min(spans.len());
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut push = |text: &str, highlight: bool| match parts.last_mut() {
        Some(last) if last.highlight == highlight => last.text.push_str(text),
        _ if text.is_empty() => {}
        _ => parts.push(SnippetPart {
            text: text.to_owned(),
            highlight,
        }),
    };
    if spans.is_empty() {
        push(content, false);
        return parts;
    }
    if from > 0 {
        push("…", false);
    } else {
        push(&content[..spans[0].0], false);
    }
    for (k, span) in spans[from..to].iter().enumerate() {
        if k > 0 {
            let gap_start = spans[from + k - 1].1;
            push(&content[gap_start..span.0], false);
        }
        push(&content[span.0..span.1], matches(span));
    }
    if to < spans.len() {
        push("…", false);
    } else {
        push(&content[spans[spans.len() - 1].1..], false);
    }
    parts
}

/// The words of a search query, for a query the databases cannot misread: letters, digits and
/// inner apostrophes or hyphens only; at most 16 words.
pub fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '_'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}

/// Checks a text field's length; `None` when fine, else the problem.
pub fn too_long(field: &str, value: &str, max: usize) -> Option<String> {
    let n = value.chars().count();
    (n > max).then(|| format!("{field} is {n} characters; at most {max} are allowed"))
}

/// Normalises tags (trimmed, lower-case, unique, in order) and lists what is wrong with them.
/// The count is checked before any tag is looked at, and duplicates are found with a set, so
/// the work is linear in the input and a huge list is refused at once.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(vec![format!("at most {MAX_TAGS} tags, got {}", tags.len())]);
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    let mut seen = std::collections::HashSet::with_capacity(tags.len());
    let mut problems = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() {
            problems.push("tags may not be empty".to_owned());
            continue;
        }
        if let Some(p) = too_long("a tag", &tag, MAX_TAG_CHARS) {
            problems.push(p);
            continue;
        }
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// An optional text field as stored: trimmed, and empty means unset.
pub fn optional_text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The fields users set on a conversation or a preset, as they come in: by create, PATCH,
/// a preset, or either import format. Unset fields are not checked. [`Fields::check`] is the
/// one validation they all go through, so no way in skips a limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub title: Option<&'a str>,
    /// A preset's name: required, at most [`MAX_TITLE_CHARS`].
    pub name: Option<&'a str>,
    pub model: Option<&'a str>,
    pub system_prompt: Option<&'a str>,
    pub folder: Option<&'a str>,
    pub params: Option<&'a Params>,
    pub tags: Option<&'a [String]>,
}

impl Fields<'_> {
    /// Checks every field given. Returns the tags normalised (when given), or every problem.
    pub fn check(&self) -> Result<Option<Vec<String>>, Vec<String>> {
        let mut problems = self.params.map(Params::problems).unwrap_or_default();
        if self.name.is_some_and(|n| n.trim().is_empty()) {
            problems.push("name may not be empty".into());
        }
        let limits = [
            ("title", self.title, MAX_TITLE_CHARS),
            ("name", self.name, MAX_TITLE_CHARS),
            ("model", self.model, MAX_MODEL_CHARS),
            ("system_prompt", self.system_prompt, MAX_SYSTEM_PROMPT_CHARS),
            ("folder", self.folder, MAX_FOLDER_CHARS),
        ];
        for (field, value, max) in limits {
            if let Some(p) = value.and_then(|v| too_long(field, v, max)) {
                problems.push(p);
            }
        }
        let tags = match self.tags.map(normalize_tags) {
            Some(Ok(tags)) => Some(tags),
            Some(Err(p)) => {
                problems.extend(p);
                None
            }
            None => None,
        };
        if problems.is_empty() {
            Ok(tags)
        } else {
            Err(problems)
        }
    }
}

/// One turn of the history sent to a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Author,
    pub content: String,
}

/// A deliberately cautious token estimate: one token per three bytes of UTF-8, plus four per
/// message for the chat template's markers. Real tokenizers average about four bytes per token
/// on English text and fewer on other scripts, so the estimate errs towards sending less.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3) + 4
}

/// The history a model receives, fitted to its context window: the system prompt always; then
/// the newest turns that fit in `context_tokens` minus `reserve` (room for the answer), oldest
/// dropped first; the newest turn (the user's message) always, even alone over the budget
/// (the model then refuses it with a clear error rather than answering out of context). A
/// dropped turn takes every older turn with it, so the model never sees a gap.
pub fn fit_history(
    system_prompt: Option<&str>,
    turns: &[Turn],
    context_tokens: usize,
    reserve: usize,
) -> (Option<String>, Vec<Turn>) {
    let system = system_prompt
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut budget = context_tokens
        .saturating_sub(reserve)
        .saturating_sub(system.as_deref().map_or(0, estimate_tokens));
    let mut kept = Vec::new();
    for (i, turn) in turns.iter().enumerate().rev() {
        let cost = estimate_tokens(&turn.content);
        if cost > budget && i + 1 < turns.len() {
            break;
        }
        budget = budget.saturating_sub(cost);
        kept.push(turn.clone());
    }
    kept.reverse();
    (system, kept)
}

/// A title from a model's suggestion: first line, without quotes, markdown or a final period,
/// at most 80 characters; `None` if nothing usable is left.
pub fn clean_title(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .trim_start_matches(['#', '*', '-', ' '])
        .trim_start_matches("Title:")
        .trim_start_matches("title:")
        .trim();
    let line = line.trim_matches(['"', '\'', '*', '`', ' ', '“', '”']);
    let line = line.strip_suffix('.').unwrap_or(line).trim();
    if line.is_empty() {
        return None;
    }
    let mut title: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        title = title.trim_end().to_owned();
        title.push('…');
    }
    Some(title)
}

/// The default title: the start of the first message, until a model suggests better.
pub fn provisional_title(first_message: &str) -> String {
    let text = first_message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut title: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Author, n: usize) -> Turn {
        Turn {
            role,
            content: "x".repeat(n),
        }
    }

    #[test]
    fn history_keeps_the_system_prompt_and_the_newest_turns() {
        let turns = vec![
            turn(Author::User, 300),      // 104 tokens
            turn(Author::Assistant, 300), // 104
            turn(Author::User, 30),       // 14
        ];
        let (system, kept) = fit_history(Some("Be brief."), &turns, 1000, 0);
        assert_eq!(system.as_deref(), Some("Be brief."));
        assert_eq!(kept, turns);
        // Room for the newest two only: the oldest goes, and nothing after a gap is kept.
        let (_, kept) = fit_history(Some("Be brief."), &turns, 140, 0);
        assert_eq!(kept, turns[1..].to_vec());
        // The newest turn stays even when it alone is too long.
        let (_, kept) = fit_history(None, &turns, 5, 0);
        assert_eq!(kept, turns[2..].to_vec());
        // The reserve for the answer counts against the budget.
        let (_, kept) = fit_history(None, &turns, 240, 100);
        assert_eq!(kept, turns[1..].to_vec());
    }

    #[test]
    fn snippets_and_queries() {
        let parts = snippet_parts("the \u{E000}quick\u{E001} fox \u{E000}jumps\u{E001}");
        assert_eq!(
            parts,
            vec![
                SnippetPart {
                    text: "the ".into(),
                    highlight: false
                },
                SnippetPart {
                    text: "quick".into(),
                    highlight: true
                },
                SnippetPart {
                    text: " fox ".into(),
                    highlight: false
                },
                SnippetPart {
                    text: "jumps".into(),
                    highlight: true
                },
            ]
        );
        assert_eq!(
            query_words(r#"  "Fox" OR NEAR(x*) don't  -- "#),
            vec!["fox", "or", "near", "x", "don't"]
        );
    }

    #[test]
    fn highlights_follow_stems_and_the_last_prefix() {
        let words = vec!["fox".to_owned(), "jump".to_owned()];
        let parts = highlight("The Foxes were jumping, quickly!", &words, 16);
        let marked: Vec<&str> = parts
            .iter()
            .filter(|p| p.highlight)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(marked, ["Foxes", "jumping"]);
        let text: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(text, "The Foxes were jumping, quickly!");
        let long = format!("{} needle {}", "a ".repeat(50), "b ".repeat(50));
        let parts = highlight(&long, &["needle".to_owned()], 8);
        let text: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert!(
            text.starts_with('…') && text.ends_with('…') && text.contains("needle"),
            "{text}"
        );
    }

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean_title("\"Fox facts.\"\nmore").as_deref(),
            Some("Fox facts")
        );
        assert_eq!(
            clean_title("## Title: **Rust lifetimes**").as_deref(),
            Some("Rust lifetimes")
        );
        assert_eq!(clean_title("  \n \"\" "), None);
        assert_eq!(clean_title(&"a".repeat(100)).unwrap().chars().count(), 81);
        assert_eq!(
            provisional_title("hello   there\nfriend"),
            "hello there friend"
        );
    }

    #[test]
    fn tags_are_normalised_and_checked() {
        assert_eq!(
            normalize_tags(&[" Work ".into(), "work".into(), "Ideas".into()]),
            Ok(vec!["work".to_owned(), "ideas".to_owned()])
        );
        let problems = normalize_tags(&["".into(), "x".repeat(51)]).unwrap_err();
        assert_eq!(problems.len(), 2);
    }

    /// 80,000 tags took seconds (a quadratic de-duplication) before the count was checked:
    /// the count now comes first, before any tag is trimmed or compared.
    #[test]
    fn too_many_tags_are_refused_before_any_is_looked_at() {
        // Tags that would each be a problem if they were looked at: only the count is named.
        let many: Vec<String> = vec![String::new(); 80_000];
        assert_eq!(
            normalize_tags(&many),
            Err(vec!["at most 20 tags, got 80000".to_owned()])
        );
        let twenty_one: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(
            normalize_tags(&twenty_one),
            Err(vec!["at most 20 tags, got 21".to_owned()])
        );
        let twenty: Vec<String> = (0..20).map(|i| format!("T{i}")).collect();
        assert_eq!(normalize_tags(&twenty).unwrap().len(), 20);
    }

    #[test]
    fn fields_are_checked_in_one_place() {
        let long = "x".repeat(20_001);
        let tags = vec!["A".to_owned(), "a".to_owned()];
        let params = Params {
            temperature: Some(5.0),
            ..Params::default()
        };
        let problems = Fields {
            title: Some(&long),
            name: Some(" "),
            model: Some(&long),
            system_prompt: Some(&long),
            folder: Some(&long),
            params: Some(&params),
            tags: None,
        }
        .check()
        .unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("system_prompt is 20001"))
        );
        assert!(problems.iter().any(|p| p.starts_with("folder is 20001")));
        assert!(problems.iter().any(|p| p.starts_with("model is 20001")));
        let fine = Fields {
            title: Some("t"),
            tags: Some(&tags),
            ..Fields::default()
        };
        assert_eq!(fine.check(), Ok(Some(vec!["a".to_owned()])));
        assert_eq!(Fields::default().check(), Ok(None));
    }

    #[test]
    fn params_list_every_problem() {
        let params = Params {
            temperature: Some(3.0),
            top_p: Some(0.0),
            max_tokens: Some(0),
            seed: None,
        };
        assert_eq!(params.problems().len(), 3);
        assert!(Params::default().problems().is_empty());
    }
}
