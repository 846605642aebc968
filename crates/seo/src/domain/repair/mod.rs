//! Deterministic repair: whatever the model wrote, the package that comes out passes
//! [`validate_package`] with no error. Also the feedback text for the one round in which
//! the model is asked to fix its own answer.

use std::collections::HashSet;

use super::assemble::{self, DescriptionParts, shorten};
use super::chapters::{chapter_line, snap};
use super::draft::Draft;
use super::rules::{
    self, MAX_TAGS_LENGTH, MAX_TITLE_CHARS, MIN_CHAPTER_SECS, MIN_CHAPTERS, Violation, has_errors,
    is_hashtag_char, validate_package,
};
use super::score::{ScoreContext, score_title};
use super::{Chapter, Link, Package, Project, Segment, TitleCandidate, TitleStrategy};

/// What the repair knows besides the draft.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepairContext<'a> {
    pub primary_keyword: &'a str,
    pub secondary_keywords: &'a [String],
    pub topic: &'a str,
    pub links: &'a [Link],
    pub call_to_action: Option<&'a str>,
    pub duration_secs: Option<u32>,
    /// The transcript's segments when it is timed (chapters snap to their starts); empty
    /// for plain text or no transcript.
    pub segments: &'a [Segment],
    /// Hashtags to use when the draft has none (without or with `#`).
    pub default_hashtags: &'a [String],
}

impl<'a> RepairContext<'a> {
    /// The context of a project; `segments` only when its transcript is timed.
    pub fn for_project(project: &'a Project, segments: &'a [Segment]) -> Self {
        RepairContext {
            primary_keyword: &project.primary_keyword,
            secondary_keywords: &project.secondary_keywords,
            topic: &project.topic,
            links: &project.links,
            call_to_action: project.call_to_action.as_deref(),
            duration_secs: project.duration_secs,
            segments,
            default_hashtags: &[],
        }
    }
}

/// The longest hook, in characters: search shows about 150.
pub const MAX_HOOK_CHARS: usize = 200;
/// The most hashtags a repaired package gets (YouTube recommends 3–5).
pub const MAX_REPAIRED_HASHTAGS: usize = 5;
const MAX_HASHTAG_CHARS: usize = 50;
const MAX_CHAPTER_TITLE_CHARS: usize = 80;
const MAX_THUMBNAIL_CHARS: usize = 40;

/// Turns a draft into a package that passes [`validate_package`] with no error: text
/// cleaned (`<`, `>`, control characters, whitespace), five title candidates (one a
/// strategy, missing ones made from the keyword and topic), tags deduplicated within 500,
/// 3–5 hashtags, chapters snapped and checked (or none), 2–3 thumbnail texts, and the
/// description assembled within 5,000 bytes.
pub fn repair(draft: &Draft, ctx: &RepairContext<'_>) -> Package {
    let keyword = clean_line(ctx.primary_keyword);
    let topic = clean_line(ctx.topic);
    let subject = [keyword.as_str(), topic.as_str()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map_or_else(|| "This video".to_owned(), |s| cut_chars(s, 60).to_owned());

    let titles = titles(draft, &keyword, &topic, &subject, ctx);
    let title = titles
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| (c.score, std::cmp::Reverse(*i)))
        .map_or_else(|| subject.clone(), |(_, c)| c.text.clone());

    let tags = tags(draft, &keyword, ctx.secondary_keywords);
    let hashtags = hashtags(draft, &keyword, ctx);
    let chapters = chapters(draft, ctx);
    let thumbnail_texts = thumbnail_texts(draft, &keyword, &topic);

    let mut hook = clean_line(&draft.hook);
    if hook.is_empty() {
        hook = if topic.is_empty() {
            subject.clone()
        } else {
            topic.clone()
        };
    }
    let hook = defuse_line(shorten(
        &hook,
        hook.len().min(char_bytes(&hook, MAX_HOOK_CHARS)),
    ))
    .into_owned();
    let links: Vec<Link> = ctx
        .links
        .iter()
        .map(|l| Link {
            label: defuse_line(&clean_line(&l.label)).into_owned(),
            url: clean_url(&l.url),
        })
        .filter(|l| !l.label.is_empty() && !l.url.is_empty())
        .collect();
    let mut parts = DescriptionParts {
        hook,
        keyword: (!keyword.is_empty()).then(|| keyword.clone()),
        body: clean_body(&draft.body),
        chapters,
        duration_secs: ctx.duration_secs,
        call_to_action: ctx
            .call_to_action
            .map(|c| defuse_line(&clean_line(c)).into_owned())
            .filter(|c| !c.is_empty()),
        links,
        hashtags,
    };
    let mut package = Package {
        titles,
        title,
        description: assemble::description(&parts),
        tags,
        thumbnail_texts,
    };
    // A safety net: what the steps above should never leave, fixed bluntly.
    let violations = validate_package(&package, ctx.duration_secs);
    if has_errors(&violations) {
        if violations
            .iter()
            .any(|v| v.is_error() && v.field == rules::Field::Chapters)
        {
            parts.chapters.clear();
        }
        if violations
            .iter()
            .any(|v| v.is_error() && v.field == rules::Field::Hashtags)
        {
            parts.hashtags.clear();
        }
        package.description = assemble::description(&parts);
        if has_errors(&validate_package(&package, ctx.duration_secs)) {
            package.description = assemble::description(&DescriptionParts {
                hook: parts.hook.clone(),
                ..DescriptionParts::default()
            });
        }
    }
    package
}

