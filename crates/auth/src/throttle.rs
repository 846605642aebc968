//! The per-IP throttle on auth endpoints (a keyed GCRA limiter from `governor`).

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use confab_core::ApiError;
use confab_core::net::throttle_key;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Entries kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

pub struct IpThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for IpThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpThrottle")
            .field("tracked", &self.limiter.len())
            .finish()
    }
}

impl IpThrottle {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `ip`'s allowance, or says how long to wait. IPv6 addresses are
    /// counted by their /64 (one host commonly holds a whole /64). Callers without a known
    /// address share one bucket.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let key = ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), throttle_key);
        if self.limiter.len() > SWEEP_AT {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::rate_limited(wait.as_secs() + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_per_ip() {
        let throttle = IpThrottle::new(1, 2);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        assert!(throttle.check(a).is_ok());
        assert!(throttle.check(a).is_ok());
        let refused = throttle.check(a).unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        assert!(refused.retry_after_secs.unwrap() >= 1);
        assert!(throttle.check(b).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let throttle = IpThrottle::new(1, 2);
        let ip = |text: &str| Some(text.parse().unwrap());
        // Fresh addresses from one /64, as a client rotating through its prefix would use.
        assert!(throttle.check(ip("2001:db8:0:1::1")).is_ok());
        assert!(throttle.check(ip("2001:db8:0:1::2")).is_ok());
        let refused = throttle.check(ip("2001:db8:0:1:dead:beef:1:2"));
        assert_eq!(refused.unwrap_err().status.as_u16(), 429);
        // Another /64 has its own allowance.
        assert!(throttle.check(ip("2001:db8:0:2::1")).is_ok());
    }
}
