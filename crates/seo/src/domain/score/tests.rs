//! Tests of the scorer: exact points for known metadata, weights, and title scores.
use super::*;

fn ctx() -> ScoreContext {
    ScoreContext {
        primary_keyword: "sourdough bread".into(),
        secondary_keywords: vec!["starter".into(), "bread baking".into()],
        duration_secs: Some(600),
        thumbnail_texts: vec!["Crust Like a Bakery".into(), "No Knead Needed".into()],
    }
}

fn good() -> Metadata {
    let body = "We feed the starter, mix the dough and bake. ".repeat(25);
    Metadata {
        title: "Sourdough Bread for Beginners: Your First Loaf at Home".into(),
        description: format!(
            "Sourdough bread at home, step by step.\n\n{body}\n\n0:00 Intro\n1:00 Starter\n\
             4:00 Baking\n\nRecipe: https://example.com\n\n#SourdoughBread #baking #bread"
        ),
        tags: [
            "sourdough bread",
            "sourdough",
            "bread baking",
            "starter",
            "how to make sourdough bread",
            "sourdough bread for beginners",
            "easy sourdough bread recipe",
            "homemade bread",
            "artisan bread",
            "no knead bread recipe",
            "bread",
            "baking at home",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[test]
fn a_well_made_package_scores_full_marks_and_explains_it() {
    let s = score(&good(), &ctx(), &Weights::default());
    let failed: Vec<(&str, &str)> = s
        .components
        .iter()
        .flat_map(|c| {
            c.checks
                .iter()
                .filter(|k| !k.passed)
                .map(move |k| (c.name, k.name))
        })
        .collect();
    assert_eq!(failed, []);
    assert_eq!(s.total, 100);
    let names: Vec<&str> = s.components.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "title",
            "description",
            "keyword_alignment",
            "tags",
            "hashtags",
            "chapters",
            "thumbnail_text"
        ]
    );
    assert!(s.components.iter().all(|c| c.recommendations.is_empty()));
}

#[test]
fn empty_metadata_scores_low_with_recommendations() {
    let ctx = ScoreContext {
        thumbnail_texts: vec![],
        ..ctx()
    };
    let s = score(&Metadata::default(), &ctx, &Weights::default());
    assert_eq!(s.total, 0);
    let title = &s.components[0];
    assert_eq!(title.max_points, 25.0);
    assert!(
        title
            .recommendations
            .iter()
            .any(|r| r.contains("primary keyword"))
    );
}

#[test]
fn each_failed_check_costs_its_share() {
    let mut meta = good();
    meta.title = "SOURDOUGH BREAD IS EASY!!".into();
    let s = score(&meta, &ctx(), &Weights::default());
    let title = &s.components[0];
    // Three of six checks fail: length, shouting, punctuation.
    assert_eq!(title.points, 12.5);
    assert_eq!(s.total, 88);
}

#[test]
fn titles_score_higher_with_the_keyword_early() {
    let ctx = ctx();
    let early = score_title("Sourdough Bread Made Simple for Complete Beginners", &ctx);
    let late = score_title(
        "A Simple Guide for Complete Beginners to Sourdough Bread",
        &ctx,
    );
    let missing = score_title(
        "A Simple Guide for Complete Beginners to Baking at Home",
        &ctx,
    );
    assert!(early > late && late > missing, "{early} {late} {missing}");
    assert_eq!(early, 100);
}

#[test]
fn weights_are_normalised_and_configurable() {
    let weights: Weights = serde_json::from_str(r#"{"title": 50}"#).unwrap();
    assert_eq!(weights.description, 20.0);
    assert!(serde_json::from_str::<Weights>(r#"{"titel": 5}"#).is_err());
    let only_title = Weights {
        title: 1.0,
        description: 0.0,
        keyword_alignment: 0.0,
        tags: 0.0,
        hashtags: 0.0,
        chapters: f64::NAN,
        thumbnail_text: -4.0,
    };
    let s = score(&good(), &ctx(), &only_title);
    assert_eq!(s.components[0].max_points, 100.0);
    assert_eq!(s.total, 100);
    let zero = Weights {
        title: 0.0,
        description: 0.0,
        keyword_alignment: 0.0,
        tags: 0.0,
        hashtags: 0.0,
        chapters: 0.0,
        thumbnail_text: 0.0,
    };
    assert_eq!(
        score(&good(), &ctx(), &zero),
        score(&good(), &ctx(), &Weights::default())
    );
}

#[test]
fn short_videos_need_no_chapters() {
    let mut ctx = ctx();
    ctx.duration_secs = Some(59);
    let meta = Metadata {
        description: "no chapters".into(),
        ..good()
    };
    let s = score(&meta, &ctx, &Weights::default());
    assert!(s.components[5].checks.iter().all(|c| c.passed));
}

#[test]
fn evaluate_is_validate_package_and_score() {
    let package = Package {
        title: good().title,
        description: good().description,
        tags: good().tags,
        thumbnail_texts: ctx().thumbnail_texts,
        ..Package::default()
    };
    let (violations, s) = evaluate(&package, &ctx(), &Weights::default());
    assert_eq!(violations, rules::validate_package(&package, Some(600)));
    assert_eq!(s, score(&package.metadata(), &ctx(), &Weights::default()));
}

#[test]
fn words_are_counted_like_split_whitespace() {
    for text in [
        "",
        "  ",
        "one",
        " two  words ",
        "a\tb\nc\x0bd\x0ce\rf",
        "é ü",
        "a\u{3000}b",
    ] {
        assert_eq!(
            word_count(text),
            text.split_whitespace().count(),
            "{text:?}"
        );
    }
}
