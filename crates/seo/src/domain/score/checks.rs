//! The scorer's checks, component by component (the formula is in the parent module's docs).

use super::{Check, Component, ScoreContext};
use crate::domain::Chapter;
use crate::domain::rules::{self, MAX_TITLE_CHARS, tags_length};

/// Collects the checks of one component.
pub(super) struct Checks {
    checks: Vec<Check>,
    recommendations: Vec<&'static str>,
}

impl Checks {
    pub(super) fn new() -> Self {
        Checks {
            checks: Vec::with_capacity(6),
            recommendations: Vec::new(),
        }
    }

    pub(super) fn add(
        &mut self,
        name: &'static str,
        passed: bool,
        value: Option<usize>,
        detail: &'static str,
        advice: &'static str,
    ) {
        if !passed {
            self.recommendations.push(advice);
        }
        self.checks.push(Check {
            name,
            passed,
            value: value.map(|v| u64::try_from(v).unwrap_or(u64::MAX)),
            detail,
        });
    }

    pub(super) fn fraction(&self) -> f64 {
        let passed = self.checks.iter().filter(|c| c.passed).count();
        passed as f64 / self.checks.len().max(1) as f64
    }

    pub(super) fn into_component(self, name: &'static str, max_points: f64) -> (Component, f64) {
        let points = max_points * self.fraction();
        let component = Component {
            name,
            points: (points * 10.0).round() / 10.0,
            max_points: (max_points * 10.0).round() / 10.0,
            checks: self.checks,
            recommendations: self.recommendations,
        };
        (component, points)
    }
}

/// Lower-cased once, for case-insensitive matching.
pub(super) struct Keywords {
    pub(super) primary: String,
    /// The primary keyword as a hashtag would spell it: letters, digits and `_` only.
    pub(super) compact: String,
    pub(super) secondary: Vec<String>,
}

