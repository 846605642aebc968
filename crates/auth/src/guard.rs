//! Brute-force protection for sign-in that gives attackers neither a lockout switch nor an
//! account oracle.
//!
//! Failures are counted per account *and* client address (IPv6 by /64). After
//! `threshold` failures that address must wait before it may try that account again; every
//! further failure doubles the wait, up to a maximum. Another address — the real user's — is
//! not affected, so nobody can lock someone else out by guessing wrong on purpose.
//!
//! Each account also has a looser budget of failures per hour from all addresses together
//! (against an attacker spreading guesses over many addresses). While it is spent, only
//! addresses that already failed for that account are held back: an address without
//! failures may still try, so a correct password from the user's own address always works.
//!
//! The account key is the normalised email whether or not such an account exists, so
//! unknown emails are throttled exactly like real ones and the answers reveal nothing.
//!
//! The counts live in the [`Counters`] port, under keys naming a hash of the account (never
//! the email itself): with the shared adapter (Redis, split mode) a brute force spread over
//! replicas is counted once; all-in-one keeps them in this process (bounded, expiring). A
//! success from an address, and an administrator's unlock, start a new generation of the
//! keys they clear (the port removes nothing; the old keys expire by themselves).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use confab_cache::Counters;
use confab_core::net::throttle_key;
use sha2::{Digest, Sha256};

/// The per-account window of the looser budget.
const ACCOUNT_WINDOW_MS: i64 = 3_600_000;
/// An address's failures for an account count for this long after its first one.
const PAIR_MEMORY_MS: i64 = 24 * 3_600_000;
/// How long a generation number is kept: far longer than any key of a generation lives.
const GENERATION_MS: i64 = 7 * 24 * 3_600_000;

/// The rules, from `auth.*` configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardPolicy {
    /// Failures from one address for one account before that address must wait.
    pub threshold: u32,
    /// The first wait, in milliseconds; each further failure doubles it.
    pub first_wait_ms: i64,
    /// The longest wait, in milliseconds.
    pub max_wait_ms: i64,
    /// Failures per hour from all addresses together before addresses that failed for the
    /// account are held back; 0: no such budget.
    pub account_failures_per_hour: u32,
}

impl GuardPolicy {
    pub fn from_config(config: &confab_core::config::AuthConfig) -> Self {
        let ms = |secs: u64| confab_store::to_i64(secs.saturating_mul(1000));
        Self {
            threshold: config.lockout_threshold.max(1),
            first_wait_ms: ms(config.login_delay_secs),
            max_wait_ms: ms(config.lockout_duration_secs),
            account_failures_per_hour: config.account_failures_per_hour,
        }
    }

    /// The wait after the `failures`-th failure in a row (none below the threshold).
    fn wait_ms(&self, failures: u32) -> Option<i64> {
        let beyond = failures.checked_sub(self.threshold)?;
        let factor = 1_i64.checked_shl(beyond.min(40)).unwrap_or(i64::MAX);
        Some(
            self.first_wait_ms
                .saturating_mul(factor)
                .min(self.max_wait_ms),
        )
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// Refused without checking the password; try again after this many seconds.
    Wait {
        retry_after_secs: u64,
    },
}

/// Sign-in failures by account and address. See the module documentation for the policy.
pub struct LoginGuard {
    policy: GuardPolicy,
    counters: Arc<dyn Counters>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn address(ip: Option<IpAddr>) -> IpAddr {
    ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), throttle_key)
}

fn seconds_until(at: i64, now: i64) -> u64 {
    u64::try_from((at - now + 999) / 1000).unwrap_or(0).max(1)
}

fn duration_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1))
}

