//! The YouTube Data API v3: the port [`YouTubeApi`] (search, videos, channels, categories and
//! the read-change-write of a video's snippet), its typed resources and errors, and the
//! reqwest adapter [`HttpYouTube`] with retries, quota reservations and OAuth ([`oauth`]).

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

mod client;
mod errors;
pub mod oauth;
mod retry;
mod settings;
mod wire;

pub use client::HttpYouTube;
pub use errors::YouTubeError;
pub use oauth::{AccessTokens, OAuthError, TokenSource};
pub use retry::backoff;
pub use settings::{RetrySettings, YouTubeSettings};
pub use wire::parse_duration;

/// At most this many ids per `videos.list` or `channels.list` call, and results per search page.
pub const MAX_IDS: usize = 50;

/// How search results are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SearchOrder {
    #[default]
    Relevance,
    Date,
    ViewCount,
    Rating,
    Title,
}

impl SearchOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchOrder::Relevance => "relevance",
            SearchOrder::Date => "date",
            SearchOrder::ViewCount => "viewCount",
            SearchOrder::Rating => "rating",
            SearchOrder::Title => "title",
        }
    }
}

/// One `search.list` call for videos.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub q: String,
    /// 1 to 50 (0 is taken as 1, more as 50).
    pub max_results: u8,
    pub page_token: Option<String>,
    pub order: SearchOrder,
    pub region_code: Option<String>,
    pub relevance_language: Option<String>,
}

/// One page of search results: video ids, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    pub video_ids: Vec<String>,
    pub next_page_token: Option<String>,
    pub total_results: Option<u64>,
}

/// A video's snippet part, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoSnippet {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category_id: Option<String>,
    pub channel_id: String,
    pub channel_title: String,
    pub published_at: Option<Timestamp>,
    pub default_language: Option<String>,
}

/// A video's public counters; `None` where the owner hides them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoStatistics {
    pub view_count: Option<u64>,
    pub like_count: Option<u64>,
    pub comment_count: Option<u64>,
}

/// A video from `videos.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Video {
    pub id: String,
    pub snippet: VideoSnippet,
    pub statistics: VideoStatistics,
    /// From `contentDetails.duration`; `None` if it was absent or unreadable.
    pub duration_secs: Option<u32>,
}

/// A channel from `channels.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    pub title: String,
    /// `None` when the channel hides it.
    pub subscriber_count: Option<u64>,
    pub video_count: u64,
    pub view_count: u64,
}

/// A video category from `videoCategories.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    pub title: String,
    /// Whether videos may be put in it.
    pub assignable: bool,
}

/// The snippet fields to change; `None` keeps what YouTube has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnippetChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub category_id: Option<String>,
    pub default_language: Option<String>,
}

/// The YouTube Data API, as the SEO service uses it.
#[async_trait]
pub trait YouTubeApi: Send + Sync {
    /// One page of videos matching `query.q`.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, YouTubeError>;

    /// Videos by id (at most [`MAX_IDS`]); ids YouTube does not know are left out.
    async fn videos(&self, ids: &[String]) -> Result<Vec<Video>, YouTubeError>;

    /// Channels by id (at most [`MAX_IDS`]).
    async fn channels(&self, ids: &[String]) -> Result<Vec<Channel>, YouTubeError>;

    /// The video categories of a region (`US`, `FR`, …).
    async fn categories(&self, region: &str) -> Result<Vec<Category>, YouTubeError>;

    /// Reads the video's snippet with the owner's token, applies `change`, and writes the
    /// whole snippet back (YouTube overwrites every field of the parts it is sent). Returns
    /// the snippet YouTube stored.
    async fn update_video_snippet(
        &self,
        tokens: &dyn AccessTokens,
        video_id: &str,
        change: &SnippetChange,
    ) -> Result<VideoSnippet, YouTubeError>;
}
