//! Keyword research from real data: what the top videos for a keyword look like (their
//! views, channels, titles and tags), how much a package's tags overlap with theirs, and a
//! competition indicator computed from those numbers — never invented by a model.
//!
//! The competition indicator (0–100) weighs three signals of the top results:
//!
//! ```text
//! views      = min(1, log10(1 + median views) / 7)          // 10M views → 1
//! channels   = min(1, log10(1 + median subscribers) / 7)    // 10M subscribers → 1
//! targeting  = share of titles containing the keyword (case-insensitive)
//! score      = round(100 × (0.4 × views + 0.3 × channels + 0.3 × targeting))
//! level      = low below 35, medium below 65, high from 65
//! ```
//!
//! Big audiences on big channels with titles aimed squarely at the keyword mean a crowded
//! search; small numbers and loosely matching titles mean room. Videos whose owners hide a
//! counter are left out of that counter's median.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

/// One of the top videos for a keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Competitor {
    pub video_id: String,
    pub title: String,
    pub channel_id: String,
    pub channel_title: String,
    /// `None` where the owner hides it.
    pub views: Option<u64>,
    pub likes: Option<u64>,
    pub comments: Option<u64>,
    /// The channel's subscribers, when public.
    pub subscribers: Option<u64>,
    /// Unix ms.
    pub published_at: Option<i64>,
    pub duration_secs: Option<u32>,
    pub tags: Vec<String>,
    /// How many of the package's tags this video also has (when a package was given).
    pub shared_tags: Option<u32>,
}

/// How crowded the keyword is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompetitionLevel {
    Low,
    Medium,
    High,
}

/// The competition indicator with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Competition {
    /// 0–100.
    pub score: u8,
    pub level: CompetitionLevel,
    pub median_views: Option<u64>,
    pub median_subscribers: Option<u64>,
    /// 0–1: the share of top titles containing the keyword.
    pub keyword_in_title_share: f64,
    /// The formula, as documented.
    pub formula: String,
}

/// What the top titles have in common.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TitlePatterns {
    pub median_title_chars: Option<u32>,
    /// 0–1 shares of titles with the keyword, with a number (listicles), and questions.
    pub with_keyword: f64,
    pub with_number: f64,
    pub questions: f64,
    /// The most frequent words (three letters or more, the keyword's own words excluded).
    pub top_words: Vec<WordCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WordCount {
    pub word: String,
    pub count: u32,
}

/// A tag and how many top videos use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub videos: u32,
}

/// How a package's tags compare with the competitors'.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TagOverlap {
    /// The package's tags that top videos use too, most used first.
    pub shared: Vec<TagCount>,
    /// Tags several top videos use that the package lacks, most used first.
    pub missing: Vec<TagCount>,
    /// 0–1: the share of the package's tags that any top video uses.
    pub share: f64,
}

/// The research on one keyword.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Research {
    pub keyword: String,
    /// In YouTube's order (relevance).
    pub competitors: Vec<Competitor>,
    pub competition: Competition,
    pub titles: TitlePatterns,
    /// The tags most used by the top videos.
    pub common_tags: Vec<TagCount>,
    /// Against the project's newest package, when asked for one that has a package.
    pub tag_overlap: Option<TagOverlap>,
    /// Unix ms: when YouTube was asked (answers are cached).
    pub fetched_at: i64,
}

/// The formula of [`Competition::score`], as served.
pub const COMPETITION_FORMULA: &str = "round(100 × (0.4 × min(1, log10(1 + median views) / 7) \
     + 0.3 × min(1, log10(1 + median subscribers) / 7) + 0.3 × share of titles with the \
     keyword)); low < 35 ≤ medium < 65 ≤ high";

/// How many tags the lists keep.
const TOP_TAGS: usize = 25;
const TOP_WORDS: usize = 15;

fn median(mut values: Vec<u64>) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        values[mid - 1] / 2 + values[mid] / 2 + (values[mid - 1] % 2 + values[mid] % 2) / 2
    } else {
        values[mid]
    })
}

fn log_scale(value: Option<u64>) -> f64 {
    value.map_or(0.0, |v| ((1.0 + v as f64).log10() / 7.0).min(1.0))
}

fn share(count: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}

fn normalize(tag: &str) -> String {
    tag.trim().to_lowercase()
}

