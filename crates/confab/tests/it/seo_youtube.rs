//! The SEO studio against a fake YouTube speaking the Data API's real wire format: keyword
//! research from real numbers (cached, capped per user), auditing and importing videos, the
//! quota ledger shared by every call (a `quotaExceeded` is never retried and stops further
//! calls until the reset), and a channel connected with OAuth and PKCE, its token sealed,
//! applied to with read-change-write, and marked for reconnection when Google revokes it.

use confab_testkit::youtube::{
    FAKE_API_KEY, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FakeChannel, FakeVideo, FakeYouTube, Fault,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp};

async fn studio(
    youtube: &FakeYouTube,
    tweak: impl FnOnce(&mut confab_core::config::Config),
) -> TestApp {
    let api_base = youtube.api_base();
    let token_url = youtube.token_url();
    let auth_url = youtube.auth_url();
    TestApp::start_with(move |config| {
        let yt = &mut config.seo.youtube;
        yt.api_base = api_base;
        yt.oauth_token_url = token_url;
        yt.oauth_auth_url = auth_url;
        yt.api_key = Some(confab_core::config::Secret::new(FAKE_API_KEY));
        yt.credentials = Some(confab_core::config::Secret::new(
            json!({"installed": {
                "client_id": FAKE_CLIENT_ID,
                "client_secret": FAKE_CLIENT_SECRET,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
                "redirect_uris": ["http://127.0.0.1"]
            }})
            .to_string(),
        ));
        yt.token_encryption_key = Some(confab_core::config::Secret::new("k".repeat(40)));
        yt.backoff_base_ms = 1;
        yt.backoff_cap_ms = 5;
        tweak(config);
    })
    .await
}

