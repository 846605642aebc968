//! What a model is sent: the turns of a conversation that fit its context window; and the
//! titles a conversation gets (provisional from the first message, then the model's).

use super::{Attachment, Author};

/// One turn of the history sent to a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Author,
    pub content: String,
    /// Files attached to the turn (user turns), read when the turn is sent.
    pub attachments: Vec<Attachment>,
}

impl Turn {
    pub fn new(role: Author, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            attachments: Vec::new(),
        }
    }
}

/// What an image is counted as: providers charge from 85 to about 1,600 tokens by size, and
/// a 1600 px preview is near the top.
pub const IMAGE_TOKENS: usize = 1_600;

/// What a file a model cannot read is counted as (a line naming it).
const UNREADABLE_TOKENS: usize = 30;

/// The most bytes of text one attached file gives a model in a context window of
/// `context_tokens`, when `files` files of one message share it: together at most half the
/// window (at the estimate's three bytes a token), each between 1 KiB and 256 KiB.
pub fn file_text_bytes(context_tokens: usize, files: usize) -> usize {
    (context_tokens / 2 * 3 / files.max(1)).clamp(1024, 256 * 1024)
}

/// Whether a model is given an attachment's text (a text, markdown or PDF file).
pub fn is_text_kind(kind: &str) -> bool {
    matches!(kind, "text" | "markdown" | "pdf")
}

/// An attached file's text as a model is given it: marked where it starts and ends, and
/// where it was cut.
pub fn file_block(name: &str, text: &str, truncated: bool) -> String {
    let end = if truncated {
        format!("[{name} goes on; only its start fits here]")
    } else {
        format!("[End of {name}]")
    };
    format!("[Attached file: {name}]\n{}\n{end}\n\n", text.trim_end())
}

/// What a message is titled from until a model names it: its text, or with none (files
/// only) its files' names.
pub fn title_source(content: &str, attachments: &[Attachment]) -> String {
    if !content.trim().is_empty() || attachments.is_empty() {
        return content.to_owned();
    }
    attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A turn's estimated tokens, its attachments counted as they will be sent.
pub fn turn_tokens(turn: &Turn, context_tokens: usize) -> usize {
    let per_file = file_text_bytes(context_tokens, turn.attachments.len());
    turn.attachments
        .iter()
        .map(|a| match a.kind.as_str() {
            "image" => IMAGE_TOKENS,
            kind if is_text_kind(kind) => {
                // A PDF's text is smaller than the file; the cap bounds both.
                let bytes = usize::try_from(a.size).unwrap_or(usize::MAX).min(per_file);
                bytes.div_ceil(3) + UNREADABLE_TOKENS
            }
            _ => UNREADABLE_TOKENS,
        })
        .sum::<usize>()
        + estimate_tokens(&turn.content)
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
        let cost = turn_tokens(turn, context_tokens);
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
        Turn::new(role, "x".repeat(n))
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

    fn attached(kind: &str, size: u64) -> Attachment {
        Attachment {
            file_id: uuid::Uuid::nil(),
            name: "f".into(),
            content_type: "x/y".into(),
            kind: kind.into(),
            size,
        }
    }

    #[test]
    fn attachments_count_against_the_window_as_they_will_be_sent() {
        // Half of 4,096 tokens at three bytes a token, shared by two files.
        assert_eq!(file_text_bytes(4096, 2), 3072);
        assert_eq!(file_text_bytes(100, 8), 1024);
        assert_eq!(file_text_bytes(10_000_000, 1), 256 * 1024);
        let mut turn = turn(Author::User, 30);
        turn.attachments = vec![
            attached("image", 5_000_000),
            attached("markdown", 100_000), // cut to 2,048 bytes: three files share
            attached("audio", 9_000_000),
        ];
        assert_eq!(
            turn_tokens(&turn, 4096),
            IMAGE_TOKENS + (683 + 30) + 30 + 14
        );
        // An image-heavy old turn is dropped before the newest one.
        let turns = vec![turn.clone(), self::turn(Author::Assistant, 30), turn];
        let (_, kept) = fit_history(None, &turns, 4096, 0);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn files_are_marked_and_name_messages_without_text() {
        assert_eq!(
            file_block("a.md", "text\n\n", true),
            "[Attached file: a.md]\ntext\n[a.md goes on; only its start fits here]\n\n"
        );
        let files = [attached("pdf", 1), attached("image", 1)];
        assert_eq!(title_source("  ", &files), "f, f");
        assert_eq!(title_source("Hi", &files), "Hi");
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
}