/// The competition indicator of `competitors` for `keyword`.
pub fn competition(keyword: &str, competitors: &[Competitor]) -> Competition {
    let keyword = keyword.trim().to_lowercase();
    let median_views = median(competitors.iter().filter_map(|c| c.views).collect());
    let median_subscribers = median(competitors.iter().filter_map(|c| c.subscribers).collect());
    let targeted = competitors
        .iter()
        .filter(|c| !keyword.is_empty() && c.title.to_lowercase().contains(&keyword))
        .count();
    let keyword_in_title_share = share(targeted, competitors.len());
    let raw = 0.4 * log_scale(median_views)
        + 0.3 * log_scale(median_subscribers)
        + 0.3 * keyword_in_title_share;
    let score = (raw * 100.0).round().clamp(0.0, 100.0) as u8;
    let level = match score {
        0..35 => CompetitionLevel::Low,
        35..65 => CompetitionLevel::Medium,
        _ => CompetitionLevel::High,
    };
    Competition {
        score,
        level,
        median_views,
        median_subscribers,
        keyword_in_title_share,
        formula: COMPETITION_FORMULA.into(),
    }
}

/// What the titles of `competitors` have in common.
pub fn title_patterns(keyword: &str, competitors: &[Competitor]) -> TitlePatterns {
    let keyword = keyword.trim().to_lowercase();
    let keyword_words: HashSet<&str> = keyword.split_whitespace().collect();
    let n = competitors.len();
    let lengths: Vec<u64> = competitors
        .iter()
        .map(|c| c.title.chars().count() as u64)
        .collect();
    let mut words: HashMap<String, u32> = HashMap::new();
    for c in competitors {
        // Each word counts once a title.
        let mut seen = HashSet::new();
        for word in c
            .title
            .split(|ch: char| !ch.is_alphanumeric())
            .map(str::to_lowercase)
            .filter(|w| w.chars().count() >= 3 && !keyword_words.contains(w.as_str()))
        {
            if seen.insert(word.clone()) {
                *words.entry(word).or_default() += 1;
            }
        }
    }
    let mut top_words: Vec<WordCount> = words
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(word, count)| WordCount { word, count })
        .collect();
    top_words.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top_words.truncate(TOP_WORDS);
    TitlePatterns {
        median_title_chars: median(lengths).and_then(|m| u32::try_from(m).ok()),
        with_keyword: share(
            competitors
                .iter()
                .filter(|c| !keyword.is_empty() && c.title.to_lowercase().contains(&keyword))
                .count(),
            n,
        ),
        with_number: share(
            competitors
                .iter()
                .filter(|c| c.title.chars().any(|ch| ch.is_ascii_digit()))
                .count(),
            n,
        ),
        questions: share(
            competitors.iter().filter(|c| c.title.contains('?')).count(),
            n,
        ),
        top_words,
    }
}

/// Each tag with the number of `competitors` using it (case-insensitive), most used first.
fn tag_counts(competitors: &[Competitor]) -> Vec<TagCount> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for c in competitors {
        let unique: HashSet<String> = c.tags.iter().map(|t| normalize(t)).collect();
        for tag in unique.into_iter().filter(|t| !t.is_empty()) {
            *counts.entry(tag).or_default() += 1;
        }
    }
    let mut out: Vec<TagCount> = counts
        .into_iter()
        .map(|(tag, videos)| TagCount { tag, videos })
        .collect();
    out.sort_by(|a, b| b.videos.cmp(&a.videos).then_with(|| a.tag.cmp(&b.tag)));
    out
}

