//! The scorer: 0–100 for a video's metadata, explained check by check, the same for a
//! generated package, a hand edit and an imported video.
//!
//! # Formula
//!
//! Seven components, each a list of pass/fail checks of equal worth:
//!
//! | component | checks |
//! |---|---|
//! | title | within YouTube's limits; 40–70 characters; has the primary keyword; keyword in the first 30 characters; no shouting (at most one ALL-CAPS word of 3+ letters, at most 60 % capitals); no `!!`/`??` |
//! | description | within YouTube's limits; keyword in the first 150 characters; at least 200 words; keyword not stuffed (at most 2 + words/50 times); a link; a secondary keyword |
//! | keyword_alignment | keyword in title; in description; in the first tag; at least half the secondary keywords used somewhere |
//! | tags | within 500; 200–500 of the 500 used; 5–25 tags; the keyword is the first tag; 2+ long-tail tags (3+ words); no duplicates |
//! | hashtags | 3–5; not more than 15; one is the keyword |
//! | chapters | at least 3 listed; valid (first at 0:00, ascending, 10 s each, inside the video); all titled. Videos known to be under 2 minutes pass all three |
//! | thumbnail_text | 2–3 options; each 2–5 words; each at most 30 characters; none repeats the title |
//!
//! With `w` the [`Weights`] (negative or non-finite ones count as 0; all zero means the
//! defaults), a component's `max_points = 100 · w / Σw` and its
//! `points = max_points · passed / checks`. The total is `round(Σ points)`. A check that
//! cannot apply (no secondary keywords given, no keyword set) passes and says why; a check
//! that something bad is absent (shouting, duplicates, too many hashtags) fails when the
//! thing checked is missing altogether, so empty metadata scores 0.
//!
//! Checks carry static texts and the one figure measured, so scoring a package allocates
//! little: validating and scoring together ([`evaluate`]) costs a few times a JSON parse of
//! the same package (`seo-score` in `bench/loadgen` measures it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod checks;

#[cfg(test)]
use checks::word_count;
use checks::{
    Keywords, alignment_checks, chapter_checks, description_checks, hashtag_checks, tag_checks,
    thumbnail_checks, title_checks,
};

use super::rules::{self, DescriptionFacts, Field, Violation};
use super::{Metadata, Package};

/// What the scorer knows besides the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ScoreContext {
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub duration_secs: Option<u32>,
    pub thumbnail_texts: Vec<String>,
}

/// How much each component counts; configurable as `seo.score_weights`. They need not sum
/// to 100: they are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub title: f64,
    pub description: f64,
    pub keyword_alignment: f64,
    pub tags: f64,
    pub hashtags: f64,
    pub chapters: f64,
    pub thumbnail_text: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            title: 25.0,
            description: 20.0,
            keyword_alignment: 15.0,
            tags: 15.0,
            hashtags: 5.0,
            chapters: 10.0,
            thumbnail_text: 10.0,
        }
    }
}

impl Weights {
    fn normalised(&self) -> [f64; 7] {
        let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
        let raw = [
            self.title,
            self.description,
            self.keyword_alignment,
            self.tags,
            self.hashtags,
            self.chapters,
            self.thumbnail_text,
        ]
        .map(clean);
        let total: f64 = raw.iter().sum();
        if total > 0.0 && total.is_finite() {
            raw.map(|w| w / total * 100.0)
        } else {
            Weights::default().normalised()
        }
    }
}

/// One check: what was looked at, whether it passed, the figure measured (when there is
/// one) and what the check wants. Nothing here is formatted per package, so scoring
/// allocates little.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// The figure measured: a length, a count, a position (1-based).
    pub value: Option<u64>,
    /// What the check looks for, e.g. "title characters; 40–70 shows in full".
    pub detail: &'static str,
}

/// One component of the score.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Component {
    pub name: &'static str,
    /// Rounded to a tenth.
    pub points: f64,
    pub max_points: f64,
    pub checks: Vec<Check>,
    /// What to do about each failed check.
    pub recommendations: Vec<&'static str>,
}

/// The score and how it came about.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Score {
    /// 0–100.
    pub total: u8,
    pub components: Vec<Component>,
}