/// The draft taken at its word, nothing fixed: what the model would have published. Its
/// violations decide whether the model gets its one repair round; the package itself is
/// never stored (only [`repair`]'s is).
pub fn as_given(draft: &Draft, ctx: &RepairContext<'_>) -> Package {
    let titles: Vec<TitleCandidate> = draft
        .titles
        .iter()
        .enumerate()
        .map(|(i, t)| TitleCandidate {
            text: t.text.clone(),
            strategy: t
                .strategy
                .unwrap_or(TitleStrategy::ALL[i % TitleStrategy::ALL.len()]),
            score: 0,
        })
        .collect();
    let parts = DescriptionParts {
        hook: draft.hook.clone(),
        keyword: None,
        body: draft.body.clone(),
        chapters: draft
            .chapters
            .iter()
            .map(|c| Chapter {
                start_secs: c.start_secs.unwrap_or(0),
                title: c.title.clone(),
            })
            .collect(),
        duration_secs: ctx.duration_secs,
        call_to_action: ctx.call_to_action.map(str::to_owned),
        links: ctx.links.to_vec(),
        hashtags: draft.hashtags.clone(),
    };
    Package {
        title: titles.first().map(|t| t.text.clone()).unwrap_or_default(),
        titles,
        description: assemble::description(&parts),
        tags: draft.tags.clone(),
        thumbnail_texts: draft.thumbnail_texts.clone(),
    }
}

/// The violations as the model reads them in its one repair round.
pub fn feedback(violations: &[Violation]) -> String {
    let mut out = String::from(
        "Your answer breaks these rules. Fix exactly these problems and answer again with \
         the whole JSON object:\n",
    );
    for v in violations {
        out.push_str(&format!(
            "- {} ({}, {}): {}\n",
            v.field.as_str(),
            v.code,
            match v.severity {
                rules::Severity::Error => "error",
                rules::Severity::Warning => "warning",
            },
            v.message
        ));
    }
    out
}

/// One line: `<`, `>` and control characters removed, whitespace runs made one space, and
/// every `#` that could start a hashtag removed (hashtags belong to the hashtag line).
fn clean_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(8_192));
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if c == '<' || c == '>' || is_invisible_format(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    if !out.contains('#') {
        return out;
    }
    // A second pass, on the cleaned text, so removed characters cannot join a `#` to a word.
    let mut defused = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#'
            && chars
                .peek()
                .is_some_and(|&n| n == '#' || is_hashtag_char(n))
        {
            continue;
        }
        defused.push(c);
    }
    defused
}

/// A URL as written into the description: no spaces, `<`, `>` or control characters. A
/// `#` stays in a URL with a scheme (YouTube does not read hashtags there) and goes
/// elsewhere.
fn clean_url(url: &str) -> String {
    let url = url.trim();
    if url.contains("://") {
        url.chars()
            .filter(|&c| !(c.is_control() || c == '<' || c == '>' || is_invisible_format(c)))
            .map(|c| if c.is_whitespace() { '+' } else { c })
            .collect()
    } else {
        clean_line(url).replace(' ', "+")
    }
}

/// Zero-width and byte-order marks (invisible, and they make equal words look different)
/// and the bidirectional embeddings, overrides and isolates, which can make text display
/// in another order than it reads (the marks U+200E and U+200F, which right-to-left text
/// needs, stay).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{2060}' | '\u{feff}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The body: each line cleaned, lines that YouTube would read as chapters dropped (chapters
/// have their own block), runs of blank lines made one.
fn clean_body(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(8_192));
    let mut blank = false;
    for line in text.lines() {
        let line = clean_line(line);
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if chapter_line(&line).is_some() {
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
        // The description holds 5,000 bytes: more body is never used.
        if out.len() > rules::MAX_DESCRIPTION_BYTES {
            break;
        }
    }
    out
}