fn seed(youtube: &FakeYouTube) {
    for (i, (title, views, tags)) in [
        (
            "Sourdough bread for beginners",
            1_200_000,
            vec!["sourdough", "bread", "starter"],
        ),
        ("7 sourdough mistakes", 80_000, vec!["sourdough", "baking"]),
        ("Why is my bread flat?", 5_000, vec!["bread", "baking"]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut video = FakeVideo::new(&format!("vid{i}xxxxxxx"), title);
        video.view_count = views;
        video.tags = tags.into_iter().map(str::to_owned).collect();
        video.channel_id = format!("UCchannel{i}");
        video.description = format!("{title}. #sourdough");
        youtube.add_video(video);
        youtube.add_channel(FakeChannel {
            id: format!("UCchannel{i}"),
            title: format!("Channel {i}"),
            subscriber_count: 10_000 * (i as u64 + 1),
            hidden_subscriber_count: false,
            video_count: 10,
            view_count: 1_000,
        });
    }
}

async fn user(app: &TestApp, email: &str) -> String {
    app.register(email).await;
    app.login(email, PASSWORD).await.0
}

#[tokio::test]
async fn research_shows_real_numbers_cached_and_compared_with_the_package() {
    let youtube = FakeYouTube::start().await.unwrap();
    seed(&youtube);
    let app = studio(&youtube, |_| {}).await;
    let token = user(&app, "creator@example.com").await;
    let project = app
        .post(
            "/api/v1/seo/projects",
            Some(&token),
            json!({"topic": "Sourdough", "primary_keyword": "sourdough"}),
        )
        .await
        .body;
    let id = project["id"].as_str().unwrap();
    let saved = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions"),
            Some(&token),
            json!({"title": "Sourdough at home", "description": "Bread.", "tags": ["sourdough", "levain"]}),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);

    let research = app
        .get(
            &format!("/api/v1/seo/research?keyword=sourdough&project_id={id}"),
            Some(&token),
        )
        .await;
    assert_eq!(research.status, 200, "{}", research.text);
    let body = &research.body;
    let competitors = body["competitors"].as_array().unwrap();
    assert_eq!(
        competitors.len(),
        3,
        "every seeded video mentions it: {body}"
    );
    assert_eq!(competitors[0]["views"], 1_200_000);
    assert_eq!(competitors[0]["subscribers"], 10_000);
    assert_eq!(competitors[0]["shared_tags"], 1);
    assert!(
        body["competition"]["formula"]
            .as_str()
            .unwrap()
            .contains("log10")
    );
    assert!(body["competition"]["score"].as_u64().unwrap() <= 100);
    assert_eq!(body["tag_overlap"]["shared"][0]["tag"], "sourdough");
    assert_eq!(youtube.calls("search.list"), 1);
    assert_eq!(youtube.calls("videos.list"), 1);
    assert_eq!(youtube.calls("channels.list"), 1);

    // The same keyword again comes from the cache: no call, the same numbers.
    let again = app
        .get("/api/v1/seo/research?keyword=Sourdough", Some(&token))
        .await;
    assert_eq!(again.status, 200);
    let without_overlap: Vec<Value> = research.body["competitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["shared_tags"] = Value::Null;
            c
        })
        .collect();
    assert_eq!(again.body["competitors"], Value::Array(without_overlap));
    assert_eq!(youtube.calls("search.list"), 1);

    // Every call was reserved in the ledger first.
    let quota = app.get("/api/v1/seo/quota", Some(&token)).await;
    assert_eq!(quota.status, 200, "{}", quota.text);
    let used = |bucket: &str| {
        quota.body["usage"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["bucket"] == bucket)
            .map(|u| u["used"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(used("search_calls"), 1);
    assert_eq!(used("daily_units"), 102, "{}", quota.text);
    assert!(quota.body["next_reset"].as_str().unwrap().ends_with('Z'));
    app.stop().await;
}

#[tokio::test]
async fn research_needs_a_key_and_is_capped_per_user() {
    let youtube = FakeYouTube::start().await.unwrap();
    seed(&youtube);
    let app = studio(&youtube, |config| {
        config.seo.youtube.research_per_hour = 2;
    })
    .await;
    let token = user(&app, "creator@example.com").await;
    for keyword in ["one", "two"] {
        let response = app
            .get(
                &format!("/api/v1/seo/research?keyword={keyword}"),
                Some(&token),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    let third = app
        .get("/api/v1/seo/research?keyword=three", Some(&token))
        .await;
    third.assert_error(429, "too_many_researches");
    // A cached keyword is still answered.
    let cached = app
        .get("/api/v1/seo/research?keyword=one", Some(&token))
        .await;
    assert_eq!(cached.status, 200);
    app.get("/api/v1/seo/research?keyword=", Some(&token))
        .await
        .assert_error(422, "invalid_fields");
    app.stop().await;

    let keyless = studio(&youtube, |config| config.seo.youtube.api_key = None).await;
    let token = user(&keyless, "creator@example.com").await;
    let message = keyless
        .get("/api/v1/seo/research?keyword=bread", Some(&token))
        .await
        .assert_error(409, "youtube_not_configured");
    assert!(message.contains("YOUTUBE_API_KEY"), "{message}");
    keyless.stop().await;
}

#[tokio::test]
async fn a_quota_exceeded_answer_is_never_retried_and_stops_calls_until_the_reset() {
    let youtube = FakeYouTube::start().await.unwrap();
    seed(&youtube);
    let app = studio(&youtube, |_| {}).await;
    let token = user(&app, "creator@example.com").await;
    youtube.fail_next("search.list", 1, Fault::QuotaExceeded);
    let refused = app
        .get("/api/v1/seo/research?keyword=bread", Some(&token))
        .await;
    refused.assert_error(429, "youtube_quota_exceeded");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=25 * 3600).contains(&wait), "{wait}");
    assert_eq!(youtube.calls("search.list"), 1, "never retried");
    let again = app
        .get("/api/v1/seo/research?keyword=flour", Some(&token))
        .await;
    again.assert_error(429, "youtube_quota_exceeded");
    assert_eq!(youtube.calls("search.list"), 1, "refused before calling");
    // Other methods spend from other buckets and still work.
    let audit = app
        .post(
            "/api/v1/seo/videos/audit",
            Some(&token),
            json!({"video": "https://youtu.be/vid0xxxxxxx"}),
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let quota = app.get("/api/v1/seo/quota", Some(&token)).await;
    assert!(
        quota.body["usage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["bucket"] == "search_calls" && u["exhausted"] == true),
        "{}",
        quota.text
    );
    app.stop().await;
}

#[tokio::test]
async fn existing_videos_are_audited_and_imported() {
    let youtube = FakeYouTube::start().await.unwrap();
    seed(&youtube);
    let app = studio(&youtube, |_| {}).await;
    let token = user(&app, "creator@example.com").await;
    let audit = app
        .post(
            "/api/v1/seo/videos/audit",
            Some(&token),
            json!({"video": "https://www.youtube.com/watch?v=vid1xxxxxxx", "primary_keyword": "sourdough"}),
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert_eq!(audit.body["video"]["title"], "7 sourdough mistakes");
    assert_eq!(
        audit.body["metadata"]["tags"],
        json!(["sourdough", "baking"])
    );
    assert!(audit.body["report"]["score"]["total"].as_u64().unwrap() <= 100);

    app.post(
        "/api/v1/seo/videos/audit",
        Some(&token),
        json!({"video": "https://example.com/watch?v=vid1xxxxxxx"}),
    )
    .await
    .assert_error(422, "invalid_fields");
    app.post(
        "/api/v1/seo/videos/audit",
        Some(&token),
        json!({"video": "nosuchvideo"}),
    )
    .await
    .assert_error(404, "not_found");

    let project = app
        .post(
            "/api/v1/seo/projects",
            Some(&token),
            json!({"topic": "Sourdough", "primary_keyword": "sourdough"}),
        )
        .await
        .body;
    let id = project["id"].as_str().unwrap();
    let imported = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions/import"),
            Some(&token),
            json!({"video": "vid0xxxxxxx"}),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    assert_eq!(imported.body["source"], "imported");
    assert_eq!(
        imported.body["package"]["title"],
        "Sourdough bread for beginners"
    );
    app.stop().await;
}

/// Connects the user's channel the way a browser would: the consent URL, then Google's
/// redirect to the callback with a code bound to the PKCE challenge.
async fn connect(app: &TestApp, youtube: &FakeYouTube, token: &str) {
    let started = app
        .post(
            "/api/v1/seo/channel/connect",
            Some(token),
            json!({"redirect_uri": app.url("/api/v1/seo/channel/callback")}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let consent = url::Url::parse(started.body["authorization_url"].as_str().unwrap()).unwrap();
    let param = |name: &str| {
        consent
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("access_type"), "offline");
    youtube.add_auth_code("the-code", &param("code_challenge"));
    let back = callback(app, &format!("state={}&code=the-code", param("state"))).await;
    assert_eq!(back, "/seo?channel=connected");
}

/// Where the callback sends the browser.
async fn callback(app: &TestApp, query: &str) -> String {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/api/v1/seo/channel/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    response
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_connected_channel_gets_the_package_and_asks_to_reconnect_when_revoked() {
    let youtube = FakeYouTube::start().await.unwrap();
    seed(&youtube);
    let app = studio(&youtube, |_| {}).await;
    let token = user(&app, "creator@example.com").await;
    let status = app.get("/api/v1/seo/channel", Some(&token)).await;
    assert_eq!(status.body["status"], "none");
    assert_eq!(status.body["can_connect"], true);
    connect(&app, &youtube, &token).await;
    assert_eq!(
        app.get("/api/v1/seo/channel", Some(&token)).await.body["status"],
        "connected"
    );
    // The refresh token is sealed at rest.
    let stored: String = sqlx::query_scalar("SELECT refresh_token FROM seo_channels")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("xchacha20poly1305:"), "{stored}");
    assert!(!stored.contains("fake-refresh"));

    // An unknown (or used) state connects nothing; a refusal on Google's page is reported.
    assert_eq!(
        callback(&app, "state=unknown&code=the-code").await,
        "/seo?channel=failed&reason=expired"
    );
    assert_eq!(
        callback(&app, "error=access_denied&state=x").await,
        "/seo?channel=failed&reason=denied"
    );

    let project = app
        .post(
            "/api/v1/seo/projects",
            Some(&token),
            json!({"topic": "Sourdough", "primary_keyword": "sourdough", "category_id": "26"}),
        )
        .await
        .body;
    let id = project["id"].as_str().unwrap();
    let saved = app
        .post(
            &format!("/api/v1/seo/projects/{id}/versions"),
            Some(&token),
            json!({"title": "Sourdough, the easy way", "description": "Bake it. #sourdough", "tags": ["sourdough", "easy bread"]}),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let before = youtube.video_snippet("vid0xxxxxxx").unwrap();
    let applied = app
        .post(
            &format!("/api/v1/seo/projects/{id}/apply"),
            Some(&token),
            json!({"video": "https://youtu.be/vid0xxxxxxx"}),
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let after = youtube.video_snippet("vid0xxxxxxx").unwrap();
    assert_eq!(after["title"], "Sourdough, the easy way");
    assert_eq!(after["tags"], json!(["sourdough", "easy bread"]));
    assert_eq!(after["categoryId"], "26");
    // Fields the package does not set are kept as YouTube had them.
    assert_eq!(after["channelId"], before["channelId"]);
    assert_eq!(after["publishedAt"], before["publishedAt"]);

    // Google revokes the grant: the next apply asks to reconnect, and the channel says so.
    for n in 1..=10 {
        youtube.revoke_refresh_token(&format!("1//fake-refresh-{n}"));
    }
    youtube.expire_access_tokens();
    app.post(
        &format!("/api/v1/seo/projects/{id}/apply"),
        Some(&token),
        json!({"video": "vid0xxxxxxx"}),
    )
    .await
    .assert_error(409, "youtube_reconnect");
    assert_eq!(
        app.get("/api/v1/seo/channel", Some(&token)).await.body["status"],
        "reconnect"
    );
    let gone = app
        .call(Method::DELETE, "/api/v1/seo/channel", Some(&token), None)
        .await;
    assert_eq!(gone.status, 204);

    // Without a channel there is nothing to apply to.
    let other = user(&app, "other@example.com").await;
    let project = app
        .post(
            "/api/v1/seo/projects",
            Some(&other),
            json!({"topic": "Bread", "primary_keyword": "bread"}),
        )
        .await
        .body;
    let id = project["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/seo/projects/{id}/versions"),
        Some(&other),
        json!({"title": "Bread", "description": "Bread.", "tags": []}),
    )
    .await;
    app.post(
        &format!("/api/v1/seo/projects/{id}/apply"),
        Some(&other),
        json!({"video": "vid0xxxxxxx"}),
    )
    .await
    .assert_error(409, "no_channel");
    app.stop().await;
}
