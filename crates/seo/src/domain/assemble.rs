//! The description, put together from its parts in the layout YouTube rewards, and fitted
//! to YouTube's 5,000 bytes without splitting a character or a grapheme.

use unicode_segmentation::UnicodeSegmentation;

use super::rules::MAX_DESCRIPTION_BYTES;
use super::{Chapter, Link};

/// What a description is made of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescriptionParts {
    /// One or two sentences: the first ~150 characters are what search results show.
    pub hook: String,
    /// The primary keyword: when given and missing from the hook's first 150 characters, the
    /// hook is prefixed with it.
    pub keyword: Option<String>,
    pub body: String,
    /// Sorted and valid (see [`super::repair`]); written as `m:ss Title` lines.
    pub chapters: Vec<Chapter>,
    /// The video's length: past an hour, every chapter line is written `h:mm:ss`.
    pub duration_secs: Option<u32>,
    pub call_to_action: Option<String>,
    pub links: Vec<Link>,
    /// With or without their `#`, most relevant first (3–5 recommended).
    pub hashtags: Vec<String>,
}

/// How many characters of the description search results show.
pub const SEARCH_SNIPPET_CHARS: usize = 150;

/// `m:ss`, or `h:mm:ss` when `long` (minutes then run past 59 when not long).
pub fn format_timestamp(secs: u32, long: bool) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if long {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{}:{s:02}", secs / 60)
    }
}

/// The description: hook, blank line, body, blank line, chapters, call to action and links
/// (`label: url`), and the hashtag line last. Empty parts leave no blank lines behind.
///
/// It always fits [`MAX_DESCRIPTION_BYTES`]: the body is cut first (at a sentence end, else
/// a word, else a grapheme), then the hook, then the call to action; links, chapters
/// (from the last, keeping at least three or none) and hashtags go only after that, and a
/// final cut at a grapheme boundary is the last resort.
pub fn description(parts: &DescriptionParts) -> String {
    let hook = hook_with_keyword(parts.hook.trim(), parts.keyword.as_deref());
    let mut body = parts.body.trim().to_owned();
    let long = parts.duration_secs.is_some_and(|d| d >= 3600)
        || parts.chapters.iter().any(|c| c.start_secs >= 3600);
    let mut chapters: Vec<String> = parts
        .chapters
        .iter()
        .map(|c| format!("{} {}", format_timestamp(c.start_secs, long), c.title))
        .collect();
    let mut cta = parts
        .call_to_action
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let mut links: Vec<String> = parts
        .links
        .iter()
        .map(|l| format!("{}: {}", l.label.trim(), l.url.trim()))
        .collect();
    let mut hashtags: Vec<String> = parts
        .hashtags
        .iter()
        .map(|h| h.trim().trim_start_matches('#'))
        .filter(|h| !h.is_empty())
        .map(|h| format!("#{h}"))
        .collect();
    let mut hook = hook;

    let over = |hook: &str,
                body: &str,
                chapters: &[String],
                cta: &str,
                links: &[String],
                hashtags: &[String]| {
        layout_len(hook, body, chapters, cta, links, hashtags).saturating_sub(MAX_DESCRIPTION_BYTES)
    };
    let excess = over(&hook, &body, &chapters, &cta, &links, &hashtags);
    if excess > 0 {
        body = shorten(&body, body.len().saturating_sub(excess)).to_owned();
    }
    let excess = over(&hook, &body, &chapters, &cta, &links, &hashtags);
    if excess > 0 {
        hook = shorten(&hook, hook.len().saturating_sub(excess)).to_owned();
    }
    let excess = over(&hook, &body, &chapters, &cta, &links, &hashtags);
    if excess > 0 {
        cta = shorten(&cta, cta.len().saturating_sub(excess)).to_owned();
    }
    // Each list keeps its longest prefix that fits, found by bisection (a shorter prefix
    // is never longer), so thousands of chapters cost a few passes, not one a line.
    let keep = longest_fit(links.len(), |k| {
        over(
            &hook,
            &body,
            &chapters,
            &cta,
            links.get(..k).unwrap_or_default(),
            &hashtags,
        ) == 0
    });
    links.truncate(keep);
    let mut keep = longest_fit(chapters.len(), |k| {
        over(
            &hook,
            &body,
            chapters.get(..k).unwrap_or_default(),
            &cta,
            &links,
            &hashtags,
        ) == 0
    });
    if keep < super::rules::MIN_CHAPTERS {
        keep = 0;
    }
    chapters.truncate(keep);
    let keep = longest_fit(hashtags.len(), |k| {
        over(
            &hook,
            &body,
            &chapters,
            &cta,
            &links,
            hashtags.get(..k).unwrap_or_default(),
        ) == 0
    });
    hashtags.truncate(keep);
    let mut out = String::with_capacity(MAX_DESCRIPTION_BYTES);
    write_layout(&mut out, &hook, &body, &chapters, &cta, &links, &hashtags);
    if out.len() > MAX_DESCRIPTION_BYTES {
        let keep = grapheme_floor(&out, MAX_DESCRIPTION_BYTES);
        out.truncate(keep);
    }
    out
}

