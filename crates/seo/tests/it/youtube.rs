//! The YouTube client against the fake YouTube: typed resources, search pages, the retry
//! matrix (5xx, 429 with `Retry-After`, 403 rate limits, 401 with one refresh), `quotaExceeded`
//! never retried and then refused locally, and `videos.update` as read-change-write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_core::config::Secret;
use confab_seo::quota::{Bucket, Clock, ManualClock, QuotaLedger, QuotaSettings};
use confab_seo::youtube::oauth::{ClientSecret, OAuthClient, TokenSet};
use confab_seo::youtube::{
    HttpYouTube, RetrySettings, SearchOrder, SearchQuery, SnippetChange, TokenSource, YouTubeApi,
    YouTubeError, YouTubeSettings,
};
use confab_testkit::TestDb;
use confab_testkit::youtube::{
    FAKE_API_KEY, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FakeChannel, FakeVideo, FakeYouTube, Fault,
};
use jiff::Timestamp;

pub struct Env {
    pub fake: FakeYouTube,
    pub api: HttpYouTube,
    pub ledger: Arc<dyn QuotaLedger>,
    pub settings: YouTubeSettings,
    pub clock: ManualClock,
    _db: TestDb,
}

/// Settings pointing at `fake`, with backoff short enough for tests.
pub fn settings(fake: &FakeYouTube) -> YouTubeSettings {
    YouTubeSettings {
        api_base: fake.api_base(),
        oauth_token_url: fake.token_url(),
        oauth_auth_url: fake.auth_url(),
        api_key: Some(Secret::new(FAKE_API_KEY)),
        timeout_ms: 5_000,
        connect_timeout_ms: 1_000,
        retry: RetrySettings {
            attempts: 4,
            base_ms: 1,
            cap_ms: 5,
            max_retry_after_ms: 3_000,
        },
        refresh_early_secs: 60,
    }
}

pub async fn env() -> Env {
    let fake = FakeYouTube::start().await.unwrap();
    let clock = ManualClock::new(Timestamp::now());
    let (ledger, db) = crate::quota::sql_ledger(QuotaSettings::default(), clock.clone()).await;
    let settings = settings(&fake);
    let api = HttpYouTube::new(settings.clone(), ledger.clone()).unwrap();
    Env {
        fake,
        api,
        ledger,
        settings,
        clock,
        _db: db,
    }
}

pub fn oauth_client(env: &Env) -> OAuthClient {
    let client = ClientSecret {
        client_id: FAKE_CLIENT_ID.to_owned(),
        client_secret: Secret::new(FAKE_CLIENT_SECRET),
        auth_uri: None,
        token_uri: None,
        redirect_uris: Vec::new(),
    };
    OAuthClient::new(&env.settings, client, Arc::new(env.clock.clone())).unwrap()
}

/// A token source already holding a valid access token, so the token endpoint is only called
/// for refreshes.
fn tokens(env: &Env) -> TokenSource {
    env.fake.add_refresh_token("1//refresh");
    let tokens = TokenSet {
        access_token: Secret::new(env.fake.issue_access_token()),
        expires_at: env.clock.now() + jiff::SignedDuration::from_hours(1),
        refresh_token: Some(Secret::new("1//refresh")),
        scope: None,
    };
    TokenSource::with_tokens(oauth_client(env), tokens).unwrap()
}

