//! Tests of YouTube's rules at their exact boundaries.

use super::*;
use crate::domain::TitleCandidate;
use crate::domain::TitleStrategy;

fn meta(title: &str, description: &str, tags: &[&str]) -> Metadata {
    Metadata {
        title: title.into(),
        description: description.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

fn codes(meta: &Metadata, duration: Option<u32>) -> Vec<&'static str> {
    validate(meta, duration).iter().map(|v| v.code).collect()
}

#[test]
fn titles_count_characters_not_bytes() {
    let at_limit = "ü".repeat(100);
    assert!(codes(&meta(&at_limit, "", &[]), None).is_empty());
    let over = "ü".repeat(101);
    let v = validate(&meta(&over, "", &[]), None);
    assert_eq!(v[0].code, "title_too_long");
    assert!(v[0].message.contains("101 characters"));
    assert_eq!(codes(&meta("  ", "", &[]), None), ["title_empty"]);
    assert_eq!(
        codes(&meta("a <b>", "", &[]), None),
        ["title_angle_brackets"]
    );
}

#[test]
fn descriptions_count_bytes() {
    assert!(codes(&meta("t", &"é".repeat(2_500), &[]), None).is_empty());
    let over = format!("{}x", "é".repeat(2_500));
    let v = validate(&meta("t", &over, &[]), None);
    assert_eq!(v[0].code, "description_too_long");
    assert!(v[0].message.contains("5001 bytes"), "{}", v[0].message);
    assert_eq!(
        codes(&meta("t", "a > b", &[]), None),
        ["description_angle_brackets"]
    );
}

#[test]
fn tags_are_counted_youtubes_way() {
    assert_eq!(tags_length(&["Foo-Baz".into()]), 7);
    assert_eq!(tags_length(&["Foo Baz".into()]), 9);
    assert_eq!(tags_length(&["a".into(), "b".into()]), 3);
    assert_eq!(tags_length(&[]), 0);
    // 50 tags of 9 characters: 450 + 49 commas = 499; one more character is 500.
    let mut tags: Vec<String> = (0..50).map(|i| format!("tag{i:06}")).collect();
    assert_eq!(tags_length(&tags), 499);
    tags[0].push('x');
    assert!(
        codes(
            &Metadata {
                title: "t".into(),
                description: String::new(),
                tags: tags.clone()
            },
            None
        )
        .is_empty()
    );
    tags[1].push('x');
    assert_eq!(
        codes(
            &Metadata {
                title: "t".into(),
                description: String::new(),
                tags
            },
            None
        ),
        ["tags_too_long"]
    );
    // Thirty-one tags of 31 characters are not over any invented limit, only YouTube's total.
    let many: Vec<String> = (0..12).map(|i| format!("{i:0>31}")).collect();
    assert!(
        codes(
            &Metadata {
                title: "t".into(),
                description: String::new(),
                tags: many
            },
            None
        )
        .is_empty()
    );
}

#[test]
fn hashtags_are_found_like_youtube() {
    assert_eq!(
        hashtags_in("Hi #rust and #Rust, #日本語 #a_b #2024 #x#y a#b https://e.com/#top &#38; ##z"),
        ["#rust", "#日本語", "#a_b", "#x"]
    );
    let tags = |n: usize| {
        (0..n)
            .map(|i| format!("#t{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(codes(&meta("t", &tags(15), &[]), None).is_empty());
    assert_eq!(codes(&meta("t", &tags(16), &[]), None), ["hashtags_many"]);
    assert_eq!(
        validate(&meta("t", &tags(16), &[]), None)[0].severity,
        Severity::Warning
    );
    assert_eq!(codes(&meta("t", &tags(60), &[]), None), ["hashtags_many"]);
    let v = validate(&meta("t", &tags(61), &[]), None);
    assert_eq!(
        (v[0].code, v[0].severity),
        ("hashtags_ignored", Severity::Error)
    );
}

#[test]
fn chapters_follow_youtubes_rules() {
    let good = "Hook\n\n0:00 Intro\n0:10 Middle\n1:00 End\n";
    assert!(codes(&meta("t", good, &[]), Some(70)).is_empty());
    assert!(codes(&meta("t", "no timestamps here", &[]), Some(70)).is_empty());
    assert_eq!(
        codes(&meta("t", "0:05 a\n0:20 b\n0:40 c", &[]), None),
        ["chapters_first_not_zero"]
    );
    assert_eq!(
        codes(&meta("t", "0:00 a\n0:20 b", &[]), None),
        ["chapters_too_few"]
    );
    assert_eq!(
        codes(&meta("t", "0:00 a\n0:09 b\n0:40 c", &[]), None),
        ["chapter_too_short"]
    );
    assert_eq!(
        codes(&meta("t", "0:00 a\n0:40 b\n0:20 c", &[]), None),
        ["chapters_not_ascending"]
    );
    assert_eq!(codes(&meta("t", good, &[]), Some(60)), ["chapter_past_end"]);
    assert_eq!(
        codes(&meta("t", good, &[]), Some(69)),
        ["chapter_too_short"]
    );
    assert_eq!(
        codes(&meta("t", "0:00\n0:20 b\n0:40 c", &[]), None),
        ["chapter_untitled"]
    );
}

#[test]
fn packages_add_candidates_and_thumbnail_texts() {
    let candidate = |text: &str| TitleCandidate {
        text: text.into(),
        strategy: TitleStrategy::Question,
        score: 0,
    };
    let mut package = Package {
        titles: vec![candidate("ok"); 5],
        title: "ok".into(),
        thumbnail_texts: vec!["Bake Bread".into(), "Two Words".into()],
        ..Package::default()
    };
    assert!(validate_package(&package, None).is_empty());
    package.titles[4] = candidate(&"x".repeat(101));
    package.thumbnail_texts = vec!["one".into()];
    let v = validate_package(&package, None);
    let got: Vec<(&str, Severity)> = v.iter().map(|v| (v.code, v.severity)).collect();
    assert_eq!(
        got,
        [
            ("title_candidate_too_long", Severity::Error),
            ("thumbnail_texts_count", Severity::Warning),
            ("thumbnail_text_words", Severity::Warning),
        ]
    );
    package.titles.pop();
    assert_eq!(
        validate_package(&package, None)[0].code,
        "title_candidates_count"
    );
}
