//! The fake YouTube's wire format, pinned with raw HTTP: Google's error bodies and headers,
//! credentials checks, `videos.update`'s required fields, and the token endpoint's errors.

use std::time::Duration;

use confab_seo::quota::QuotaLedger;
use confab_seo::youtube::{HttpYouTube, YouTubeApi, YouTubeSettings};
use confab_testkit::youtube::{FAKE_API_KEY, FakeVideo, FakeYouTube, Fault};
use serde_json::{Value, json};

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn error_bodies_are_googles() {
    let fake = FakeYouTube::start().await.unwrap();
    let base = fake.api_base();
    let categories =
        format!("{base}/videoCategories?part=snippet&regionCode=US&key={FAKE_API_KEY}");

    fake.fail_next("videoCategories.list", 1, Fault::QuotaExceeded);
    let (status, _, body) = get(&categories).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["errors"][0]["domain"], "youtube.quota");
    assert_eq!(body["error"]["errors"][0]["reason"], "quotaExceeded");

    fake.fail_next(
        "videoCategories.list",
        1,
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    let (status, headers, _) = get(&categories).await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (429, "7")
    );

    fake.fail_next("videoCategories.list", 1, Fault::UserRateLimitExceeded);
    let (status, _, body) = get(&categories).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");

    fake.fail_next("videoCategories.list", 1, Fault::Unavailable);
    let (status, _, body) = get(&categories).await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (503, Some("backendError"))
    );

    let (status, _, body) = get(&format!(
        "{base}/videoCategories?part=snippet&regionCode=US&key=wrong"
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");

    let (status, _, body) = get(&format!(
        "{base}/search?part=snippet&q=x&maxResults=51&key={FAKE_API_KEY}"
    ))
    .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (400, Some("invalidParameter"))
    );

    let (status, headers, body) = reqwest::Client::new()
        .get(&categories)
        .bearer_auth("ya29.unknown")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r.headers().clone(), r))
        .unwrap();
    let body: Value = body.json().await.unwrap();
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    // Six calls, four charged a unit (a refused key or token costs nothing); the search 100.
    assert_eq!(fake.calls("videoCategories.list"), 6);
    assert_eq!(fake.quota_used(), 4 + 100);
}

#[tokio::test]
async fn videos_update_needs_oauth_and_a_full_snippet() {
    let fake = FakeYouTube::start().await.unwrap();
    fake.add_video(FakeVideo::new("abc", "t"));
    let url = format!("{}/videos?part=snippet", fake.api_base());
    let client = reqwest::Client::new();
    let send = |body: Value, token: Option<String>| {
        let mut request = client.put(&url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["errors"][0]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    let full = json!({"id": "abc", "snippet": {"title": "T", "categoryId": "22"}});
    assert_eq!(send(full.clone(), None).await.0, 401);
    let token = Some(fake.issue_access_token());
    assert_eq!(send(full, token.clone()).await.0, 200);
    assert_eq!(
        send(
            json!({"id": "abc", "snippet": {"categoryId": "22"}}),
            token.clone()
        )
        .await,
        (400, "invalidTitle".to_owned())
    );
    assert_eq!(
        send(
            json!({"id": "abc", "snippet": {"title": "T"}}),
            token.clone()
        )
        .await,
        (400, "invalidCategoryId".to_owned())
    );
    assert_eq!(
        send(
            json!({"id": "zzz", "snippet": {"title": "T", "categoryId": "22"}}),
            token
        )
        .await,
        (404, "videoNotFound".to_owned())
    );
    // The write replaced the writable fields and kept the read-only ones.
    let snippet = fake.video_snippet("abc").unwrap();
    assert_eq!(snippet["title"], "T");
    assert!(snippet.get("description").is_none());
    assert_eq!(snippet["channelId"], "UCfakechannel0000000000");
}

#[tokio::test]
async fn the_token_endpoint_answers_like_googles() {
    let fake = FakeYouTube::start().await.unwrap();
    let response = reqwest::Client::new()
        .post(fake.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token=nope&client_id={}&client_secret={}",
            confab_testkit::youtube::FAKE_CLIENT_ID,
            confab_testkit::youtube::FAKE_CLIENT_SECRET
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
}

#[tokio::test]
async fn a_call_that_times_out_is_retried() {
    let env = crate::youtube::env().await;
    env.fake.add_video(FakeVideo::new("abc", "t"));
    let settings = YouTubeSettings {
        timeout_ms: 200,
        ..env.settings.clone()
    };
    let ledger: std::sync::Arc<dyn QuotaLedger> = env.ledger.clone();
    let api = HttpYouTube::new(settings, ledger).unwrap();
    env.fake
        .fail_next("videos.list", 1, Fault::Delay(Duration::from_secs(2)));
    assert_eq!(api.videos(&["abc".to_owned()]).await.unwrap().len(), 1);
    assert_eq!(env.fake.calls("videos.list"), 2);
}