impl Keywords {
    pub(super) fn new(ctx: &ScoreContext) -> Self {
        let primary = ctx.primary_keyword.trim().to_lowercase();
        Keywords {
            compact: primary
                .chars()
                .filter(|&ch| rules::is_hashtag_char(ch))
                .collect(),
            primary,
            secondary: ctx
                .secondary_keywords
                .iter()
                .map(|k| k.trim().to_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }
}

/// Words between whitespace, as `split_whitespace` counts them. ASCII text (most
/// descriptions) is counted as word starts (a non-space after a space) over byte pairs, a
/// loop the compiler vectorises; the scorer spent most of its time here before.
pub(super) fn word_count(text: &str) -> usize {
    if !text.is_ascii() {
        return text.split_whitespace().count();
    }
    // ASCII whitespace as `char::is_whitespace` has it: space, and \t \n \x0b \x0c \r (9–13).
    let space = |b: u8| u8::from(b == b' ') | u8::from(b.wrapping_sub(9) < 5);
    let bytes = text.as_bytes();
    let first = usize::from(bytes.first().is_some_and(|&b| space(b) == 0));
    let rest = bytes.get(1..).unwrap_or_default();
    // Byte-wide sums over chunks of 255 pairs (they cannot overflow), so the compiler
    // works on 16 or 32 bytes at once.
    let mut count = first;
    for (a, b) in bytes.chunks(255).zip(rest.chunks(255)) {
        let starts = a.iter().zip(b).fold(0u8, |acc, (&a, &b)| {
            acc.wrapping_add(space(a) & (space(b) ^ 1))
        });
        count += usize::from(starts);
    }
    count
}

/// Where the keyword starts, in characters, if it is there.
pub(super) fn keyword_position(haystack_lower: &str, keyword: &str) -> Option<usize> {
    if keyword.is_empty() {
        return None;
    }
    haystack_lower
        .find(keyword)
        .map(|i| haystack_lower.get(..i).map_or(0, |s| s.chars().count()))
}

pub(super) fn title_checks(title: &str, lower: &str, keywords: &Keywords) -> Checks {
    let mut c = Checks::new();
    let chars = title.chars().count();
    let present = !title.trim().is_empty();
    let valid = present && chars <= MAX_TITLE_CHARS && !title.contains(['<', '>']);
    c.add(
        "within_limits",
        valid,
        Some(chars),
        "title characters: 1–100, no < or >",
        "Keep the title between 1 and 100 characters, without < or >.",
    );
    c.add(
        "length",
        (40..=70).contains(&chars),
        Some(chars),
        "title characters: 40–70 shows in full and says enough",
        "Aim for 40–70 characters: search and suggestions cut longer titles.",
    );
    let no_keyword = keywords.primary.is_empty();
    let position = keyword_position(lower, &keywords.primary);
    c.add(
        "keyword",
        no_keyword || position.is_some(),
        position.map(|p| p + 1),
        if no_keyword {
            "no primary keyword set"
        } else {
            "the character where the primary keyword starts"
        },
        "Put the primary keyword in the title.",
    );
    c.add(
        "keyword_early",
        no_keyword || position.is_some_and(|p| p < 30),
        position.map(|p| p + 1),
        "the keyword starts within the first 30 characters",
        "Move the primary keyword towards the start of the title.",
    );
    let (caps_words, upper, cased) = shouting(title);
    let shouting_ok = present && caps_words <= 1 && (cased < 8 || upper * 10 <= cased * 6);
    c.add(
        "no_shouting",
        shouting_ok,
        Some(caps_words),
        "ALL-CAPS words: at most one, and at most 60 % capitals",
        "Avoid ALL-CAPS: at most one word in capitals.",
    );
    let punctuation_ok = present && !["!!", "??", "?!", "!?"].iter().any(|p| title.contains(p));
    c.add(
        "punctuation",
        punctuation_ok,
        None,
        "no repeated ! or ?",
        "Drop repeated exclamation or question marks.",
    );
    c
}

/// ALL-CAPS words of three or more letters, capitals, and letters that have a case.
pub(super) fn shouting(text: &str) -> (usize, usize, usize) {
    let mut caps_words = 0;
    let (mut upper, mut cased) = (0, 0);
    for word in text.split_whitespace() {
        let (mut word_upper, mut word_cased) = (0, 0);
        for ch in word.chars() {
            if ch.is_uppercase() {
                word_upper += 1;
                word_cased += 1;
            } else if ch.is_lowercase() {
                word_cased += 1;
            }
        }
        if word_cased >= 3 && word_upper == word_cased {
            caps_words += 1;
        }
        upper += word_upper;
        cased += word_cased;
    }
    (caps_words, upper, cased)
}

pub(super) fn description_checks(
    text: &str,
    lower: &str,
    keywords: &Keywords,
    broken: bool,
) -> Checks {
    let mut c = Checks::new();
    c.add(
        "within_limits",
        !broken && !text.trim().is_empty(),
        Some(text.len()),
        "description bytes: 1–5,000, no < or >",
        "Keep the description within 5,000 bytes and without < or >.",
    );
    let no_keyword = keywords.primary.is_empty();
    let hook_end = lower
        .char_indices()
        .nth(150)
        .map_or(lower.len(), |(i, _)| i);
    let in_hook = lower
        .get(..hook_end)
        .is_some_and(|h| h.contains(&keywords.primary));
    c.add(
        "keyword_in_hook",
        no_keyword || in_hook,
        None,
        "the primary keyword in the first 150 characters, which search shows",
        "Open the description with a sentence that has the primary keyword.",
    );
    let words = word_count(text);
    c.add(
        "length",
        words >= 200,
        Some(words),
        "words: 200 or more give search and viewers context",
        "Write at least 200 words: what the video covers, for whom, and what they get.",
    );
    let uses = if no_keyword {
        0
    } else {
        lower.matches(&keywords.primary).count()
    };
    let most = 2 + words / 50;
    c.add(
        "not_stuffed",
        words > 0 && uses <= most,
        Some(uses),
        "times the keyword appears: at most 2 + one per 50 words",
        "Use the keyword naturally: repeating it reads as spam.",
    );
    let has_link = lower.contains("http://") || lower.contains("https://");
    c.add(
        "links",
        has_link,
        None,
        "a link (site, related video, playlist)",
        "Add links (your site, related videos, a playlist) and a call to action.",
    );
    let secondary = keywords
        .secondary
        .iter()
        .filter(|k| lower.contains(k.as_str()))
        .count();
    c.add(
        "secondary_keywords",
        keywords.secondary.is_empty() || secondary > 0,
        Some(secondary),
        "secondary keywords used: at least one (when any are set)",
        "Work a secondary keyword or two into the body.",
    );
    c
}

pub(super) fn alignment_checks(
    title: &str,
    description: &str,
    tags: &[&str],
    keywords: &Keywords,
) -> Checks {
    let mut c = Checks::new();
    let none = keywords.primary.is_empty();
    let k = keywords.primary.as_str();
    let detail = |place: &'static str| {
        if none {
            "no primary keyword set"
        } else {
            place
        }
    };
    c.add(
        "in_title",
        none || title.contains(k),
        None,
        detail("the primary keyword in the title"),
        "Use the primary keyword in the title.",
    );
    c.add(
        "in_description",
        none || description.contains(k),
        None,
        detail("the primary keyword in the description"),
        "Use the primary keyword in the description.",
    );
    c.add(
        "in_first_tag",
        none || tags.first().is_some_and(|t| t.contains(k)),
        None,
        detail("the primary keyword in the first tag"),
        "Make the primary keyword the first tag.",
    );
    let used = keywords
        .secondary
        .iter()
        .filter(|s| {
            title.contains(s.as_str())
                || description.contains(s.as_str())
                || tags.iter().any(|t| t.contains(s.as_str()))
        })
        .count();
    c.add(
        "secondary_covered",
        used * 2 >= keywords.secondary.len(),
        Some(used),
        "secondary keywords used in title, description or tags: at least half",
        "Use at least half of the secondary keywords in the description or tags.",
    );
    c
}

pub(super) fn tag_checks(tags: &[String], lower: &[&str], keywords: &Keywords) -> Checks {
    let mut c = Checks::new();
    let length = tags_length(tags);
    c.add(
        "within_limits",
        !tags.is_empty() && length <= rules::MAX_TAGS_LENGTH,
        Some(length),
        "tag characters as YouTube counts them: at most 500",
        "Remove tags to stay within 500 characters.",
    );
    c.add(
        "budget_used",
        (200..=rules::MAX_TAGS_LENGTH).contains(&length),
        Some(length),
        "tag characters used: 200–500 covers the variations",
        "Add specific tags (variations, long-tail phrases) to use 200–500 characters.",
    );
    c.add(
        "count",
        (5..=25).contains(&tags.len()),
        Some(tags.len()),
        "tags: 5–25 gives variations without noise",
        "Use 5–25 relevant tags.",
    );
    let first =
        keywords.primary.is_empty() || lower.first().is_some_and(|t| *t == keywords.primary);
    c.add(
        "keyword_first",
        first,
        None,
        "the first tag is the primary keyword",
        "Put the primary keyword first among the tags.",
    );
    let long_tail = lower
        .iter()
        .filter(|t| t.split_whitespace().nth(2).is_some())
        .count();
    c.add(
        "long_tail",
        long_tail >= 2,
        Some(long_tail),
        "tags of three or more words: at least two",
        "Add long-tail tags: phrases of three or more words people search for.",
    );
    let mut sorted: Vec<&str> = lower.to_vec();
    sorted.sort_unstable();
    let before = sorted.len();
    sorted.dedup();
    let duplicates = before - sorted.len();
    c.add(
        "no_duplicates",
        !tags.is_empty() && duplicates == 0,
        Some(duplicates),
        "duplicate tags (ignoring case): none",
        "Remove duplicate tags.",
    );
    c
}

pub(super) fn hashtag_checks(hashtags: &[String], keywords: &Keywords) -> Checks {
    let mut c = Checks::new();
    let n = hashtags.len();
    c.add(
        "count",
        (3..=5).contains(&n),
        Some(n),
        "hashtags: 3–5 is what YouTube recommends",
        "Use 3–5 hashtags, the most relevant first.",
    );
    c.add(
        "not_too_many",
        n > 0 && n <= rules::MANY_HASHTAGS,
        Some(n),
        "hashtags: more than 15 dilute them, more than 60 are all ignored",
        "Cut the hashtags down to the 3–5 most relevant.",
    );
    let has_keyword = keywords.compact.is_empty()
        || hashtags.iter().any(|h| {
            let h = h.trim_start_matches('#');
            h.to_lowercase() == keywords.compact
        });
    c.add(
        "keyword_hashtag",
        has_keyword,
        None,
        "one hashtag is the primary keyword, words run together",
        "Make the primary keyword (words run together) one of the hashtags.",
    );
    c
}

pub(super) fn chapter_checks(
    chapters: &[Chapter],
    duration_secs: Option<u32>,
    broken: bool,
) -> Checks {
    let mut c = Checks::new();
    if duration_secs.is_some_and(|d| d < 120) {
        for name in ["present", "valid", "titled"] {
            c.add(
                name,
                true,
                None,
                "a video under 2 minutes needs no chapters",
                "",
            );
        }
        return c;
    }
    c.add(
        "present",
        chapters.len() >= rules::MIN_CHAPTERS,
        Some(chapters.len()),
        "chapters listed: at least 3",
        "Add chapters (0:00 first, at least three, each 10 s or longer): they show in search.",
    );
    c.add(
        "valid",
        !chapters.is_empty() && !broken,
        None,
        "YouTube's chapter rules: first at 0:00, ascending, each at least 10 s, inside the video",
        "Fix the chapters: first at 0:00, at least three, ascending, each at least 10 s.",
    );
    let untitled = chapters
        .iter()
        .filter(|ch| ch.title.chars().nth(1).is_none())
        .count();
    c.add(
        "titled",
        !chapters.is_empty() && untitled == 0,
        Some(untitled),
        "chapters without a real title: none",
        "Give every chapter a descriptive title, with keywords where natural.",
    );
    c
}

pub(super) fn thumbnail_checks(texts: &[String], title_lower: &str) -> Checks {
    let mut c = Checks::new();
    let n = texts.len();
    c.add(
        "options",
        (2..=3).contains(&n),
        Some(n),
        "thumbnail text options: 2–3 let you test",
        "Prepare 2–3 thumbnail text options.",
    );
    let words_ok = n > 0
        && texts
            .iter()
            .all(|t| (2..=5).contains(&t.split_whitespace().count()));
    c.add(
        "words",
        words_ok,
        None,
        "each option has 2–5 words",
        "Keep thumbnail text to 2–5 words: it must read at a glance on a phone.",
    );
    let short = n > 0 && texts.iter().all(|t| t.chars().nth(30).is_none());
    c.add(
        "short",
        short,
        None,
        "each option has at most 30 characters",
        "Shorten the thumbnail text to 30 characters or fewer.",
    );
    let repeats = texts
        .iter()
        .filter(|t| {
            let t = t.trim().to_lowercase();
            !t.is_empty() && title_lower.contains(&t)
        })
        .count();
    c.add(
        "complements_title",
        n > 0 && repeats == 0,
        Some(repeats),
        "options that repeat the title verbatim: none",
        "Let the thumbnail text add to the title rather than repeat it.",
    );
    c
}