/// A free-text line that would read as a chapter gets "At " before its timestamp.
fn defuse_line(line: &str) -> std::borrow::Cow<'_, str> {
    if chapter_line(line).is_some() {
        std::borrow::Cow::Owned(format!("At {line}"))
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// The byte length of the first `max` characters.
fn char_bytes(text: &str, max: usize) -> usize {
    text.char_indices().nth(max).map_or(text.len(), |(i, _)| i)
}

fn cut_chars(text: &str, max: usize) -> &str {
    text.get(..char_bytes(text, max)).unwrap_or(text)
}

/// At most `max` characters, cut at a word when one ends past the first half.
fn trim_title(text: &str, max: usize) -> String {
    let end = char_bytes(text, max);
    if end == text.len() {
        return text.to_owned();
    }
    let head = text.get(..end).unwrap_or_default();
    let at_word = head
        .rfind(' ')
        .filter(|&i| i * 2 >= end && text.get(end..).is_some_and(|r| !r.starts_with(' ')))
        .unwrap_or(end);
    let cut = assemble::grapheme_floor(head, at_word);
    head.get(..cut)
        .unwrap_or_default()
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | '-' | '–' | '—'))
        .to_owned()
}

fn titles(
    draft: &Draft,
    keyword: &str,
    topic: &str,
    subject: &str,
    ctx: &RepairContext<'_>,
) -> Vec<TitleCandidate> {
    let mut by_strategy: [Option<String>; 5] = Default::default();
    let mut seen = HashSet::new();
    let mut unassigned = Vec::new();
    for title in draft.titles.iter().take(50) {
        let text = trim_title(&clean_line(cut_chars(&title.text, 1_000)), MAX_TITLE_CHARS);
        if text.is_empty() || !seen.insert(text.to_lowercase()) {
            continue;
        }
        let slot = title
            .strategy
            .and_then(|s| TitleStrategy::ALL.iter().position(|&t| t == s))
            .filter(|&i| by_strategy.get(i).is_some_and(Option::is_none));
        match slot.and_then(|i| by_strategy.get_mut(i)) {
            Some(place) => *place = Some(text),
            None => unassigned.push(text),
        }
    }
    let mut unassigned = unassigned.into_iter();
    let score_ctx = ScoreContext {
        primary_keyword: keyword.to_owned(),
        secondary_keywords: ctx.secondary_keywords.to_vec(),
        duration_secs: ctx.duration_secs,
        thumbnail_texts: Vec::new(),
    };
    TitleStrategy::ALL
        .iter()
        .zip(by_strategy)
        .map(|(&strategy, given)| {
            let text = given
                .or_else(|| unassigned.next())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| {
                    let made = template(strategy, keyword, topic, subject);
                    let text = trim_title(&clean_line(&made), MAX_TITLE_CHARS);
                    if text.is_empty() {
                        "Video".to_owned()
                    } else {
                        text
                    }
                });
            TitleCandidate {
                score: score_title(&text, &score_ctx),
                text,
                strategy,
            }
        })
        .collect()
}

/// A title for a strategy the model left out, from the keyword (or topic).
fn template(strategy: TitleStrategy, keyword: &str, topic: &str, subject: &str) -> String {
    let topic_differs = !topic.is_empty() && !topic.eq_ignore_ascii_case(keyword);
    match strategy {
        TitleStrategy::KeywordFirst if topic_differs && !keyword.is_empty() => {
            format!("{keyword}: {topic}")
        }
        TitleStrategy::KeywordFirst => format!("{subject}: The Complete Guide"),
        TitleStrategy::Question => format!("What Is {subject} and How Does It Work?"),
        TitleStrategy::Listicle => format!("7 {subject} Tips You Should Know"),
        TitleStrategy::Benefit => format!("Get Better at {subject}, Step by Step"),
        TitleStrategy::Curiosity => format!("The Truth About {subject} Nobody Tells You"),
    }
}