/// A short hash of the account: the keys carry no email, and have a bounded length.
fn account_id(account: &str) -> String {
    Sha256::digest(account.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys of one account (in its current generation) and address.
struct Keys {
    /// The account's generation: an administrator's unlock starts the next.
    account: String,
    /// The address's failures for the account, in the address's generation.
    pair: String,
}

impl LoginGuard {
    /// The guard under `policy`, counting in `counters`.
    pub fn new(policy: GuardPolicy, counters: Arc<dyn Counters>) -> Self {
        Self { policy, counters }
    }

    /// The guard over in-process counters (one process, tests).
    pub fn in_process(policy: GuardPolicy) -> Self {
        Self::new(policy, Arc::new(confab_cache::MemoryCounters::new(100_000)))
    }

    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// A counter's value; `0` when it has none or the counters cannot answer (the fallback
    /// adapters answer from this process instead, so that is rare).
    async fn get(&self, key: &str) -> u64 {
        match self.counters.get(key).await {
            Ok(value) => value.unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "sign-in failure counts unavailable");
                0
            }
        }
    }

    async fn add(&self, key: &str, window_ms: i64) -> u64 {
        match self.counters.add(key, 1, duration_ms(window_ms)).await {
            Ok(total) => total,
            Err(error) => {
                tracing::warn!(%error, "sign-in failure not counted");
                0
            }
        }
    }

    async fn seed(&self, key: &str, value: i64, window_ms: i64) -> i64 {
        let value_u = u64::try_from(value).unwrap_or(0);
        match self
            .counters
            .seed(key, value_u, duration_ms(window_ms))
            .await
        {
            Ok(total) => i64::try_from(total).unwrap_or(i64::MAX),
            Err(error) => {
                tracing::warn!(%error, "sign-in wait not recorded");
                value
            }
        }
    }

    /// The current keys of `account` and `ip`.
    async fn keys(&self, account: &str, ip: Option<IpAddr>) -> Keys {
        let id = account_id(account);
        let epoch = self.get(&format!("auth:guard:epoch:{id}")).await;
        let address = address(ip);
        let generation = self
            .get(&format!("auth:guard:gen:{epoch}:{id}:{address}"))
            .await;
        Keys {
            account: format!("{epoch}:{id}"),
            pair: format!("{epoch}:{id}:{address}:{generation}"),
        }
    }

    /// When the account's budget is spent: the end of its window.
    async fn window_spent(&self, keys: &Keys, now: i64) -> Option<i64> {
        let limit = self.policy.account_failures_per_hour;
        if limit == 0 {
            return None;
        }
        let failures = self.get(&format!("auth:guard:acct:{}", keys.account)).await;
        if failures < u64::from(limit) {
            return None;
        }
        let start = self
            .get(&format!("auth:guard:acct-start:{}", keys.account))
            .await;
        let ends = i64::try_from(start).unwrap_or(0) + ACCOUNT_WINDOW_MS;
        (now < ends).then_some(ends)
    }

    /// Whether `ip` may try to sign in to `account` now. Asked before the password is
    /// checked, alike for accounts that exist and those that do not.
    pub async fn check(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Verdict {
        let keys = self.keys(account, ip).await;
        let failures = self.get(&format!("auth:guard:fails:{}", keys.pair)).await;
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        if self.policy.wait_ms(failures).is_some() {
            let until = self
                .get(&format!("auth:guard:until:{}:{failures}", keys.pair))
                .await;
            let until = i64::try_from(until).unwrap_or(0);
            if until > now {
                return Verdict::Wait {
                    retry_after_secs: seconds_until(until, now),
                };
            }
        }
        // The account is under attack from many addresses: hold back those that already
        // guessed wrong; an address without failures still gets its try.
        if failures > 0
            && let Some(ends) = self.window_spent(&keys, now).await
        {
            return Verdict::Wait {
                retry_after_secs: seconds_until(ends, now),
            };
        }
        Verdict::Proceed
    }

    /// Counts a failed attempt; returns the wait, in seconds, when this failure makes the
    /// address wait (for the audit log).
    pub async fn failed(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Option<u64> {
        let keys = self.keys(account, ip).await;
        // The account's window starts at its first failure of the hour.
        let _ = self
            .seed(
                &format!("auth:guard:acct-start:{}", keys.account),
                now,
                ACCOUNT_WINDOW_MS,
            )
            .await;
        self.add(
            &format!("auth:guard:acct:{}", keys.account),
            ACCOUNT_WINDOW_MS,
        )
        .await;
        let failures = self
            .add(&format!("auth:guard:fails:{}", keys.pair), PAIR_MEMORY_MS)
            .await;
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        let wait = self.policy.wait_ms(failures)?;
        // One key per failure count, written once: replicas agree on the wait it started.
        let until = self
            .seed(
                &format!("auth:guard:until:{}:{failures}", keys.pair),
                now + wait,
                wait,
            )
            .await;
        Some(seconds_until(until, now))
    }

    /// A correct password from `ip`: its failures for `account` are forgotten.
    pub async fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        let id = account_id(account);
        let epoch = self.get(&format!("auth:guard:epoch:{id}")).await;
        let address = address(ip);
        self.add(
            &format!("auth:guard:gen:{epoch}:{id}:{address}"),
            GENERATION_MS,
        )
        .await;
    }

    /// Forgets every failure for `account` (an administrator ends the waits).
    pub async fn forget(&self, account: &str) {
        let id = account_id(account);
        self.add(&format!("auth:guard:epoch:{id}"), GENERATION_MS)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: GuardPolicy = GuardPolicy {
        threshold: 3,
        first_wait_ms: 10_000,
        max_wait_ms: 60_000,
        account_failures_per_hour: 10,
    };

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn wait(secs: u64) -> Verdict {
        Verdict::Wait {
            retry_after_secs: secs,
        }
    }

    #[tokio::test]
    async fn an_address_waits_longer_after_each_failure_past_the_threshold() {
        let guard = LoginGuard::in_process(POLICY);
        let attacker = ip("203.0.113.5");
        assert_eq!(guard.failed("ada@x", attacker, 0).await, None);
        assert_eq!(guard.failed("ada@x", attacker, 0).await, None);
        assert_eq!(guard.check("ada@x", attacker, 0).await, Verdict::Proceed);
        assert_eq!(guard.failed("ada@x", attacker, 0).await, Some(10));
        assert_eq!(guard.check("ada@x", attacker, 1_000).await, wait(9));
        assert_eq!(
            guard.check("ada@x", attacker, 10_000).await,
            Verdict::Proceed
        );
        assert_eq!(guard.failed("ada@x", attacker, 10_000).await, Some(20));
        assert_eq!(guard.failed("ada@x", attacker, 30_000).await, Some(40));
        // Capped at the longest wait.
        assert_eq!(guard.failed("ada@x", attacker, 70_000).await, Some(60));
        assert_eq!(guard.failed("ada@x", attacker, 130_000).await, Some(60));

        // The user's own address, and the same address for another account, are unaffected.
        assert_eq!(
            guard.check("ada@x", ip("198.51.100.1"), 130_000).await,
            Verdict::Proceed
        );
        assert_eq!(
            guard.check("bob@x", attacker, 130_000).await,
            Verdict::Proceed
        );

        // Success forgets the address's failures; an administrator can forget them all.
        guard.succeeded("ada@x", attacker).await;
        assert_eq!(
            guard.check("ada@x", attacker, 130_001).await,
            Verdict::Proceed
        );
        for _ in 0..3 {
            guard.failed("ada@x", attacker, 200_000).await;
        }
        assert!(matches!(
            guard.check("ada@x", attacker, 200_000).await,
            Verdict::Wait { .. }
        ));
        guard.forget("ada@x").await;
        assert_eq!(
            guard.check("ada@x", attacker, 200_000).await,
            Verdict::Proceed
        );
    }

    #[tokio::test]
    async fn a_spent_account_budget_holds_back_only_addresses_that_failed() {
        let guard = LoginGuard::in_process(POLICY);
        // Ten addresses, one wrong guess each: the account's hourly budget is spent.
        for i in 0..10 {
            guard
                .failed("ada@x", ip(&format!("203.0.113.{i}")), 1_000)
                .await;
        }
        assert_eq!(
            guard.check("ada@x", ip("203.0.113.3"), 2_000).await,
            wait(3_599)
        );
        // A fresh address (the user at home) still gets to try its password.
        assert_eq!(
            guard.check("ada@x", ip("198.51.100.1"), 2_000).await,
            Verdict::Proceed
        );
        // After the window, the failed addresses may try again.
        assert_eq!(
            guard.check("ada@x", ip("203.0.113.3"), 3_601_000).await,
            Verdict::Proceed
        );
    }

    #[tokio::test]
    async fn ipv6_addresses_count_by_their_64() {
        let guard = LoginGuard::in_process(POLICY);
        for i in 1..=3 {
            guard
                .failed("ada@x", ip(&format!("2001:db8:0:1::{i}")), 0)
                .await;
        }
        assert_eq!(
            guard.check("ada@x", ip("2001:db8:0:1::99"), 0).await,
            wait(10)
        );
        assert_eq!(
            guard.check("ada@x", ip("2001:db8:0:2::1"), 0).await,
            Verdict::Proceed
        );
    }
}