/// The largest `k <= n` for which `fits(k)` holds, given that it holds for every smaller
/// `k` where it holds for a larger one; 0 when none does.
fn longest_fit(n: usize, fits: impl Fn(usize) -> bool) -> usize {
    if fits(n) {
        return n;
    }
    let (mut lo, mut hi) = (0, n);
    // Invariant: fits(lo) or lo == 0; !fits(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn hook_with_keyword(hook: &str, keyword: Option<&str>) -> String {
    let keyword = keyword.map(str::trim).unwrap_or_default();
    if keyword.is_empty() {
        return hook.to_owned();
    }
    let snippet: String = hook.chars().take(SEARCH_SNIPPET_CHARS).collect();
    if snippet.to_lowercase().contains(&keyword.to_lowercase()) {
        hook.to_owned()
    } else if hook.is_empty() {
        keyword.to_owned()
    } else {
        format!("{keyword}: {hook}")
    }
}

/// The blocks in order, blank lines between the non-empty ones.
fn blocks<'a>(
    hook: &'a str,
    body: &'a str,
    chapters: &'a [String],
    cta: &'a str,
    links: &'a [String],
    hashtags: &'a [String],
) -> [(&'a [String], &'a str, &'static str); 5] {
    // Each block is either one text or lines joined with the separator.
    [
        (&[], hook, "\n"),
        (&[], body, "\n"),
        (chapters, "", "\n"),
        (links, cta, "\n"),
        (hashtags, "", " "),
    ]
}

fn block_len(lines: &[String], text: &str, sep: &str) -> usize {
    let lines_len: usize =
        lines.iter().map(String::len).sum::<usize>() + sep.len() * lines.len().saturating_sub(1);
    match (text.is_empty(), lines.is_empty()) {
        (true, _) => lines_len,
        (false, true) => text.len(),
        (false, false) => text.len() + 1 + lines_len,
    }
}

fn layout_len(
    hook: &str,
    body: &str,
    chapters: &[String],
    cta: &str,
    links: &[String],
    hashtags: &[String],
) -> usize {
    let lens: Vec<usize> = blocks(hook, body, chapters, cta, links, hashtags)
        .iter()
        .map(|(lines, text, sep)| block_len(lines, text, sep))
        .filter(|&len| len > 0)
        .collect();
    lens.iter().sum::<usize>() + 2 * lens.len().saturating_sub(1)
}

fn write_layout(
    out: &mut String,
    hook: &str,
    body: &str,
    chapters: &[String],
    cta: &str,
    links: &[String],
    hashtags: &[String],
) {
    for (lines, text, sep) in blocks(hook, body, chapters, cta, links, hashtags) {
        if block_len(lines, text, sep) == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(text);
        if !text.is_empty() && !lines.is_empty() {
            out.push('\n');
        }
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(line);
        }
    }
}

/// The largest grapheme boundary at or below `max` bytes.
pub fn grapheme_floor(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut floor = 0;
    for (i, _) in text.grapheme_indices(true) {
        if i > max {
            break;
        }
        floor = i;
    }
    floor
}

