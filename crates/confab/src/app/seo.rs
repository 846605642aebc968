//! The SEO studio's settings and its way to YouTube, from `[seo]` and `[seo.youtube]`.

use std::sync::Arc;

use confab_core::config::Config;
use confab_store::Db;

/// The SEO studio's settings from `[seo]`.
pub(super) fn seo_settings(config: &confab_core::config::SeoConfig) -> confab_seo::SeoSettings {
    let w = &config.score_weights;
    confab_seo::SeoSettings {
        transcript_max_bytes: usize::try_from(config.transcript_max_bytes).unwrap_or(usize::MAX),
        generations_per_user: config.generations_per_user as usize,
        model: config.model.clone(),
        // Validated to 0..=2: f32 holds it closely enough.
        temperature: config.temperature as f32,
        max_tokens: config.max_tokens,
        default_context_tokens: config.default_context_tokens as usize,
        weights: confab_seo::domain::score::Weights {
            title: w.title,
            description: w.description,
            keyword_alignment: w.keyword_alignment,
            tags: w.tags,
            hashtags: w.hashtags,
            chapters: w.chapters,
            thumbnail_text: w.thumbnail_text,
        },
        feeds_per_user: config.feeds_per_user as usize,
    }
}

/// The SEO studio's way to YouTube, from `[seo.youtube]`: the Data API client (with the quota
/// ledger it reserves from), the OAuth client of `YOUTUBE_CREDENTIALS`, and the key that
/// seals channel tokens.
pub(super) fn youtube_deps(
    config: &Config,
    db: &Db,
    shared: &super::shared::Shared,
) -> anyhow::Result<confab_seo::service::YouTubeDeps> {
    use confab_seo::quota::{Bucket, BucketLimits, Charge, CostProfile, QuotaSettings};
    use confab_seo::youtube::oauth::{Credentials, OAuthClient};
    let yt = &config.seo.youtube;
    let settings = confab_seo::youtube::YouTubeSettings {
        api_base: yt.api_base.clone(),
        oauth_token_url: yt.oauth_token_url.clone(),
        oauth_auth_url: yt.oauth_auth_url.clone(),
        api_key: yt.api_key.clone(),
        timeout_ms: yt.timeout_secs.saturating_mul(1000),
        retry: confab_seo::youtube::RetrySettings {
            attempts: yt.max_attempts,
            base_ms: yt.backoff_base_ms,
            cap_ms: yt.backoff_cap_ms,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut cost_overrides = std::collections::BTreeMap::new();
    for (name, units) in &yt.costs {
        let method =
            serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
                anyhow::anyhow!(
                    "seo.youtube.costs: `{name}` is not a YouTube API method such as search.list"
                )
            })?;
        cost_overrides.insert(
            method,
            vec![Charge {
                bucket: Bucket::DailyUnits,
                amount: u64::from(*units),
            }],
        );
    }
    let clock: Arc<dyn confab_seo::quota::Clock> = Arc::new(confab_seo::quota::SystemClock);
    let quota = Arc::new(confab_seo::quota::SqlQuotaLedger::new(
        db.clone(),
        QuotaSettings {
            limits: BucketLimits {
                daily_units: u64::from(yt.daily_units),
                search_calls: u64::from(yt.search_calls),
                insert_calls: u64::from(yt.insert_calls),
            },
            profile: if yt.quota_profile == "legacy" {
                CostProfile::Legacy
            } else {
                CostProfile::Y2026
            },
            cost_overrides,
        },
        clock.clone(),
    ));
    let api = Arc::new(
        confab_seo::youtube::HttpYouTube::new(settings.clone(), quota.clone())
            .map_err(|e| anyhow::anyhow!("seo.youtube: {e}"))?,
    );
    let (oauth, operator_refresh_token) = match &yt.credentials {
        None => (None, None),
        Some(json) => {
            let credentials = Credentials::from_json(json.expose()).map_err(|e| {
                anyhow::anyhow!("seo.youtube.credentials (YOUTUBE_CREDENTIALS): {e}")
            })?;
            let (client, refresh) = match credentials {
                Credentials::Client(client) => (client, None),
                Credentials::AuthorizedUser {
                    client,
                    refresh_token,
                } => (client, Some(refresh_token)),
            };
            let oauth = OAuthClient::new(&settings, client, clock)
                .map_err(|e| anyhow::anyhow!("seo.youtube.credentials: {e}"))?;
            (Some(oauth), refresh)
        }
    };
    let sealing_key = yt
        .token_encryption_key
        .as_ref()
        .or(config.auth.key_encryption_key.as_ref());
    let sealer = match sealing_key {
        Some(key) => Some(
            confab_core::secretbox::SecretBox::from_secret(key.expose())
                .map_err(|e| anyhow::anyhow!("seo.youtube.token_encryption_key: {e}"))?,
        ),
        None => None,
    };
    Ok(confab_seo::service::YouTubeDeps {
        api,
        quota,
        cache: shared.research_cache.clone(),
        cache_ttl: std::time::Duration::from_secs(yt.cache_ttl_secs),
        has_api_key: yt.api_key.is_some(),
        oauth,
        operator_refresh_token,
        sealer,
        research_per_hour: yt.research_per_hour,
        research_counters: shared.counters.clone(),
    })
}
