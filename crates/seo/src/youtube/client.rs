//! The reqwest adapter of [`YouTubeApi`]. Every attempt reserves its cost in the quota ledger
//! first (Google charges failed calls too). 5xx, timeouts, 429 and 403 rate limits are retried
//! with truncated exponential backoff and full jitter, honouring `Retry-After`; a 401 on a
//! user's token refreshes it once and tries once more; `quotaExceeded` marks the bucket spent
//! and is never retried.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use url::Url;

use super::errors::{classify, retry_after};
use super::oauth::AccessTokens;
use super::wire::{self, ListResponse, SearchResponse};
use super::{
    Category, Channel, MAX_IDS, SearchPage, SearchQuery, SnippetChange, Video, VideoSnippet,
    YouTubeApi, YouTubeError, YouTubeSettings, backoff,
};
use crate::quota::{Bucket, Method, QuotaLedger};

/// How a call authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// The API key, for public reads.
    Key,
    /// A user's OAuth token.
    User(&'a dyn AccessTokens),
}

/// The YouTube Data API over HTTP.
#[derive(Clone)]
pub struct HttpYouTube {
    http: reqwest::Client,
    settings: YouTubeSettings,
    ledger: Arc<dyn QuotaLedger>,
}

impl std::fmt::Debug for HttpYouTube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpYouTube")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpYouTube {
    pub fn new(
        settings: YouTubeSettings,
        ledger: Arc<dyn QuotaLedger>,
    ) -> Result<Self, YouTubeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .build()
            .map_err(|e| YouTubeError::Credentials(e.to_string()))?;
        Ok(Self {
            http,
            settings,
            ledger,
        })
    }

    fn url(
        &self,
        path: &str,
        params: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> Result<Url, YouTubeError> {
        let mut url = Url::parse(&format!(
            "{}/{path}",
            self.settings.api_base.trim_end_matches('/')
        ))
        .map_err(|e| YouTubeError::Credentials(format!("api_base: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(params);
            if matches!(auth, Auth::Key) {
                // Without a key Google would refuse the call, and charge for it.
                let key = self.settings.api_key.as_ref().ok_or_else(|| {
                    YouTubeError::Credentials("no YouTube API key is configured".to_owned())
                })?;
                query.append_pair("key", key.expose());
            }
        }
        Ok(url)
    }

    /// Sends the request `build` makes until it succeeds or fails for good; the body of the
    /// successful answer.
    async fn call(
        &self,
        method: Method,
        auth: Auth<'_>,
        build: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Value, YouTubeError> {
        let retry = self.settings.retry;
        let mut retries = 0u32;
        let mut refreshed = false;
        let mut token = match auth {
            Auth::User(tokens) => Some(tokens.access_token().await?),
            Auth::Key => None,
        };
        loop {
            self.ledger.reserve(method).await?;
            let mut request = build();
            if let Some(token) = &token {
                request = request.bearer_auth(token.expose());
            }
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| YouTubeError::Unavailable(e.without_url().to_string()))?;
                    return serde_json::from_slice(&body)
                        .map_err(|e| YouTubeError::Decode(e.to_string()));
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let after = retry_after(response.headers());
                    let body = response.bytes().await.unwrap_or_default();
                    let blamed = method.own_bucket().unwrap_or(Bucket::DailyUnits);
                    classify(status, after, &body, blamed, self.ledger.next_reset())
                }
                Err(e) => YouTubeError::Unavailable(e.without_url().to_string()),
            };
            match (error, auth) {
                (YouTubeError::QuotaExceeded { bucket, resets_at }, _) => {
                    tracing::warn!(%method, %bucket, "YouTube said quotaExceeded");
                    // The answer stands even if the ledger cannot record it: Google will
                    // refuse the next call too, and that one is marked again.
                    if let Err(e) = self.ledger.mark_exhausted(bucket).await {
                        tracing::error!(%bucket, error = %e, "cannot mark the quota bucket spent");
                    }
                    return Err(YouTubeError::QuotaExceeded { bucket, resets_at });
                }
                (YouTubeError::Unauthorized, Auth::User(tokens)) if !refreshed => {
                    refreshed = true;
                    if let Some(rejected) = &token {
                        token = Some(tokens.refresh_after_rejection(rejected).await?);
                    }
                }
                (error, _) if error.is_retryable() && retries + 1 < retry.attempts => {
                    let after = match &error {
                        YouTubeError::RateLimited { retry_after } => *retry_after,
                        _ => None,
                    };
                    if after.is_some_and(|a| a > Duration::from_millis(retry.max_retry_after_ms)) {
                        return Err(error);
                    }
                    let wait = backoff(&retry, retries, after);
                    tracing::debug!(%method, %error, ?wait, "retrying a YouTube call");
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                (error, _) => return Err(error),
            }
        }
    }

    async fn get(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> Result<Value, YouTubeError> {
        let url = self.url(path, params, auth)?;
        let http = self.http.clone();
        self.call(method, auth, &move || http.get(url.clone()))
            .await
    }

    async fn list(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> Result<Vec<Value>, YouTubeError> {
        let body = self.get(method, path, params, auth).await?;
        let list: ListResponse =
            serde_json::from_value(body).map_err(|e| YouTubeError::Decode(e.to_string()))?;
        Ok(list.items)
    }
}

fn check_ids(ids: &[String]) -> Result<String, YouTubeError> {
    if ids.len() > MAX_IDS {
        return Err(YouTubeError::BadRequest {
            reason: "tooManyIds".to_owned(),
            message: format!("at most {MAX_IDS} ids per call, not {}", ids.len()),
        });
    }
    Ok(ids.join(","))
}

#[async_trait]
impl YouTubeApi for HttpYouTube {
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, YouTubeError> {
        let max = query.max_results.clamp(1, 50).to_string();
        let mut params = vec![
            ("part", "snippet"),
            ("type", "video"),
            ("q", query.q.as_str()),
            ("maxResults", max.as_str()),
            ("order", query.order.as_str()),
        ];
        if let Some(token) = &query.page_token {
            params.push(("pageToken", token));
        }
        if let Some(region) = &query.region_code {
            params.push(("regionCode", region));
        }
        if let Some(language) = &query.relevance_language {
            params.push(("relevanceLanguage", language));
        }
        let body = self
            .get(Method::SearchList, "search", &params, Auth::Key)
            .await?;
        let response: SearchResponse =
            serde_json::from_value(body).map_err(|e| YouTubeError::Decode(e.to_string()))?;
        Ok(response.into())
    }

    async fn videos(&self, ids: &[String]) -> Result<Vec<Video>, YouTubeError> {
        let joined = check_ids(ids)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = [
            ("part", "snippet,statistics,contentDetails"),
            ("id", &joined),
        ];
        let items = self
            .list(Method::VideosList, "videos", &params, Auth::Key)
            .await?;
        Ok(items.iter().filter_map(wire::video).collect())
    }

    async fn channels(&self, ids: &[String]) -> Result<Vec<Channel>, YouTubeError> {
        let joined = check_ids(ids)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = [("part", "snippet,statistics"), ("id", &joined)];
        let items = self
            .list(Method::ChannelsList, "channels", &params, Auth::Key)
            .await?;
        Ok(items.iter().filter_map(wire::channel).collect())
    }

    async fn categories(&self, region: &str) -> Result<Vec<Category>, YouTubeError> {
        let params = [("part", "snippet"), ("regionCode", region)];
        let items = self
            .list(
                Method::VideoCategoriesList,
                "videoCategories",
                &params,
                Auth::Key,
            )
            .await?;
        Ok(items.iter().filter_map(wire::category).collect())
    }

    async fn update_video_snippet(
        &self,
        tokens: &dyn AccessTokens,
        video_id: &str,
        change: &SnippetChange,
    ) -> Result<VideoSnippet, YouTubeError> {
        let auth = Auth::User(tokens);
        let params = [("part", "snippet"), ("id", video_id)];
        let items = self
            .list(Method::VideosList, "videos", &params, auth)
            .await?;
        let mut snippet = items
            .into_iter()
            .next()
            .and_then(|mut item| item.get_mut("snippet").map(Value::take))
            .ok_or_else(|| YouTubeError::NotFound {
                reason: "videoNotFound".to_owned(),
            })?;
        let Some(fields) = snippet.as_object_mut() else {
            return Err(YouTubeError::Decode("snippet is not an object".to_owned()));
        };
        if let Some(title) = &change.title {
            fields.insert("title".to_owned(), json!(title));
        }
        if let Some(description) = &change.description {
            fields.insert("description".to_owned(), json!(description));
        }
        if let Some(tags) = &change.tags {
            fields.insert("tags".to_owned(), json!(tags));
        }
        if let Some(category) = &change.category_id {
            fields.insert("categoryId".to_owned(), json!(category));
        }
        if let Some(language) = &change.default_language {
            fields.insert("defaultLanguage".to_owned(), json!(language));
        }
        let url = self.url("videos", &[("part", "snippet")], auth)?;
        let body = json!({"id": video_id, "snippet": snippet});
        let http = self.http.clone();
        let written = self
            .call(Method::VideosUpdate, auth, &move || {
                http.put(url.clone()).json(&body)
            })
            .await?;
        Ok(wire::snippet(
            written.get("snippet").unwrap_or(&Value::Null),
        ))
    }
}
