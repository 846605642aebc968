//! The YouTube client's errors, and the mapping of Google's error bodies
//! (`{"error":{"code","message","errors":[{"domain","reason","message"}],"status"}}`) onto them.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use super::oauth::OAuthError;
use crate::quota::{Bucket, QuotaError};

#[derive(Debug, thiserror::Error)]
pub enum YouTubeError {
    /// A quota bucket is spent: Google said `quotaExceeded`, or the ledger refused before
    /// calling. Nothing is retried before `resets_at`.
    #[error("the YouTube quota ({bucket}) is spent until {resets_at}")]
    QuotaExceeded {
        bucket: Bucket,
        resets_at: Timestamp,
    },
    /// 429, or 403 `rateLimitExceeded` / `userRateLimitExceeded`, still failing after retries.
    #[error("YouTube is rate limiting these calls")]
    RateLimited { retry_after: Option<Duration> },
    /// 401: the credentials were refused (after one refresh, for OAuth).
    #[error("YouTube refused the credentials")]
    Unauthorized,
    /// The Google account must be connected again (its refresh token was revoked or expired).
    #[error("the YouTube account must be connected again")]
    ReconnectNeeded,
    #[error("not found on YouTube ({reason})")]
    NotFound { reason: String },
    #[error("YouTube refused the request: {reason}: {message}")]
    BadRequest { reason: String, message: String },
    #[error("YouTube forbids this ({reason})")]
    Forbidden { reason: String },
    /// 5xx, a timeout or no connection, still failing after retries.
    #[error("YouTube is unavailable: {0}")]
    Unavailable(String),
    /// An answer that does not match the API's documented shape.
    #[error("unexpected answer from YouTube: {0}")]
    Decode(String),
    #[error("the OAuth credentials are unusable: {0}")]
    Credentials(String),
    #[error("the quota ledger failed: {0}")]
    Ledger(String),
}

impl YouTubeError {
    /// Whether a retry may succeed (5xx, timeouts, rate limits).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            YouTubeError::Unavailable(_) | YouTubeError::RateLimited { .. }
        )
    }
}

impl From<QuotaError> for YouTubeError {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::Exhausted { bucket, resets_at } => {
                YouTubeError::QuotaExceeded { bucket, resets_at }
            }
            QuotaError::Store(e) => YouTubeError::Ledger(e.to_string()),
        }
    }
}

impl From<OAuthError> for YouTubeError {
    fn from(error: OAuthError) -> Self {
        match error {
            OAuthError::ReconnectNeeded => YouTubeError::ReconnectNeeded,
            OAuthError::Unavailable(m) => YouTubeError::Unavailable(m),
            OAuthError::Credentials(m) => YouTubeError::Credentials(m),
            OAuthError::Decode(m) => YouTubeError::Decode(m),
            OAuthError::Refused { error, .. } => YouTubeError::Credentials(error),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Body,
}

#[derive(Debug, Default, Deserialize)]
struct Body {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<Detail>,
}

#[derive(Debug, Default, Deserialize)]
struct Detail {
    #[serde(default)]
    reason: String,
}

/// What a failed answer means. `reset` is when the quota day ends, for `quotaExceeded`;
/// `bucket` is the one blamed for it.
pub(super) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    bucket: Bucket,
    reset: Timestamp,
) -> YouTubeError {
    let parsed: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let reason = parsed
        .error
        .errors
        .first()
        .map(|d| d.reason.clone())
        .unwrap_or_default();
    let message = parsed.error.message;
    match (status, reason.as_str()) {
        (_, "quotaExceeded" | "dailyLimitExceeded") => YouTubeError::QuotaExceeded {
            bucket,
            resets_at: reset,
        },
        (429, _) | (403, "rateLimitExceeded" | "userRateLimitExceeded") => {
            YouTubeError::RateLimited { retry_after }
        }
        (401, _) => YouTubeError::Unauthorized,
        (404, _) => YouTubeError::NotFound { reason },
        (403, _) => YouTubeError::Forbidden { reason },
        (500..=599, _) => YouTubeError::Unavailable(format!("status {status} {reason}")),
        _ => YouTubeError::BadRequest { reason, message },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Google's APIs).
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, domain: &str, reason: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": "m", "errors": [{"domain": domain, "reason": reason, "message": "m"}], "status": "X"}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn google_bodies_map_to_variants() {
        let reset = Timestamp::UNIX_EPOCH;
        let b = Bucket::DailyUnits;
        let c = |s, body: &[u8]| classify(s, None, body, b, reset);
        assert!(matches!(
            c(403, &body(403, "youtube.quota", "quotaExceeded")),
            YouTubeError::QuotaExceeded { .. }
        ));
        assert!(matches!(
            c(403, &body(403, "usageLimits", "rateLimitExceeded")),
            YouTubeError::RateLimited { .. }
        ));
        assert!(matches!(
            c(403, &body(403, "usageLimits", "userRateLimitExceeded")),
            YouTubeError::RateLimited { .. }
        ));
        assert!(matches!(
            c(403, &body(403, "youtube.video", "forbidden")),
            YouTubeError::Forbidden { reason } if reason == "forbidden"
        ));
        assert!(matches!(c(401, b"{}"), YouTubeError::Unauthorized));
        assert!(matches!(
            c(404, &body(404, "youtube.video", "videoNotFound")),
            YouTubeError::NotFound { reason } if reason == "videoNotFound"
        ));
        assert!(matches!(
            c(400, &body(400, "youtube.video", "invalidTitle")),
            YouTubeError::BadRequest { reason, .. } if reason == "invalidTitle"
        ));
        assert!(c(503, b"not json").is_retryable());
        assert!(c(429, b"").is_retryable());
    }
}