/// Scores metadata; see the module's docs for the formula.
pub fn score(meta: &Metadata, ctx: &ScoreContext, weights: &Weights) -> Score {
    let facts = DescriptionFacts::of(&meta.description);
    let violations = rules::validate_fields(
        &meta.title,
        &meta.description,
        &meta.tags,
        &facts,
        ctx.duration_secs,
    );
    let fields = Fields {
        title: &meta.title,
        description: &meta.description,
        tags: &meta.tags,
        thumbnail_texts: &ctx.thumbnail_texts,
    };
    score_fields(&fields, &facts, &violations, ctx, weights)
}

/// Validates a package ([`rules::validate_package`]) and scores it in one go, reading the
/// description once for both. The package's own thumbnail texts are scored (those in `ctx`
/// are not used); `ctx.duration_secs` is the video's length for both.
pub fn evaluate(
    package: &Package,
    ctx: &ScoreContext,
    weights: &Weights,
) -> (Vec<Violation>, Score) {
    let facts = DescriptionFacts::of(&package.description);
    let violations = rules::validate_package_with(package, &facts, ctx.duration_secs);
    let fields = Fields {
        title: &package.title,
        description: &package.description,
        tags: &package.tags,
        thumbnail_texts: &package.thumbnail_texts,
    };
    let score = score_fields(&fields, &facts, &violations, ctx, weights);
    (violations, score)
}

struct Fields<'a> {
    title: &'a str,
    description: &'a str,
    tags: &'a [String],
    thumbnail_texts: &'a [String],
}

fn score_fields(
    meta: &Fields<'_>,
    facts: &DescriptionFacts,
    violations: &[Violation],
    ctx: &ScoreContext,
    weights: &Weights,
) -> Score {
    let max = weights.normalised();
    let keywords = Keywords::new(ctx);
    let broken = |field: Field| violations.iter().any(|v| v.is_error() && v.field == field);
    let title_lower = meta.title.to_lowercase();
    let description_lower = meta.description.to_lowercase();
    // All tags lower-cased into one buffer, then sliced: one allocation, not one a tag.
    let mut buffer = String::with_capacity(meta.tags.iter().map(|t| t.len() + 1).sum());
    let mut ends = Vec::with_capacity(meta.tags.len());
    for tag in meta.tags {
        let start = buffer.len();
        let tag = tag.trim();
        if tag.is_ascii() {
            buffer.push_str(tag);
            buffer
                .get_mut(start..)
                .map(str::make_ascii_lowercase)
                .unwrap_or_default();
        } else {
            buffer.push_str(&tag.to_lowercase());
        }
        ends.push((start, buffer.len()));
    }
    let tags_lower: Vec<&str> = ends
        .iter()
        .map(|&(a, b)| buffer.get(a..b).unwrap_or_default())
        .collect();

    let parts = [
        ("title", title_checks(meta.title, &title_lower, &keywords)),
        (
            "description",
            description_checks(
                meta.description,
                &description_lower,
                &keywords,
                broken(Field::Description),
            ),
        ),
        (
            "keyword_alignment",
            alignment_checks(&title_lower, &description_lower, &tags_lower, &keywords),
        ),
        ("tags", tag_checks(meta.tags, &tags_lower, &keywords)),
        ("hashtags", hashtag_checks(&facts.hashtags, &keywords)),
        (
            "chapters",
            chapter_checks(&facts.chapters, ctx.duration_secs, broken(Field::Chapters)),
        ),
        (
            "thumbnail_text",
            thumbnail_checks(meta.thumbnail_texts, &title_lower),
        ),
    ];
    let mut total = 0.0;
    let components = parts
        .into_iter()
        .zip(max)
        .map(|((name, checks), max_points)| {
            let (component, points) = checks.into_component(name, max_points);
            total += points;
            component
        })
        .collect();
    Score {
        total: total.round().clamp(0.0, 100.0) as u8,
        components,
    }
}

/// A title candidate's score (0–100): the title component alone.
pub fn score_title(text: &str, ctx: &ScoreContext) -> u8 {
    let keywords = Keywords::new(ctx);
    let checks = title_checks(text, &text.to_lowercase(), &keywords);
    (checks.fraction() * 100.0).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests;
