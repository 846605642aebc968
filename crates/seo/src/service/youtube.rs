//! What the studio does with YouTube: keyword research from real data (cached), auditing and
//! importing an existing video's metadata, connecting a user's channel (OAuth with PKCE, the
//! refresh token sealed at rest), applying a package to one of its videos (read, change,
//! write back the whole snippet), and the quota ledger's figures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_cache::{Cache, Counters};
use confab_core::auth::Principal;
use confab_core::config::Secret;
use confab_core::secretbox::SecretBox;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::scoring::{ScoreReport, ScoreRequest};
use super::{SeoError, SeoResult, SeoService};
use crate::domain::research::{self, Competitor, Research};
use crate::domain::{Metadata, Package, Version, VersionSource};
use crate::ports::NewVersion;
use crate::quota::{BucketUsage, QuotaLedger};
use crate::youtube::oauth::{OAuthClient, TokenSource};
use crate::youtube::{SearchOrder, SearchQuery, Video, YouTubeApi};

/// How many top videos research looks at.
const RESEARCH_RESULTS: u8 = 25;
/// How long a consent flow may take, in ms.
pub(super) const CONSENT_TTL_MS: i64 = 10 * 60 * 1000;
/// The longest keyword researched, in characters.
const MAX_KEYWORD_CHARS: usize = 100;

/// What the studio needs to reach YouTube.
pub struct YouTubeDeps {
    pub api: Arc<dyn YouTubeApi>,
    pub quota: Arc<dyn QuotaLedger>,
    /// Research answers are kept here for `cache_ttl`.
    pub cache: Arc<dyn Cache>,
    pub cache_ttl: Duration,
    /// Whether an API key is configured (public reads need one).
    pub has_api_key: bool,
    /// The OAuth client of `YOUTUBE_CREDENTIALS`, for connecting channels.
    pub oauth: Option<OAuthClient>,
    /// An `authorized_user` credential's refresh token: the deployment's own channel, which
    /// admins may apply packages to.
    pub operator_refresh_token: Option<Secret>,
    /// Seals channel tokens at rest; without it channels cannot be connected.
    pub sealer: Option<SecretBox>,
    /// Research calls (cache misses) one user may make an hour.
    pub research_per_hour: u32,
    /// Where those calls are counted: in this process, or shared by every replica (Redis,
    /// split mode).
    pub research_counters: Arc<dyn Counters>,
}

/// The YouTube side of the service, with its per-user state.
pub(super) struct YouTubeAccess {
    pub(super) deps: YouTubeDeps,
    /// One token source a user, so their refreshes are single-flight.
    pub(super) tokens: parking_lot::Mutex<HashMap<Uuid, Arc<TokenSource>>>,
    pub(super) operator: Option<Arc<TokenSource>>,
    research_cap: super::ResearchCap,
}

impl YouTubeAccess {
    pub(super) fn new(deps: YouTubeDeps) -> Self {
        let operator = match (&deps.oauth, &deps.operator_refresh_token) {
            (Some(oauth), Some(token)) => {
                Some(Arc::new(TokenSource::new(oauth.clone(), token.clone())))
            }
            _ => None,
        };
        Self {
            research_cap: super::ResearchCap::new(
                deps.research_counters.clone(),
                deps.research_per_hour,
            ),
            deps,
            tokens: parking_lot::Mutex::default(),
            operator,
        }
    }
}

/// A video as the studio shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VideoSummary {
    pub id: String,
    pub title: String,
    pub channel_id: String,
    pub channel_title: String,
    pub views: Option<u64>,
    pub likes: Option<u64>,
    pub duration_secs: Option<u32>,
    pub category_id: Option<String>,
    /// Unix ms.
    pub published_at: Option<i64>,
}

/// An existing video judged by the studio's rules and scorer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VideoAudit {
    pub video: VideoSummary,
    pub metadata: Metadata,
    pub report: ScoreReport,
}

/// Research asked for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ResearchRequest {
    pub keyword: String,
    /// ISO 3166 country (`US`, `DE`): results as seen there.
    pub region: Option<String>,
    /// A language whose results are preferred (`en`, `de`).
    pub language: Option<String>,
    /// Compare with this project's newest package (its tags).
    pub project_id: Option<Uuid>,
}

/// The quota ledger's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaView {
    /// Oldest first, one entry a bucket a day.
    pub usage: Vec<BucketUsage>,
    /// RFC 3339: the next midnight in America/Los_Angeles.
    pub next_reset: String,
    /// Whether public reads are possible (an API key is configured).
    pub api_key: bool,
}

