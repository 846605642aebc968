//! Backoff between retries: truncated exponential with full jitter, at least what the server
//! asked for with `Retry-After`.

use std::time::Duration;

use rand::Rng;

use super::RetrySettings;

/// How long to wait before retry number `retry` (0 for the first retry): a uniform random
/// time up to `min(cap, base * 2^retry)`, and never less than `retry_after`.
pub fn backoff(settings: &RetrySettings, retry: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling = settings
        .base_ms
        .saturating_mul(1u64.checked_shl(retry.min(62)).unwrap_or(u64::MAX))
        .min(settings.cap_ms);
    let jittered = Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling));
    retry_after.map_or(jittered, |after| after.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_truncated_and_honours_retry_after() {
        let settings = RetrySettings {
            attempts: 5,
            base_ms: 100,
            cap_ms: 250,
            max_retry_after_ms: 1_000,
        };
        for retry in 0..40 {
            assert!(backoff(&settings, retry, None) <= Duration::from_millis(250));
        }
        assert!(backoff(&settings, 0, None) <= Duration::from_millis(100));
        assert!(backoff(&settings, 3, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }
}