/// The research for `keyword` over `competitors`; with `package_tags`, how they overlap.
/// Linear in the competitors' tags and titles (a set of the package's tags, one pass each).
pub fn research(
    keyword: &str,
    mut competitors: Vec<Competitor>,
    package_tags: Option<&[String]>,
    fetched_at: i64,
) -> Research {
    let counts = tag_counts(&competitors);
    let tag_overlap = package_tags.map(|tags| {
        let mine: HashSet<String> = tags.iter().map(|t| normalize(t)).collect();
        for c in &mut competitors {
            let theirs: HashSet<String> = c.tags.iter().map(|t| normalize(t)).collect();
            c.shared_tags = Some(theirs.intersection(&mine).count() as u32);
        }
        let shared: Vec<TagCount> = counts
            .iter()
            .filter(|t| mine.contains(&t.tag))
            .cloned()
            .collect();
        let missing: Vec<TagCount> = counts
            .iter()
            .filter(|t| t.videos > 1 && !mine.contains(&t.tag))
            .take(TOP_TAGS)
            .cloned()
            .collect();
        TagOverlap {
            share: share(shared.len(), mine.len()),
            shared,
            missing,
        }
    });
    Research {
        keyword: keyword.trim().to_owned(),
        competition: competition(keyword, &competitors),
        titles: title_patterns(keyword, &competitors),
        common_tags: counts.into_iter().take(TOP_TAGS).collect(),
        tag_overlap,
        competitors,
        fetched_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(
        title: &str,
        views: Option<u64>,
        subscribers: Option<u64>,
        tags: &[&str],
    ) -> Competitor {
        Competitor {
            video_id: title.into(),
            title: title.into(),
            channel_id: "c".into(),
            channel_title: "Channel".into(),
            views,
            likes: None,
            comments: None,
            subscribers,
            published_at: None,
            duration_secs: Some(600),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            shared_tags: None,
        }
    }

    #[test]
    fn the_competition_follows_the_documented_formula() {
        let competitors = vec![
            video(
                "Sourdough bread for beginners",
                Some(999_999),
                Some(9_999),
                &[],
            ),
            video("My sourdough bread recipe", Some(999_999), Some(9_999), &[]),
            video("Baking at home", Some(999_999), Some(9_999), &[]),
            video("Bread 101", None, None, &[]),
        ];
        let c = competition("Sourdough Bread", &competitors);
        assert_eq!(c.median_views, Some(999_999));
        assert_eq!(c.median_subscribers, Some(9_999));
        assert!((c.keyword_in_title_share - 0.5).abs() < 1e-9);
        // 0.4 × 6/7 + 0.3 × 4/7 + 0.3 × 0.5 = 0.6643 → 66
        assert_eq!(c.score, 66);
        assert_eq!(c.level, CompetitionLevel::High);
        let empty = competition("anything", &[]);
        assert_eq!((empty.score, empty.level), (0, CompetitionLevel::Low));
    }

    #[test]
    fn medians_take_the_middle_without_overflow() {
        assert_eq!(median(vec![3, 1, 2]), Some(2));
        assert_eq!(median(vec![u64::MAX, u64::MAX]), Some(u64::MAX));
        assert_eq!(median(vec![1, 2]), Some(1));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn tags_overlap_case_insensitively_and_missing_ones_are_named() {
        let competitors = vec![
            video("A", None, None, &["Sourdough", "bread", "starter"]),
            video("B", None, None, &["sourdough", "starter", "oven"]),
            video("C", None, None, &["SOURDOUGH"]),
        ];
        let mine = vec!["sourdough".to_owned(), "levain".to_owned()];
        let r = research("sourdough", competitors, Some(&mine), 0);
        let overlap = r.tag_overlap.unwrap();
        assert_eq!(
            overlap.shared,
            [TagCount {
                tag: "sourdough".into(),
                videos: 3
            }]
        );
        assert_eq!(
            overlap.missing,
            [TagCount {
                tag: "starter".into(),
                videos: 2
            }]
        );
        assert!((overlap.share - 0.5).abs() < 1e-9);
        assert_eq!(r.competitors[0].shared_tags, Some(1));
        assert_eq!(r.common_tags[0].tag, "sourdough");
    }

    #[test]
    fn title_patterns_count_numbers_questions_and_repeated_words() {
        let competitors = vec![
            video("7 sourdough mistakes to avoid", None, None, &[]),
            video("Why is my sourdough flat?", None, None, &[]),
            video("Sourdough mistakes: the fix", None, None, &[]),
        ];
        let p = title_patterns("sourdough", &competitors);
        assert!((p.with_keyword - 1.0).abs() < 1e-9);
        assert!((p.with_number - 1.0 / 3.0).abs() < 1e-9);
        assert!((p.questions - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            p.top_words,
            [WordCount {
                word: "mistakes".into(),
                count: 2
            }]
        );
        assert_eq!(p.median_title_chars, Some(27));
    }
}
