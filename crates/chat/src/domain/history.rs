//! What a model is sent: the turns of a conversation that fit its context window; and the
//! titles a conversation gets (provisional from the first message, then the model's).

use super::Author;

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
