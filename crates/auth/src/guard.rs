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
//! The counts live in this process (bounded, idle entries expire): with several replicas each
//! keeps its own, which multiplies the allowance by the number of replicas.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use confab_core::net::throttle_key;
use parking_lot::Mutex;

/// The per-account window of the looser budget.
const ACCOUNT_WINDOW_MS: i64 = 3_600_000;
/// A failure older than this no longer counts towards an address's waits.
const PAIR_MEMORY_MS: i64 = 24 * 3_600_000;
/// Addresses remembered per account; beyond it, those not waiting are forgotten.
const MAX_PAIRS_PER_ACCOUNT: usize = 4_096;
/// Accounts (or unknown emails) remembered; the least recently used go first.
const MAX_ACCOUNTS: u64 = 100_000;

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

#[derive(Debug, Default)]
struct Pair {
    failures: u32,
    last_failure: i64,
    blocked_until: i64,
}

#[derive(Debug, Default)]
struct Account {
    window_start: i64,
    window_failures: u32,
    pairs: HashMap<IpAddr, Pair>,
}

impl Account {
    fn window_spent(&self, policy: &GuardPolicy, now: i64) -> Option<i64> {
        let limit = policy.account_failures_per_hour;
        let ends = self.window_start + ACCOUNT_WINDOW_MS;
        (limit > 0 && now < ends && self.window_failures >= limit).then_some(ends)
    }
}

/// Sign-in failures by account and address. See the module documentation for the policy.
pub struct LoginGuard {
    policy: GuardPolicy,
    accounts: moka::future::Cache<String, Arc<Mutex<Account>>>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("policy", &self.policy)
            .field("accounts", &self.accounts.entry_count())
            .finish()
    }
}

fn address(ip: Option<IpAddr>) -> IpAddr {
    ip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), throttle_key)
}

fn seconds_until(at: i64, now: i64) -> u64 {
    u64::try_from((at - now + 999) / 1000).unwrap_or(0).max(1)
}

impl LoginGuard {
    pub fn new(policy: GuardPolicy) -> Self {
        // Forget an account once nothing about it can matter any more.
        let idle = policy
            .max_wait_ms
            .max(PAIR_MEMORY_MS)
            .max(ACCOUNT_WINDOW_MS);
        Self {
            policy,
            accounts: moka::future::Cache::builder()
                .max_capacity(MAX_ACCOUNTS)
                .time_to_idle(std::time::Duration::from_millis(
                    u64::try_from(idle).unwrap_or(u64::MAX),
                ))
                .build(),
        }
    }

    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    async fn account(&self, key: &str) -> Arc<Mutex<Account>> {
        self.accounts
            .get_with(key.to_owned(), async {
                Arc::new(Mutex::new(Account::default()))
            })
            .await
    }

    /// Whether `ip` may try to sign in to `account` now. Asked before the password is
    /// checked, alike for accounts that exist and those that do not.
    pub async fn check(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Verdict {
        let Some(entry) = self.accounts.get(account).await else {
            return Verdict::Proceed;
        };
        let state = entry.lock();
        let pair = state.pairs.get(&address(ip));
        if let Some(pair) = pair
            && pair.blocked_until > now
        {
            return Verdict::Wait {
                retry_after_secs: seconds_until(pair.blocked_until, now),
            };
        }
        // The account is under attack from many addresses: hold back those that already
        // guessed wrong; an address without failures still gets its try.
        let has_failed =
            pair.is_some_and(|p| p.failures > 0 && now - p.last_failure < PAIR_MEMORY_MS);
        if has_failed && let Some(ends) = state.window_spent(&self.policy, now) {
            return Verdict::Wait {
                retry_after_secs: seconds_until(ends, now),
            };
        }
        Verdict::Proceed
    }

    /// Counts a failed attempt; returns the wait, in seconds, when this failure makes the
    /// address wait (for the audit log).
    pub async fn failed(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Option<u64> {
        let entry = self.account(account).await;
        let mut state = entry.lock();
        if state.window_failures == 0 || now - state.window_start >= ACCOUNT_WINDOW_MS {
            state.window_start = now;
            state.window_failures = 0;
        }
        state.window_failures = state.window_failures.saturating_add(1);
        if state.pairs.len() >= MAX_PAIRS_PER_ACCOUNT {
            state
                .pairs
                .retain(|_, p| p.blocked_until > now || now - p.last_failure < ACCOUNT_WINDOW_MS);
            if state.pairs.len() >= MAX_PAIRS_PER_ACCOUNT {
                state.pairs.retain(|_, p| p.blocked_until > now);
            }
        }
        let pair = state.pairs.entry(address(ip)).or_default();
        if now - pair.last_failure >= PAIR_MEMORY_MS {
            pair.failures = 0;
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.last_failure = now;
        let wait = self.policy.wait_ms(pair.failures)?;
        pair.blocked_until = now + wait;
        Some(seconds_until(pair.blocked_until, now))
    }

    /// A correct password from `ip`: its failures for `account` are forgotten.
    pub async fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        if let Some(entry) = self.accounts.get(account).await {
            entry.lock().pairs.remove(&address(ip));
        }
    }

    /// Forgets every failure for `account` (an administrator ends the waits).
    pub async fn forget(&self, account: &str) {
        self.accounts.invalidate(account).await;
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
        let guard = LoginGuard::new(POLICY);
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
        let guard = LoginGuard::new(POLICY);
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
        let guard = LoginGuard::new(POLICY);
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
