//! The YouTube client's settings: where Google is (tests point these at a fake), the API key,
//! timeouts and the retry policy.

use confab_core::config::Secret;
use serde::{Deserialize, Serialize};

/// How failed calls are retried: truncated exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first backoff's ceiling, doubled at each retry.
    pub base_ms: u64,
    /// No backoff is longer than this.
    pub cap_ms: u64,
    /// A `Retry-After` longer than this is not waited for: the call fails as rate limited.
    pub max_retry_after_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_ms: 500,
            cap_ms: 32_000,
            max_retry_after_ms: 60_000,
        }
    }
}

/// Settings of [`super::HttpYouTube`] and [`super::oauth::OAuthClient`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct YouTubeSettings {
    /// The Data API's base, without a trailing slash.
    pub api_base: String,
    pub oauth_token_url: String,
    pub oauth_auth_url: String,
    /// The API key for public reads (`YOUTUBE_API_KEY`).
    pub api_key: Option<Secret>,
    /// The whole request, response body included.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub retry: RetrySettings,
    /// Access tokens are refreshed this long before they expire.
    pub refresh_early_secs: u64,
}

impl Default for YouTubeSettings {
    fn default() -> Self {
        Self {
            api_base: "https://www.googleapis.com/youtube/v3".to_owned(),
            oauth_token_url: "https://oauth2.googleapis.com/token".to_owned(),
            oauth_auth_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
            api_key: None,
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            retry: RetrySettings::default(),
            refresh_early_secs: 60,
        }
    }
}