/// `text` cut to at most `max` bytes: at the last sentence end that keeps at least half,
/// else at the last space, else at a grapheme boundary; trailing spaces trimmed.
pub fn shorten(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let cut = grapheme_floor(text, max);
    let head = text.get(..cut).unwrap_or_default();
    let sentence = head
        .char_indices()
        .filter(|&(i, c)| {
            matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
                && head
                    .get(i + c.len_utf8()..)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        })
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
        .filter(|&end| end * 2 >= cut);
    let end = sentence
        .or_else(|| head.rfind(char::is_whitespace).filter(|&i| i > 0))
        .unwrap_or(cut);
    head.get(..end).unwrap_or_default().trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{chapters_in, hashtags_in};

    fn parts() -> DescriptionParts {
        DescriptionParts {
            hook: "Bake your first sourdough bread this weekend.".into(),
            keyword: Some("sourdough bread".into()),
            body: "We start with the starter. Then the dough.".into(),
            chapters: vec![
                Chapter {
                    start_secs: 0,
                    title: "Intro".into(),
                },
                Chapter {
                    start_secs: 65,
                    title: "Starter".into(),
                },
                Chapter {
                    start_secs: 600,
                    title: "Baking".into(),
                },
            ],
            duration_secs: Some(900),
            call_to_action: Some("Subscribe for more bread.".into()),
            links: vec![Link {
                label: "Recipe".into(),
                url: "https://example.com/r".into(),
            }],
            hashtags: vec!["sourdough".into(), "#baking".into(), "bread".into()],
        }
    }

    #[test]
    fn the_layout_puts_each_part_in_its_place() {
        let text = description(&parts());
        assert_eq!(
            text,
            "Bake your first sourdough bread this weekend.\n\nWe start with the starter. Then \
             the dough.\n\n0:00 Intro\n1:05 Starter\n10:00 Baking\n\nSubscribe for more \
             bread.\nRecipe: https://example.com/r\n\n#sourdough #baking #bread"
        );
        assert_eq!(chapters_in(&text).len(), 3);
        assert_eq!(hashtags_in(&text), ["#sourdough", "#baking", "#bread"]);
    }

    #[test]
    fn the_keyword_leads_a_hook_without_it_and_long_videos_use_hours() {
        let mut p = parts();
        p.hook = "Your first loaf.".into();
        p.duration_secs = Some(4000);
        let text = description(&p);
        assert!(text.starts_with("sourdough bread: Your first loaf."));
        assert!(text.contains("0:00:00 Intro\n0:01:05 Starter\n0:10:00 Baking"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0, false), "0:00");
        assert_eq!(format_timestamp(65, false), "1:05");
        assert_eq!(format_timestamp(3723, true), "1:02:03");
        assert_eq!(format_timestamp(65, true), "0:01:05");
    }

    #[test]
    fn a_long_body_is_cut_at_a_sentence_and_the_rest_kept() {
        let mut p = parts();
        p.body = "Ein Satz mit Umlauten äöü. ".repeat(400);
        let text = description(&p);
        assert!(text.len() <= MAX_DESCRIPTION_BYTES, "{}", text.len());
        assert!(text.len() > MAX_DESCRIPTION_BYTES - 40);
        assert!(text.contains("äöü.\n\n0:00 Intro"));
        assert!(text.ends_with("#bread"));
        assert_eq!(chapters_in(&text).len(), 3);
    }

    #[test]
    fn exactly_5000_bytes_stay_and_5001_are_cut() {
        let mut p = DescriptionParts {
            hook: "é".repeat(2500),
            ..DescriptionParts::default()
        };
        assert_eq!(description(&p).len(), 5000);
        p.hook.push('x');
        let text = description(&p);
        assert_eq!(text.len(), 5000);
        assert!(!text.ends_with('x'));
    }

    #[test]
    fn cuts_never_split_a_grapheme() {
        let family = "👨‍👩‍👧‍👦";
        let text = family.repeat(300);
        let cut = shorten(&text, 100);
        assert!(cut.len() <= 100);
        assert_eq!(cut.len() % family.len(), 0);
        assert_eq!(shorten("one two three", 9), "one two");
        assert_eq!(shorten("First. Second one here.", 20), "First. Second one");
        assert_eq!(shorten("First one. Second one here.", 20), "First one.");
        assert_eq!(
            shorten("Long first sentence. x", 21),
            "Long first sentence."
        );
    }

    #[test]
    fn when_nothing_else_fits_chapters_and_hashtags_go_last() {
        let p = DescriptionParts {
            hook: "h".into(),
            chapters: (0..600)
                .map(|i| Chapter {
                    start_secs: i * 10,
                    title: "Chapter title".into(),
                })
                .collect(),
            hashtags: vec!["tag".into()],
            ..DescriptionParts::default()
        };
        let text = description(&p);
        assert!(text.len() <= MAX_DESCRIPTION_BYTES);
        assert!(chapters_in(&text).len() >= 3);
        assert!(text.ends_with("#tag"));
    }
}
