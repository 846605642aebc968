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

/// Zero-width and byte-order marks: invisible, and they make equal words look different.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
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
mod tests {
    use super::*;
    use crate::domain::draft::{DraftChapter, DraftTitle, parse_draft};
    use crate::domain::rules::{chapters_in, hashtags_in, tags_length};
    use crate::domain::score::{Weights, score};
    use proptest::prelude::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    struct Owned {
        secondary: Vec<String>,
        links: Vec<Link>,
        segments: Vec<Segment>,
    }

    fn owned() -> Owned {
        Owned {
            secondary: strings(&["sourdough starter", "bread baking"]),
            links: vec![Link {
                label: "Recipe".into(),
                url: "https://example.com/r#top".into(),
            }],
            segments: (0..60)
                .map(|i| Segment {
                    start_ms: i * 10_500,
                    end_ms: i * 10_500 + 10_000,
                    text: "x".into(),
                })
                .collect(),
        }
    }

    fn ctx(o: &Owned) -> RepairContext<'_> {
        RepairContext {
            primary_keyword: "sourdough bread",
            secondary_keywords: &o.secondary,
            topic: "Sourdough for beginners",
            links: &o.links,
            call_to_action: Some("Subscribe for a new loaf every week."),
            duration_secs: Some(600),
            segments: &o.segments,
            default_hashtags: &[],
        }
    }

    fn errors(package: &Package, duration: Option<u32>) -> Vec<Violation> {
        validate_package(package, duration)
            .into_iter()
            .filter(Violation::is_error)
            .collect()
    }

    #[test]
    fn an_empty_draft_becomes_a_complete_valid_package() {
        let o = owned();
        let package = repair(&Draft::default(), &ctx(&o));
        assert_eq!(errors(&package, Some(600)), []);
        let strategies: Vec<TitleStrategy> = package.titles.iter().map(|t| t.strategy).collect();
        assert_eq!(strategies, TitleStrategy::ALL);
        assert_eq!(
            package.titles[0].text,
            "sourdough bread: Sourdough for beginners"
        );
        assert!(package.titles.iter().any(|t| t.text == package.title));
        assert_eq!(
            package.tags,
            ["sourdough bread", "sourdough starter", "bread baking"]
        );
        assert_eq!(
            hashtags_in(&package.description),
            ["#SourdoughBread", "#SourdoughStarter", "#BreadBaking"]
        );
        assert_eq!(
            package.thumbnail_texts,
            ["sourdough bread", "Sourdough for beginners"]
        );
        assert!(
            package
                .description
                .starts_with("sourdough bread: Sourdough for beginners")
        );
        assert!(
            package
                .description
                .contains("Recipe: https://example.com/r#top")
        );
        assert!(chapters_in(&package.description).is_empty());
    }

    #[test]
    fn a_model_draft_is_cleaned_and_fitted() {
        let answer = r##"{"titles": [
            {"text": "Sourdough Bread <b>for</b> Beginners", "strategy": "keyword_first"},
            {"text": "Why Does My SOURDOUGH BREAD Collapse?", "strategy": "question"},
            {"text": "Another keyword first", "strategy": "keyword_first"}],
          "hook": "Bake sourdough bread\u0007 at home. #easy",
          "body": "Line one.\n\n\n\n1:00 a fake chapter line\nLine #two.",
          "tags": ["Sourdough Bread", "bread", "BREAD", "how to make sourdough bread at home", "a,b"],
          "hashtags": ["#sourdough", "Bread Baking", "sourdough", "#123"],
          "chapters": [{"start": 125, "title": "Shaping"}, {"start": "0:03", "title": "Intro"},
                       {"start": 40, "title": "Starter"}, {"start": 44, "title": "Too close"},
                       {"start": 595, "title": "Past the end"}, {"start": 700, "title": "After"}],
          "thumbnail_texts": ["Perfect Crust Every Time Guaranteed Forever", "Easy", "No Knead Loaf"]}"##;
        let o = owned();
        let package = repair(&parse_draft(answer), &ctx(&o));
        assert_eq!(errors(&package, Some(600)), []);
        assert_eq!(package.titles[0].text, "Sourdough Bread bfor/b Beginners");
        assert_eq!(package.titles[2].text, "Another keyword first");
        assert_eq!(package.titles[2].strategy, TitleStrategy::Listicle);
        assert_eq!(
            package.tags,
            [
                "sourdough bread",
                "bread",
                "how to make sourdough bread at home",
                "a b",
                "sourdough starter",
                "bread baking"
            ]
        );
        assert_eq!(
            hashtags_in(&package.description),
            ["#sourdough", "#BreadBaking", "#SourdoughBread"]
        );
        let chapters = chapters_in(&package.description);
        let starts: Vec<u32> = chapters.iter().map(|c| c.start_secs).collect();
        // 0:03 snaps to 0:00; 40 to 42 (a segment start), 44 is then too close; 125 to 126;
        // 595 leaves under 10 s and 700 is past the end.
        assert_eq!(starts, [0, 42, 126]);
        assert!(package.description.starts_with(
            "Bake sourdough bread at home. easy\n\nLine one.\n\nLine two.\n\n0:00 Intro"
        ));
        assert_eq!(
            package.thumbnail_texts,
            ["Perfect Crust Every Time Guaranteed", "No Knead Loaf"]
        );
    }

    #[test]
    fn fewer_than_three_chapters_drop_the_block() {
        let o = owned();
        let draft = Draft {
            chapters: vec![
                DraftChapter {
                    start_secs: Some(0),
                    title: "A".into(),
                },
                DraftChapter {
                    start_secs: Some(5),
                    title: "B".into(),
                },
                DraftChapter {
                    start_secs: Some(300),
                    title: "C".into(),
                },
            ],
            ..Draft::default()
        };
        let package = repair(&draft, &ctx(&o));
        assert!(chapters_in(&package.description).is_empty());
    }

    #[test]
    fn ten_thousand_tags_fit_the_budget_in_priority_order() {
        let o = owned();
        let draft = Draft {
            tags: (0..10_000).map(|i| format!("tag number {i}")).collect(),
            titles: vec![DraftTitle {
                text: "x".repeat(300),
                strategy: None,
            }],
            ..Draft::default()
        };
        let package = repair(&draft, &ctx(&o));
        assert_eq!(errors(&package, Some(600)), []);
        assert!(tags_length(&package.tags) <= 500);
        assert!(tags_length(&package.tags) > 480);
        assert_eq!(package.tags[0], "sourdough bread");
        assert_eq!(package.tags[1], "tag number 0");
        assert!(package.titles[0].text.chars().count() <= 100);
    }

    #[test]
    fn feedback_lists_every_violation() {
        let meta = crate::domain::Metadata {
            title: String::new(),
            description: "0:05 a".into(),
            tags: vec![],
        };
        let text = feedback(&crate::domain::rules::validate(&meta, None));
        assert!(text.contains("- title (title_empty, error): the title is empty"));
        assert!(text.contains("- chapters (chapters_first_not_zero, error)"));
        assert!(text.contains("- chapters (chapters_too_few, error)"));
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<String>(),
            2 => "\\PC{0,120}",
            1 => Just("<script>alert('x')</script>".to_owned()),
            1 => "[\u{05d0}-\u{05ea}\u{0627}-\u{064a} \u{200f}\u{202e}]{0,80}",
            1 => "[😀-🙏👨‍👩‍👧 #\u{200b}\u{0301}]{0,60}",
            1 => "[\\x00-\\x1f#<>:0-9 a]{0,80}",
            1 => (0usize..7_000).prop_map(|n| "é ".repeat(n)),
            1 => (0usize..3).prop_map(|n| "0:00 x\n".repeat(n * 40)),
        ]
    }

    fn draft() -> impl Strategy<Value = Draft> {
        let title = (
            text(),
            proptest::option::of(prop::sample::select(TitleStrategy::ALL.to_vec())),
        )
            .prop_map(|(text, strategy)| DraftTitle { text, strategy });
        let chapter = (proptest::option::of(any::<u32>()), text())
            .prop_map(|(start_secs, title)| DraftChapter { start_secs, title });
        let tags = prop_oneof![
            4 => prop::collection::vec(text(), 0..30),
            1 => (0usize..10_000).prop_map(|n| (0..n).map(|i| format!("t {i}")).collect()),
        ];
        (
            prop::collection::vec(title, 0..8),
            text(),
            text(),
            tags,
            prop::collection::vec(text(), 0..80),
            prop::collection::vec(chapter, 0..40),
            prop::collection::vec(text(), 0..6),
        )
            .prop_map(
                |(titles, hook, body, tags, hashtags, chapters, thumbnail_texts)| Draft {
                    titles,
                    hook,
                    body,
                    tags,
                    hashtags,
                    chapters,
                    thumbnail_texts,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_draft_repairs_to_a_package_without_errors(
            draft in draft(),
            keyword in text(),
            topic in text(),
            label in text(),
            url in text(),
            cta in proptest::option::of(text()),
            duration in proptest::option::of(0u32..50_000),
            starts in prop::collection::vec(0u64..4_000_000, 0..50),
        ) {
            let mut starts = starts;
            starts.sort_unstable();
            let segments: Vec<Segment> = starts
                .iter()
                .map(|&s| Segment { start_ms: s, end_ms: s + 500, text: "x".into() })
                .collect();
            let secondary = vec![keyword.clone(), topic.clone()];
            let links = vec![Link { label, url }];
            let ctx = RepairContext {
                primary_keyword: &keyword,
                secondary_keywords: &secondary,
                topic: &topic,
                links: &links,
                call_to_action: cta.as_deref(),
                duration_secs: duration,
                segments: &segments,
                default_hashtags: &[],
            };
            let package = repair(&draft, &ctx);
            prop_assert_eq!(errors(&package, duration), vec![]);
            prop_assert_eq!(package.titles.len(), 5);
            prop_assert!((2..=3).contains(&package.thumbnail_texts.len()));
            prop_assert_eq!(&package, &repair(&draft, &ctx), "repair is deterministic");

            let score_ctx = crate::domain::ScoreContext {
                primary_keyword: keyword.clone(),
                secondary_keywords: secondary.clone(),
                duration_secs: duration,
                thumbnail_texts: package.thumbnail_texts.clone(),
            };
            let first = score(&package.metadata(), &score_ctx, &Weights::default());
            prop_assert!(first.total <= 100);
            prop_assert_eq!(first, score(&package.metadata(), &score_ctx, &Weights::default()));
        }

        #[test]
        fn the_scorer_is_total_on_any_metadata(
            title in text(),
            description in text(),
            tags in prop::collection::vec(text(), 0..40),
            keyword in text(),
            duration in proptest::option::of(any::<u32>()),
            weights in prop::array::uniform7(prop_oneof![any::<f64>(), 0.0..100.0]),
        ) {
            let meta = crate::domain::Metadata { title, description, tags };
            let ctx = crate::domain::ScoreContext {
                primary_keyword: keyword,
                secondary_keywords: vec![],
                duration_secs: duration,
                thumbnail_texts: vec![],
            };
            let [title, description, keyword_alignment, tags, hashtags, chapters, thumbnail_text] = weights;
            let weights = Weights { title, description, keyword_alignment, tags, hashtags, chapters, thumbnail_text };
            let a = score(&meta, &ctx, &weights);
            prop_assert!(a.total <= 100);
            prop_assert_eq!(a.components.len(), 7);
            prop_assert_eq!(a, score(&meta, &ctx, &weights));
        }
    }
}