/// Tags in priority order (the primary keyword, the model's, then the secondary keywords),
/// cleaned and deduplicated case-insensitively; a tag is kept while it fits the 500 YouTube
/// counts, and skipped (the next, lower one tried) when it does not.
fn tags(draft: &Draft, keyword: &str, secondary: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut used = 0usize;
    let candidates = std::iter::once(keyword)
        .chain(draft.tags.iter().map(String::as_str))
        .chain(secondary.iter().map(String::as_str));
    for raw in candidates {
        if raw.len() > 4 * MAX_TAGS_LENGTH {
            continue;
        }
        let tag = clean_line(&raw.replace([',', '"'], " "));
        let tag = tag.trim_start_matches('#').trim();
        if tag.is_empty() || !seen.insert(tag.to_lowercase()) {
            continue;
        }
        let cost = tag.chars().count()
            + if tag.contains(' ') { 2 } else { 0 }
            + usize::from(!out.is_empty());
        if used + cost <= MAX_TAGS_LENGTH {
            used += cost;
            out.push(tag.to_owned());
        }
    }
    out
}

/// A hashtag's word: letters, digits and underscores, words run together in title case.
fn hashtag_word(raw: &str) -> String {
    let mut out = String::new();
    for word in raw.split(|c: char| !is_hashtag_char(c)) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    cut_chars(&out, MAX_HASHTAG_CHARS).to_owned()
}

fn hashtags(draft: &Draft, keyword: &str, ctx: &RepairContext<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |raw: &str, out: &mut Vec<String>| {
        if out.len() >= MAX_REPAIRED_HASHTAGS || raw.len() > 1_000 {
            return;
        }
        // A tag the model wrote as one word keeps its case; several words are joined.
        let raw = raw.trim().trim_start_matches('#');
        let word = if raw.chars().all(is_hashtag_char) {
            cut_chars(raw, MAX_HASHTAG_CHARS).to_owned()
        } else {
            hashtag_word(raw)
        };
        if word.chars().any(|c| !c.is_ascii_digit()) && seen.insert(word.to_lowercase()) {
            out.push(format!("#{word}"));
        }
    };
    let given = if draft.hashtags.is_empty() {
        ctx.default_hashtags
    } else {
        &draft.hashtags
    };
    for raw in given.iter().take(1_000) {
        add(raw, &mut out);
    }
    // Fewer than three: the keywords fill in.
    for raw in std::iter::once(keyword).chain(ctx.secondary_keywords.iter().map(String::as_str)) {
        if out.len() >= 3 {
            break;
        }
        add(raw, &mut out);
    }
    out
}

/// Chapters with a start, snapped to the segments, the first moved to 0:00, the ones under
/// 10 s or past the end dropped; none when fewer than three remain.
fn chapters(draft: &Draft, ctx: &RepairContext<'_>) -> Vec<Chapter> {
    let given: Vec<Chapter> = draft
        .chapters
        .iter()
        .take(1_000)
        .filter_map(|c| {
            let start_secs = c.start_secs?;
            let title = clean_line(cut_chars(&c.title, 1_000));
            let title = trim_title(&title, MAX_CHAPTER_TITLE_CHARS);
            (!title.is_empty()).then_some(Chapter { start_secs, title })
        })
        .collect();
    let mut snapped = snap(&given, ctx.segments);
    if let Some(first) = snapped.first_mut() {
        first.start_secs = 0;
    }
    let mut out: Vec<Chapter> = Vec::with_capacity(snapped.len());
    for chapter in snapped {
        let end = ctx
            .duration_secs
            .unwrap_or(super::project::MAX_DURATION_SECS);
        let fits_end = chapter.start_secs < end && end - chapter.start_secs >= MIN_CHAPTER_SECS;
        let after_last = out
            .last()
            .is_none_or(|last| chapter.start_secs >= last.start_secs + MIN_CHAPTER_SECS);
        if fits_end && after_last {
            out.push(chapter);
        }
    }
    if out.len() < MIN_CHAPTERS || out.first().is_some_and(|c| c.start_secs != 0) {
        out.clear();
    }
    out
}

fn thumbnail_texts(draft: &Draft, keyword: &str, topic: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |text: String, out: &mut Vec<String>| {
        let words: Vec<&str> = text.split_whitespace().take(5).collect();
        if out.len() >= 3 || words.len() < 2 {
            return;
        }
        let text = words.join(" ");
        if text.chars().count() <= MAX_THUMBNAIL_CHARS && seen.insert(text.to_lowercase()) {
            out.push(text);
        }
    };
    for raw in draft.thumbnail_texts.iter().take(100) {
        add(clean_line(cut_chars(raw, 1_000)), &mut out);
    }
    if out.len() < 2 {
        for base in [keyword, topic] {
            let base = clean_line(base);
            match base.split_whitespace().count() {
                0 => {}
                1 => add(format!("{base} Explained"), &mut out),
                _ => add(base, &mut out),
            }
        }
        for fallback in ["Watch This First", "You Need This", "Don't Miss This"] {
            if out.len() >= 2 {
                break;
            }
            add(fallback.to_owned(), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests;
