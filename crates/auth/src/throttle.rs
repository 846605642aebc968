//! The per-IP throttle on auth endpoints: GCRA through the [`RateLimiter`] port, so with the
//! shared adapter (Redis, split mode) an address has one allowance across every replica, and
//! all-in-one keeps it in this process.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use confab_cache::{Rate, RateLimiter};
use confab_core::ApiError;
use confab_core::net::throttle_key;

pub struct IpThrottle {
    limiter: Arc<dyn RateLimiter>,
    rate: Rate,
}

impl std::fmt::Debug for IpThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpThrottle")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl IpThrottle {
    /// `per_minute` requests a minute per address, in bursts of up to `burst` (each at least
    /// 1), counted in `limiter`.
    pub fn new(per_minute: u32, burst: u32, limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            limiter,
            rate: Rate::per_minute(per_minute.max(1)).with_burst(burst.max(1)),
        }
    }

    /// The throttle over the in-process limiter (one process, tests).
    pub fn in_process(per_minute: u32, burst: u32) -> Self {
        Self::new(
            per_minute,
            burst,
            Arc::new(confab_cache::MemoryRateLimiter::new()),
        )
    }

    /// Takes one request from `ip`'s allowance, or says how long to wait. IPv6 addresses are
    /// counted by their /64 (one host commonly holds a whole /64). Callers without a known
    /// address share one bucket. When the limiter's store cannot answer, the request goes
    /// ahead (the fallback adapters answer from this process instead, so this is rare).
    pub async fn check(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let address = ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), throttle_key);
        let key = format!("auth:ip:{address}");
        match self.limiter.check(&key, self.rate, 1).await {
            Ok(decision) if decision.allowed => Ok(()),
            Ok(decision) => {
                let wait = decision.retry_after.map_or(60, |d| d.as_secs() + 1);
                Err(ApiError::rate_limited(wait))
            }
            Err(error) => {
                tracing::warn!(%error, "the per-IP throttle is unavailable; not checked");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_refuse_per_ip() {
        let throttle = IpThrottle::in_process(1, 2);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        assert!(throttle.check(a).await.is_ok());
        assert!(throttle.check(a).await.is_ok());
        let refused = throttle.check(a).await.unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        assert!(refused.retry_after_secs.unwrap() >= 1);
        assert!(throttle.check(b).await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_addresses_of_one_64_share_a_bucket() {
        let throttle = IpThrottle::in_process(1, 2);
        let ip = |text: &str| Some(text.parse().unwrap());
        // Fresh addresses from one /64, as a client rotating through its prefix would use.
        assert!(throttle.check(ip("2001:db8:0:1::1")).await.is_ok());
        assert!(throttle.check(ip("2001:db8:0:1::2")).await.is_ok());
        let refused = throttle.check(ip("2001:db8:0:1:dead:beef:1:2")).await;
        assert_eq!(refused.unwrap_err().status.as_u16(), 429);
        // Another /64 has its own allowance.
        assert!(throttle.check(ip("2001:db8:0:2::1")).await.is_ok());
    }
}
