//! Tests of the repair: examples with exact results, and property tests over arbitrary
//! drafts (the repaired package has no error) and arbitrary metadata (the scorer is total).
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
    assert!(
        package.description.starts_with(
            "Bake sourdough bread at home. easy\n\nLine one.\n\nLine two.\n\n0:00 Intro"
        )
    );
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

#[test]
fn lines_are_cleaned_but_right_to_left_text_kept() {
    assert_eq!(
        clean_line("a\u{202e}b\u{2066}c\u{200f}d\u{200b}e"),
        "abc\u{200f}de"
    );
    assert_eq!(clean_line("  <b>x</b>\n\t y\u{0}z "), "bx/b y z");
    assert_eq!(
        clean_line("#tag ##two #\u{200b}three # four C#"),
        "tag two three # four C#"
    );
    assert_eq!(clean_line("שלום עולם"), "שלום עולם");
}