/// The video id in `text`: an id itself, or a `youtube.com/watch?v=`, `youtu.be/`, `/shorts/`,
/// `/embed/` or `/live/` URL.
pub fn parse_video_id(text: &str) -> Option<String> {
    let text = text.trim();
    let valid = |id: &str| {
        id.len() == 11
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if valid(text) {
        return Some(text.to_owned());
    }
    let url = url::Url::parse(text).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches("www.")
        .trim_start_matches("m.");
    let id = match host {
        "youtu.be" => url.path_segments()?.next().map(str::to_owned),
        "youtube.com" | "music.youtube.com" => {
            let mut segments = url.path_segments()?;
            match segments.next() {
                Some("watch") => url
                    .query_pairs()
                    .find(|(k, _)| k == "v")
                    .map(|(_, v)| v.into_owned()),
                Some("shorts" | "embed" | "live" | "v") => segments.next().map(str::to_owned),
                _ => None,
            }
        }
        _ => None,
    }?;
    valid(&id).then_some(id)
}

/// The video id in a user's `video` field, or 422 naming the field.
pub(super) fn video_id(video: &str) -> SeoResult<String> {
    parse_video_id(video).ok_or_else(|| {
        SeoError::Invalid(vec![problem(
            "video",
            "give a video id (11 characters) or a YouTube URL",
        )])
    })
}

fn summary(video: &Video) -> VideoSummary {
    VideoSummary {
        id: video.id.clone(),
        title: video.snippet.title.clone(),
        channel_id: video.snippet.channel_id.clone(),
        channel_title: video.snippet.channel_title.clone(),
        views: video.statistics.view_count,
        likes: video.statistics.like_count,
        duration_secs: video.duration_secs,
        category_id: video.snippet.category_id.clone(),
        published_at: video.snippet.published_at.map(|t| t.as_millisecond()),
    }
}

/// The competitors as cached: what YouTube said, before any project is compared.
#[derive(Serialize, Deserialize)]
struct CachedResearch {
    competitors: Vec<Competitor>,
    fetched_at: i64,
}

impl SeoService {
    fn youtube_reads(&self) -> SeoResult<&YouTubeDeps> {
        let deps = &self.youtube.deps;
        if deps.has_api_key {
            Ok(deps)
        } else {
            Err(SeoError::YouTubeNotConfigured(
                "YouTube research and imports need an API key (YOUTUBE_API_KEY)",
            ))
        }
    }

    /// The top videos for a keyword with their numbers, the competition indicator, title
    /// patterns and tags, and how the project's newest package's tags compare.
    pub async fn research(
        &self,
        principal: &Principal,
        request: &ResearchRequest,
    ) -> SeoResult<Research> {
        let deps = self.youtube_reads()?;
        let keyword = request.keyword.trim();
        let mut problems = Vec::new();
        if keyword.is_empty() || keyword.chars().count() > MAX_KEYWORD_CHARS {
            problems.push(problem(
                "keyword",
                format!("give a keyword of 1 to {MAX_KEYWORD_CHARS} characters"),
            ));
        }
        let region = request
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if region.is_some_and(|r| r.len() != 2 || !r.bytes().all(|b| b.is_ascii_alphabetic())) {
            problems.push(problem(
                "region",
                "a region is a two-letter country code such as US",
            ));
        }
        let language = match request.language.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(tag) => match crate::domain::project::normalize_language(tag) {
                Ok(tag) => Some(tag),
                Err(message) => {
                    problems.push(problem("language", message));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(SeoError::Invalid(problems));
        }
        let package_tags = match request.project_id {
            Some(id) => {
                let project = self.store.project(principal.user_id, id).await?;
                match project.latest_version {
                    Some(n) => Some(
                        self.store
                            .version(principal.user_id, id, n)
                            .await?
                            .package
                            .tags,
                    ),
                    None => None,
                }
            }
            None => None,
        };
        let region = region.map(str::to_ascii_uppercase);
        let key = format!(
            "seo:research:v1:{}:{}:{}",
            region.as_deref().unwrap_or("-"),
            language.as_deref().unwrap_or("-"),
            keyword.to_lowercase()
        );
        let cached = match deps.cache.get(&key).await {
            Some(bytes) => serde_json::from_slice::<CachedResearch>(&bytes).ok(),
            None => None,
        };
        let cached = match cached {
            Some(hit) => hit,
            None => {
                self.youtube.research_cap.take(principal.user_id).await?;
                let fresh = CachedResearch {
                    competitors: self
                        .fetch_competitors(deps, keyword, region, language)
                        .await?,
                    fetched_at: confab_core::now_ms(),
                };
                if let Ok(bytes) = serde_json::to_vec(&fresh) {
                    deps.cache.set(key, bytes, deps.cache_ttl).await;
                }
                fresh
            }
        };
        Ok(research::research(
            keyword,
            cached.competitors,
            package_tags.as_deref(),
            cached.fetched_at,
        ))
    }

    /// `search.list`, then `videos.list` for the results, then `channels.list` for their
    /// channels: three calls for up to 25 competitors.
    async fn fetch_competitors(
        &self,
        deps: &YouTubeDeps,
        keyword: &str,
        region: Option<String>,
        language: Option<String>,
    ) -> SeoResult<Vec<Competitor>> {
        let page = deps
            .api
            .search(&SearchQuery {
                q: keyword.to_owned(),
                max_results: RESEARCH_RESULTS,
                page_token: None,
                order: SearchOrder::Relevance,
                region_code: region,
                relevance_language: language,
            })
            .await?;
        if page.video_ids.is_empty() {
            return Ok(Vec::new());
        }
        let videos = deps.api.videos(&page.video_ids).await?;
        let mut channel_ids: Vec<String> = videos
            .iter()
            .map(|v| v.snippet.channel_id.clone())
            .filter(|c| !c.is_empty())
            .collect();
        channel_ids.sort();
        channel_ids.dedup();
        let channels = if channel_ids.is_empty() {
            Vec::new()
        } else {
            deps.api.channels(&channel_ids).await?
        };
        let subscribers: HashMap<&str, Option<u64>> = channels
            .iter()
            .map(|c| (c.id.as_str(), c.subscriber_count))
            .collect();
        // In search order; videos YouTube no longer has are left out.
        let by_id: HashMap<&str, &Video> = videos.iter().map(|v| (v.id.as_str(), v)).collect();
        Ok(page
            .video_ids
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|v| Competitor {
                video_id: v.id.clone(),
                title: v.snippet.title.clone(),
                channel_id: v.snippet.channel_id.clone(),
                channel_title: v.snippet.channel_title.clone(),
                views: v.statistics.view_count,
                likes: v.statistics.like_count,
                comments: v.statistics.comment_count,
                subscribers: subscribers
                    .get(v.snippet.channel_id.as_str())
                    .copied()
                    .flatten(),
                published_at: v.snippet.published_at.map(|t| t.as_millisecond()),
                duration_secs: v.duration_secs,
                tags: v.snippet.tags.clone(),
                shared_tags: None,
            })
            .collect())
    }

    async fn fetch_video(&self, video: &str) -> SeoResult<Video> {
        let deps = self.youtube_reads()?;
        let id = video_id(video)?;
        deps.api
            .videos(std::slice::from_ref(&id))
            .await?
            .into_iter()
            .next()
            .ok_or(SeoError::NotFound("video"))
    }

    /// An existing video's metadata, judged by the studio's rules and scorer.
    pub async fn audit_video(
        &self,
        video: &str,
        primary_keyword: Option<&str>,
    ) -> SeoResult<VideoAudit> {
        let found = self.fetch_video(video).await?;
        let metadata = Metadata {
            title: found.snippet.title.clone(),
            description: found.snippet.description.clone(),
            tags: found.snippet.tags.clone(),
        };
        let report = self.score(&ScoreRequest {
            metadata: metadata.clone(),
            primary_keyword: primary_keyword.unwrap_or_default().to_owned(),
            duration_secs: found.duration_secs,
            ..ScoreRequest::default()
        })?;
        Ok(VideoAudit {
            video: summary(&found),
            metadata,
            report,
        })
    }

    /// Stores an existing video's metadata as the project's newest version, so it can be
    /// compared, edited and scored like a generated one. Refused (422) when it breaks a rule.
    pub async fn import_video(
        &self,
        principal: &Principal,
        project_id: Uuid,
        video: &str,
    ) -> SeoResult<Version> {
        let project = self.store.project(principal.user_id, project_id).await?;
        let found = self.fetch_video(video).await?;
        let mut package = Package {
            titles: Vec::new(),
            title: found.snippet.title,
            description: found.snippet.description,
            tags: found.snippet.tags,
            thumbnail_texts: Vec::new(),
        };
        let score = self.check_package(&project, &mut package)?;
        Ok(self
            .store
            .add_version(
                principal.user_id,
                project_id,
                NewVersion {
                    source: VersionSource::Imported,
                    author: principal.user_id,
                    package,
                    score,
                    model: None,
                    job_id: None,
                },
                confab_core::now_ms(),
            )
            .await?)
    }

    /// The quota spent per bucket per day, newest `days` days.
    pub async fn quota(&self, days: u32) -> SeoResult<QuotaView> {
        let deps = &self.youtube.deps;
        let usage = deps
            .quota
            .usage(days)
            .await
            .map_err(|e| SeoError::YouTube(e.into()))?;
        Ok(QuotaView {
            usage,
            next_reset: deps.quota.next_reset().to_string(),
            api_key: deps.has_api_key,
        })
    }
}

pub(super) fn problem(
    field: &str,
    message: impl Into<String>,
) -> crate::domain::project::FieldProblem {
    crate::domain::project::FieldProblem {
        field: field.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_ids_come_from_ids_and_every_youtube_url_form() {
        let id = "dQw4w9WgXcQ";
        for text in [
            id,
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42",
            "https://youtu.be/dQw4w9WgXcQ?si=x",
            "https://m.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtube.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ",
        ] {
            assert_eq!(parse_video_id(text).as_deref(), Some(id), "{text}");
        }
        for bad in [
            "short",
            "https://example.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?v=bad",
            "https://youtube.com/channel/UC123",
            "dQw4w9WgXc!",
        ] {
            assert_eq!(parse_video_id(bad), None, "{bad}");
        }
    }
}
