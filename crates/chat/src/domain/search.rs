//! Search results and their snippets: the words of a query, and the matched words marked.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Author;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
