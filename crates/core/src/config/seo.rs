//! The `[seo]` section: the SEO studio's limits, the model it writes with, the score's
//! weights, and `[seo.youtube]`, how it reaches the YouTube Data API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Secret;

/// The SEO studio.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SeoConfig {
    /// The largest transcript accepted, in bytes; a larger one is refused with 413.
    pub transcript_max_bytes: u64,
    /// Generations one user may have queued or running at once; one more is refused with 429.
    pub generations_per_user: u32,
    /// The model that writes packages; unset, the platform's default model.
    pub model: Option<String>,
    /// Sampling temperature of the generation's model calls (0 to 2).
    pub temperature: f64,
    /// The most tokens one model call of a generation may produce.
    pub max_tokens: u32,
    /// Context window assumed for models that do not report theirs, in tokens.
    pub default_context_tokens: u32,
    /// Generation feeds (SSE) one user may hold open in this process.
    pub feeds_per_user: u32,
    /// How much each part of the score counts (normalised, so they need not sum to 100).
    pub score_weights: ScoreWeights,
    pub youtube: YoutubeConfig,
}

impl Default for SeoConfig {
    fn default() -> Self {
        Self {
            transcript_max_bytes: 1024 * 1024,
            generations_per_user: 2,
            model: None,
            temperature: 0.4,
            max_tokens: 1024,
            default_context_tokens: 8192,
            feeds_per_user: 8,
            score_weights: ScoreWeights::default(),
            youtube: YoutubeConfig::default(),
        }
    }
}

/// The weights of the score's components.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreWeights {
    pub title: f64,
    pub description: f64,
    pub keyword_alignment: f64,
    pub tags: f64,
    pub hashtags: f64,
    pub chapters: f64,
    pub thumbnail_text: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
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

impl ScoreWeights {
    fn all(&self) -> [f64; 7] {
        [
            self.title,
            self.description,
            self.keyword_alignment,
            self.tags,
            self.hashtags,
            self.chapters,
            self.thumbnail_text,
        ]
    }
}

/// The YouTube Data API: keys, where it is (tests and proxies point elsewhere), and quota.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct YoutubeConfig {
    /// An API key for public reads (keyword research, importing a video); also
    /// `YOUTUBE_API_KEY`. Without one the studio says research needs it.
    pub api_key: Option<Secret>,
    /// An OAuth client (`installed` or `web` client-secret JSON) or an `authorized_user` JSON
    /// with a refresh token, for changing a channel's videos; also `YOUTUBE_CREDENTIALS`.
    pub credentials: Option<Secret>,
    /// The Data API's base URL.
    pub api_base: String,
    /// Google's OAuth authorization and token endpoints.
    pub oauth_auth_url: String,
    pub oauth_token_url: String,
    /// Encrypts stored channel tokens (at least 32 bytes); unset, `auth.key_encryption_key`.
    pub token_encryption_key: Option<Secret>,
    /// Quota costs: `2026` (current) or `legacy`.
    pub quota_profile: String,
    /// Units a day (Google's default 10,000).
    pub daily_units: u32,
    /// `search.list` calls a day (its own bucket since mid-2026).
    pub search_calls: u32,
    /// `videos.insert` calls a day.
    pub insert_calls: u32,
    /// Costs per method that replace the profile's (e.g. `{"search.list" = 100}`).
    pub costs: BTreeMap<String, u32>,
    /// How long API answers are cached, in seconds.
    pub cache_ttl_secs: u64,
    /// Keyword researches one user may send to YouTube an hour (cached keywords are free):
    /// every user shares the project's quota.
    pub research_per_hour: u32,
    /// Attempts of one call (retried on 5xx, 429 and rate-limit 403s, never on quotaExceeded).
    pub max_attempts: u32,
    /// The first retry's back-off ceiling and the longest back-off, in milliseconds.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// Per-call timeout, in seconds.
    pub timeout_secs: u64,
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            credentials: None,
            api_base: "https://www.googleapis.com/youtube/v3".into(),
            oauth_auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            oauth_token_url: "https://oauth2.googleapis.com/token".into(),
            token_encryption_key: None,
            quota_profile: "2026".into(),
            daily_units: 10_000,
            search_calls: 100,
            insert_calls: 100,
            costs: BTreeMap::new(),
            cache_ttl_secs: 12 * 3600,
            research_per_hour: 20,
            max_attempts: 5,
            backoff_base_ms: 500,
            backoff_cap_ms: 32_000,
            timeout_secs: 20,
        }
    }
}

impl SeoConfig {
    /// What is wrong with the section, if anything.
    pub fn problem(&self) -> Option<String> {
        if !(1024..=64 * 1024 * 1024).contains(&self.transcript_max_bytes) {
            return Some("seo.transcript_max_bytes must be between 1024 and 64 MiB".into());
        }
        if self.generations_per_user == 0 || self.feeds_per_user == 0 {
            return Some(
                "seo.generations_per_user and seo.feeds_per_user must be at least 1".into(),
            );
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Some("seo.temperature must be between 0 and 2".into());
        }
        if self.max_tokens < 64 {
            return Some("seo.max_tokens must be at least 64".into());
        }
        let weights = self.score_weights.all();
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Some(
                "seo.score_weights must be non-negative numbers, at least one above 0".into(),
            );
        }
        let yt = &self.youtube;
        for (key, url) in [
            ("api_base", &yt.api_base),
            ("oauth_auth_url", &yt.oauth_auth_url),
            ("oauth_token_url", &yt.oauth_token_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || super::check_http_url(url).is_err()
            {
                return Some(format!("seo.youtube.{key} `{url}` is not an http(s) URL"));
            }
        }
        if !matches!(yt.quota_profile.as_str(), "2026" | "legacy") {
            return Some("seo.youtube.quota_profile must be `2026` or `legacy`".into());
        }
        if yt.research_per_hour == 0 {
            return Some("seo.youtube.research_per_hour must be at least 1".into());
        }
        if yt.max_attempts == 0 || yt.timeout_secs == 0 || yt.backoff_base_ms > yt.backoff_cap_ms {
            return Some(
                "seo.youtube.max_attempts and timeout_secs must be at least 1, and \
                 backoff_base_ms at most backoff_cap_ms"
                    .into(),
            );
        }
        if let Some(key) = &yt.token_encryption_key
            && key.expose().len() < 32
        {
            return Some("seo.youtube.token_encryption_key must be at least 32 bytes".into());
        }
        None
    }
}
