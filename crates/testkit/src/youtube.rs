//! A fake YouTube Data API v3 and Google OAuth token endpoint on 127.0.0.1, speaking the real
//! wire format: `search`, `videos` (list and update), `channels` and `videoCategories` under
//! `/youtube/v3`, and `POST /token`. It checks API keys and bearer tokens, charges quota per
//! method against a daily limit, pages search results, answers with Google's error bodies,
//! injects faults on the next calls of a method, and counts calls per method.
//!
//! Method names for costs, faults and counters are Google's: `search.list`, `videos.list`,
//! `videos.update`, `channels.list`, `videoCategories.list`, and `token` for the token endpoint.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};

mod handlers;

use handlers::{categories, channels, search, token, videos_list, videos_update};

/// The API key the fake accepts.
pub const FAKE_API_KEY: &str = "fake-youtube-key";
/// The OAuth client the token endpoint accepts.
pub const FAKE_CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
pub const FAKE_CLIENT_SECRET: &str = "fake-client-secret";

/// A failure (or a delay) for one upcoming call of a method.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 503 `backendError`.
    Unavailable,
    /// 429 with `Retry-After` in seconds.
    TooManyRequests { retry_after_secs: u64 },
    /// 403 `rateLimitExceeded` (domain `usageLimits`).
    RateLimitExceeded,
    /// 403 `userRateLimitExceeded` (domain `usageLimits`).
    UserRateLimitExceeded,
    /// 403 `quotaExceeded` (domain `youtube.quota`).
    QuotaExceeded,
    /// 401 `authError`, as for an expired access token.
    ExpiredToken,
    /// Answers normally after this long.
    Delay(Duration),
}

/// A video to seed.
#[derive(Debug, Clone)]
pub struct FakeVideo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category_id: String,
    pub channel_id: String,
    pub channel_title: String,
    /// RFC 3339.
    pub published_at: String,
    pub default_language: Option<String>,
    pub view_count: u64,
    pub like_count: u64,
    pub comment_count: u64,
    pub duration_secs: u32,
}

impl FakeVideo {
    pub fn new(id: &str, title: &str) -> Self {
        Self {
            id: id.to_owned(),
            title: title.to_owned(),
            description: String::new(),
            tags: Vec::new(),
            category_id: "27".to_owned(),
            channel_id: "UCfakechannel0000000000".to_owned(),
            channel_title: "Fake Channel".to_owned(),
            published_at: "2026-01-01T00:00:00Z".to_owned(),
            default_language: None,
            view_count: 0,
            like_count: 0,
            comment_count: 0,
            duration_secs: 60,
        }
    }
}

/// A channel to seed.
#[derive(Debug, Clone)]
pub struct FakeChannel {
    pub id: String,
    pub title: String,
    pub subscriber_count: u64,
    pub hidden_subscriber_count: bool,
    pub video_count: u64,
    pub view_count: u64,
}

#[derive(Debug)]
struct StoredVideo {
    id: String,
    snippet: Value,
    views: u64,
    likes: u64,
    comments: u64,
    duration_secs: u32,
}

