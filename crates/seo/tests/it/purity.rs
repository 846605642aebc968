//! Architecture check: only the quota's SQL adapter knows SQL; the quota's rules and port and
//! the YouTube client do not.

#[test]
fn only_the_quota_store_knows_sql() {
    confab_testkit::assert_no_sql(&[
        ("quota/domain.rs", include_str!("../../src/quota/domain.rs")),
        ("quota/mod.rs", include_str!("../../src/quota/mod.rs")),
        ("youtube/mod.rs", include_str!("../../src/youtube/mod.rs")),
        (
            "youtube/client.rs",
            include_str!("../../src/youtube/client.rs"),
        ),
        (
            "youtube/oauth.rs",
            include_str!("../../src/youtube/oauth.rs"),
        ),
        (
            "youtube/errors.rs",
            include_str!("../../src/youtube/errors.rs"),
        ),
        ("youtube/wire.rs", include_str!("../../src/youtube/wire.rs")),
    ]);
    let domain = include_str!("../../src/quota/domain.rs");
    for banned in ["axum", "reqwest", "sqlx", "tokio"] {
        assert!(
            !domain.contains(banned),
            "quota/domain.rs mentions {banned}"
        );
    }
}