async fn units_used(env: &Env, bucket: Bucket) -> (u64, bool) {
    let usage = env.ledger.usage(1).await.unwrap();
    let row = usage.iter().find(|u| u.bucket == bucket).unwrap();
    (row.used, row.exhausted)
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn search_pages_through_results() {
    let env = env().await;
    for i in 0..7 {
        let mut v = FakeVideo::new(&format!("vid{i}"), &format!("Rust tutorial part {i}"));
        v.view_count = i;
        env.fake.add_video(v);
    }
    env.fake.add_video(FakeVideo::new("other", "Cooking pasta"));
    let mut query = SearchQuery {
        q: "rust tutorial".to_owned(),
        max_results: 3,
        order: SearchOrder::ViewCount,
        ..SearchQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = env.api.search(&query).await.unwrap();
        assert_eq!(page.total_results, Some(7));
        seen.extend(page.video_ids);
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ids(&["vid6", "vid5", "vid4", "vid3", "vid2", "vid1", "vid0"])
    );
    assert_eq!(env.fake.calls("search.list"), 3);
    assert_eq!(units_used(&env, Bucket::DailyUnits).await, (300, false));
    assert_eq!(units_used(&env, Bucket::SearchCalls).await, (3, false));
}

#[tokio::test]
async fn videos_channels_and_categories_are_typed() {
    let env = env().await;
    let mut v = FakeVideo::new("abc", "A title");
    v.tags = ids(&["one", "two words"]);
    v.view_count = 1234;
    v.like_count = 56;
    v.comment_count = 7;
    v.duration_secs = 253;
    env.fake.add_video(v);
    let videos = env.api.videos(&ids(&["abc", "missing"])).await.unwrap();
    assert_eq!(videos.len(), 1);
    let video = &videos[0];
    assert_eq!(video.snippet.title, "A title");
    assert_eq!(video.snippet.tags, ids(&["one", "two words"]));
    assert_eq!(video.snippet.category_id.as_deref(), Some("27"));
    assert_eq!(
        video.snippet.published_at,
        Some("2026-01-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        (
            video.statistics.view_count,
            video.statistics.like_count,
            video.statistics.comment_count
        ),
        (Some(1234), Some(56), Some(7))
    );
    assert_eq!(video.duration_secs, Some(253));

    env.fake.add_channel(FakeChannel {
        id: "UC1".to_owned(),
        title: "Chan".to_owned(),
        subscriber_count: 900,
        hidden_subscriber_count: false,
        video_count: 12,
        view_count: 5000,
    });
    let channels = env.api.channels(&ids(&["UC1"])).await.unwrap();
    assert_eq!(
        (channels[0].subscriber_count, channels[0].video_count),
        (Some(900), 12)
    );

    let categories = env.api.categories("US").await.unwrap();
    assert!(
        categories
            .iter()
            .any(|c| c.id == "27" && c.title == "Education" && c.assignable)
    );

    let too_many: Vec<String> = (0..51).map(|i| format!("v{i}")).collect();
    assert!(matches!(
        env.api.videos(&too_many).await,
        Err(YouTubeError::BadRequest { .. })
    ));
    assert_eq!(env.fake.calls("videos.list"), 1);

    // Without an API key nothing is sent, and nothing spent.
    let keyless = YouTubeSettings {
        api_key: None,
        ..env.settings.clone()
    };
    let api = HttpYouTube::new(keyless, env.ledger.clone()).unwrap();
    assert!(matches!(
        api.categories("US").await,
        Err(YouTubeError::Credentials(_))
    ));
    assert_eq!(env.fake.calls("videoCategories.list"), 1);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let env = env().await;
    env.fake.add_video(FakeVideo::new("abc", "t"));
    let one = ids(&["abc"]);

    env.fake.fail_next("videos.list", 1, Fault::Unavailable);
    assert_eq!(env.api.videos(&one).await.unwrap().len(), 1);
    assert_eq!(env.fake.calls("videos.list"), 2);
    // Both attempts were charged, as Google charges failed calls.
    assert_eq!(units_used(&env, Bucket::DailyUnits).await.0, 2);

    env.fake
        .fail_next("videos.list", 1, Fault::RateLimitExceeded);
    env.fake
        .fail_next("videos.list", 1, Fault::UserRateLimitExceeded);
    env.api.videos(&one).await.unwrap();
    assert_eq!(env.fake.calls("videos.list"), 5);

    let started = Instant::now();
    env.fake.fail_next(
        "videos.list",
        1,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    env.api.videos(&one).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(env.fake.calls("videos.list"), 7);

    // Attempts are bounded (4 here).
    env.fake.fail_next("videos.list", 4, Fault::Unavailable);
    assert!(matches!(
        env.api.videos(&one).await,
        Err(YouTubeError::Unavailable(_))
    ));
    assert_eq!(env.fake.calls("videos.list"), 11);

    // A Retry-After beyond the setting's ceiling is not waited for.
    env.fake.fail_next(
        "videos.list",
        1,
        Fault::TooManyRequests {
            retry_after_secs: 3600,
        },
    );
    assert!(matches!(
        env.api.videos(&one).await,
        Err(YouTubeError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(3600)
    ));
}

#[tokio::test]
async fn quota_exceeded_is_never_retried_and_then_refused_locally() {
    let env = env().await;
    env.fake.add_video(FakeVideo::new("abc", "t"));
    env.fake.fail_next("videos.list", 1, Fault::QuotaExceeded);
    let error = env.api.videos(&ids(&["abc"])).await.unwrap_err();
    assert!(
        matches!(error, YouTubeError::QuotaExceeded { bucket: Bucket::DailyUnits, resets_at } if resets_at == env.ledger.next_reset()),
        "{error:?}"
    );
    assert_eq!(env.fake.calls("videos.list"), 1);
    assert_eq!(units_used(&env, Bucket::DailyUnits).await, (1, true));
    // The next call is refused without reaching YouTube.
    assert!(matches!(
        env.api.channels(&ids(&["UC1"])).await,
        Err(YouTubeError::QuotaExceeded { .. })
    ));
    assert_eq!(env.fake.calls("channels.list"), 0);

    // A search's quotaExceeded is blamed on the search bucket: other reads go on.
    let env = super::youtube::env().await;
    env.fake.fail_next("search.list", 1, Fault::QuotaExceeded);
    let query = SearchQuery {
        q: "x".to_owned(),
        max_results: 5,
        ..SearchQuery::default()
    };
    assert!(matches!(
        env.api.search(&query).await,
        Err(YouTubeError::QuotaExceeded {
            bucket: Bucket::SearchCalls,
            ..
        })
    ));
    assert!(env.api.search(&query).await.is_err());
    assert_eq!(env.fake.calls("search.list"), 1);
    env.api.categories("US").await.unwrap();
}

#[tokio::test]
async fn the_fakes_own_daily_limit_answers_quota_exceeded() {
    let env = env().await;
    env.fake.set_daily_limit(1);
    env.api.categories("US").await.unwrap();
    assert!(matches!(
        env.api.categories("US").await,
        Err(YouTubeError::QuotaExceeded { .. })
    ));
    assert_eq!(env.fake.calls("videoCategories.list"), 2);
    assert_eq!(env.fake.quota_used(), 1);
}

#[tokio::test]
async fn update_is_read_change_write_and_keeps_other_fields() {
    let env = env().await;
    let mut v = FakeVideo::new("abc", "Old title");
    v.description = "A long description".to_owned();
    v.tags = ids(&["keep", "these"]);
    v.category_id = "22".to_owned();
    v.default_language = Some("en".to_owned());
    env.fake.add_video(v);
    let tokens = tokens(&env);
    let change = SnippetChange {
        title: Some("New title".to_owned()),
        ..SnippetChange::default()
    };
    let written = env
        .api
        .update_video_snippet(&tokens, "abc", &change)
        .await
        .unwrap();
    assert_eq!(written.title, "New title");
    let stored = env.fake.video_snippet("abc").unwrap();
    assert_eq!(stored["title"], "New title");
    assert_eq!(stored["description"], "A long description");
    assert_eq!(stored["tags"], serde_json::json!(["keep", "these"]));
    assert_eq!(stored["categoryId"], "22");
    assert_eq!(stored["defaultLanguage"], "en");
    assert_eq!(
        (
            env.fake.calls("videos.list"),
            env.fake.calls("videos.update")
        ),
        (1, 1)
    );
    // One videos.list unit and fifty for the update.
    assert_eq!(units_used(&env, Bucket::DailyUnits).await.0, 51);

    let empty_title = SnippetChange {
        title: Some(String::new()),
        ..SnippetChange::default()
    };
    assert!(matches!(
        env.api.update_video_snippet(&tokens, "abc", &empty_title).await,
        Err(YouTubeError::BadRequest { reason, .. }) if reason == "invalidTitle"
    ));
    assert_eq!(env.fake.calls("videos.update"), 2);
    assert!(matches!(
        env.api.update_video_snippet(&tokens, "nope", &change).await,
        Err(YouTubeError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let env = env().await;
    env.fake.add_video(FakeVideo::new("abc", "t"));
    let tokens = tokens(&env);
    let change = SnippetChange {
        description: Some("d".to_owned()),
        ..SnippetChange::default()
    };
    env.fake.fail_next("videos.update", 1, Fault::ExpiredToken);
    env.api
        .update_video_snippet(&tokens, "abc", &change)
        .await
        .unwrap();
    assert_eq!(env.fake.calls("token"), 1);
    assert_eq!(env.fake.calls("videos.update"), 2);

    env.fake.fail_next("videos.update", 2, Fault::ExpiredToken);
    assert!(matches!(
        env.api.update_video_snippet(&tokens, "abc", &change).await,
        Err(YouTubeError::Unauthorized)
    ));
    assert_eq!(env.fake.calls("token"), 2);
    assert_eq!(env.fake.calls("videos.update"), 4);

    // A revoked grant surfaces as "connect the account again".
    env.fake.expire_access_tokens();
    env.fake.revoke_refresh_token("1//refresh");
    assert!(matches!(
        env.api.update_video_snippet(&tokens, "abc", &change).await,
        Err(YouTubeError::ReconnectNeeded)
    ));
}