#[derive(Debug)]
struct Inner {
    videos: Vec<StoredVideo>,
    channels: Vec<FakeChannel>,
    categories: BTreeMap<String, Vec<(String, String, bool)>>,
    costs: HashMap<String, u64>,
    daily_limit: u64,
    used: u64,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: HashMap<String, usize>,
    access_tokens: HashMap<String, bool>,
    refresh_tokens: HashSet<String>,
    codes: HashMap<String, String>,
    token_lifetime_secs: u64,
    issued: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeYouTube {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeYouTube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeYouTube {
    /// Starts with no videos, the `US` categories 10 (Music), 22 (People & Blogs) and 27
    /// (Education), the legacy costs and 10,000 units a day.
    pub async fn start() -> anyhow::Result<Self> {
        let costs = [
            ("search.list", 100),
            ("videos.list", 1),
            ("videos.update", 50),
            ("channels.list", 1),
            ("videoCategories.list", 1),
        ];
        let us = vec![
            ("10".to_owned(), "Music".to_owned(), true),
            ("22".to_owned(), "People & Blogs".to_owned(), true),
            ("27".to_owned(), "Education".to_owned(), true),
        ];
        let shared = Arc::new(Mutex::new(Inner {
            videos: Vec::new(),
            channels: Vec::new(),
            categories: BTreeMap::from([("US".to_owned(), us)]),
            costs: costs.iter().map(|(m, c)| ((*m).to_owned(), *c)).collect(),
            daily_limit: 10_000,
            used: 0,
            faults: HashMap::new(),
            calls: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashSet::new(),
            codes: HashMap::new(),
            token_lifetime_secs: 3600,
            issued: 0,
        }));
        let app = Router::new()
            .route("/youtube/v3/search", get(search))
            .route("/youtube/v3/videos", get(videos_list).put(videos_update))
            .route("/youtube/v3/channels", get(channels))
            .route("/youtube/v3/videoCategories", get(categories))
            .route("/token", post(token))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        #[expect(
            clippy::disallowed_methods,
            reason = "a test server that lives as long as the test"
        )]
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The Data API's base (`…/youtube/v3`).
    pub fn api_base(&self) -> String {
        format!("http://{}/youtube/v3", self.addr)
    }

    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The consent page's URL (not served: browsers never reach the fake).
    pub fn auth_url(&self) -> String {
        format!("http://{}/o/oauth2/v2/auth", self.addr)
    }

    pub fn add_video(&self, v: FakeVideo) {
        let mut snippet = json!({
            "publishedAt": v.published_at, "channelId": v.channel_id, "title": v.title,
            "description": v.description, "channelTitle": v.channel_title, "tags": v.tags,
            "categoryId": v.category_id, "liveBroadcastContent": "none",
            "thumbnails": {"default": {"url": format!("https://i.ytimg.com/vi/{}/default.jpg", v.id), "width": 120, "height": 90}},
        });
        if let (Some(lang), Some(map)) = (v.default_language, snippet.as_object_mut()) {
            map.insert("defaultLanguage".to_owned(), json!(lang));
        }
        let mut inner = self.shared.lock();
        inner.videos.retain(|s| s.id != v.id);
        inner.videos.push(StoredVideo {
            id: v.id,
            snippet,
            views: v.view_count,
            likes: v.like_count,
            comments: v.comment_count,
            duration_secs: v.duration_secs,
        });
    }

    pub fn add_channel(&self, channel: FakeChannel) {
        self.shared.lock().channels.push(channel);
    }

    pub fn add_category(&self, region: &str, id: &str, title: &str, assignable: bool) {
        self.shared
            .lock()
            .categories
            .entry(region.to_owned())
            .or_default()
            .push((id.to_owned(), title.to_owned(), assignable));
    }

    /// A video's stored snippet, as `videos.list` would show it.
    pub fn video_snippet(&self, id: &str) -> Option<Value> {
        let inner = self.shared.lock();
        inner
            .videos
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.snippet.clone())
    }

    pub fn set_cost(&self, method: &str, units: u64) {
        self.shared.lock().costs.insert(method.to_owned(), units);
    }

    pub fn set_daily_limit(&self, units: u64) {
        self.shared.lock().daily_limit = units;
    }

    /// Units charged today.
    pub fn quota_used(&self) -> u64 {
        self.shared.lock().used
    }

    /// The next `n` calls of `method` meet `fault`, after those already queued.
    pub fn fail_next(&self, method: &str, n: usize, fault: Fault) {
        let mut inner = self.shared.lock();
        let queue = inner.faults.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// Calls of `method` received so far, failed ones included.
    pub fn calls(&self, method: &str) -> usize {
        self.shared.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Lets the token endpoint accept `refresh_token`.
    pub fn add_refresh_token(&self, refresh_token: &str) {
        self.shared
            .lock()
            .refresh_tokens
            .insert(refresh_token.to_owned());
    }

    /// The user revoked access: the refresh token now meets `invalid_grant`.
    pub fn revoke_refresh_token(&self, refresh_token: &str) {
        self.shared.lock().refresh_tokens.remove(refresh_token);
    }

    /// An authorization code the consent page would have sent, bound to a PKCE S256 challenge.
    pub fn add_auth_code(&self, code: &str, code_challenge: &str) {
        self.shared
            .lock()
            .codes
            .insert(code.to_owned(), code_challenge.to_owned());
    }

    /// An access token the API accepts, as if issued by the token endpoint.
    pub fn issue_access_token(&self) -> String {
        issue(&mut self.shared.lock())
    }

    /// Every access token issued so far stops working (401).
    pub fn expire_access_tokens(&self) {
        for valid in self.shared.lock().access_tokens.values_mut() {
            *valid = false;
        }
    }

    /// `expires_in` of the next tokens.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.lock().token_lifetime_secs = secs;
    }
}

fn issue(inner: &mut Inner) -> String {
    inner.issued += 1;
    let token = format!("ya29.fake-access-{}", inner.issued);
    inner.access_tokens.insert(token.clone(), true);
    token
}
