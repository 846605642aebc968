//! The limiter ports: state that must be exact across replicas (rate limits, counters with a
//! window, and sets whose members expire, such as a user's open sockets). Each has an
//! in-process adapter (all-in-one) and a Redis adapter (split mode), where every check is one
//! atomic script, so concurrent replicas never overshoot. [`Admission`] joins a request's
//! rate checks and counter reads into one call (one round trip to Redis instead of two).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// How fast a key may go: `limit` requests per `period`, with bursts of up to `burst`
/// (the generic cell rate algorithm: one request every `period / limit`, `burst` at once).
/// A `burst` of 0 counts as 1; a `limit` of 0 or a zero `period` does not limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Rate {
    /// `limit` a minute, bursting to `limit`.
    pub fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
            burst: limit,
        }
    }

    /// The same rate with another burst.
    pub fn with_burst(self, burst: u32) -> Self {
        Self { burst, ..self }
    }
}

/// The answer to one check of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the cost was taken.
    pub allowed: bool,
    /// The burst: the most a key can take at once (`x-ratelimit-limit`).
    pub limit: u32,
    /// What the key could still take now (`x-ratelimit-remaining`).
    pub remaining: u32,
    /// When the key's allowance is whole again (`x-ratelimit-reset`).
    pub reset_after: Duration,
    /// When refused: how long until the cost fits (`Retry-After`); `None` when allowed, and
    /// when refused because the cost is more than the burst (it never fits).
    pub retry_after: Option<Duration>,
}

/// The limiter's store cannot be reached. Callers degrade (see [`crate::fallback`]); they
/// never fail a user's request because of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the limiter's store is unavailable: {0}")]
pub struct Unavailable(pub String);

/// One key's part of a [`RateLimiter::check_all`].
#[derive(Debug, Clone, Copy)]
pub struct RateCheck<'a> {
    pub key: &'a str,
    pub rate: Rate,
    pub cost: u32,
}

/// Rate limits shared by every replica that uses the same adapter.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes `cost` (0 counts as 1) from `key`'s allowance under `rate`: all of it, or
    /// nothing. A `rate` with `limit` 0 allows everything (the decision's `limit` is then 0).
    async fn check(&self, key: &str, rate: Rate, cost: u32) -> Result<Decision, Unavailable>;

    /// [`check`](Self::check)s `checks` in order and stops at the first refusal: the costs
    /// before it stay taken, the checks after it are not made. Returns one decision per check
    /// made (the last one is the refusal, if any). The shared adapter makes them all in one
    /// round trip, atomically; this default makes them one by one.
    async fn check_all(&self, checks: &[RateCheck<'_>]) -> Result<Vec<Decision>, Unavailable> {
        let mut decisions = Vec::with_capacity(checks.len());
        for check in checks {
            let decision = self.check(check.key, check.rate, check.cost).await?;
            decisions.push(decision);
            if !decision.allowed {
                break;
            }
        }
        Ok(decisions)
    }
}

/// The answer to [`Counters::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Whether the amount was added (the total stayed within `max`).
    pub taken: bool,
    /// The total in the window after this call.
    pub total: u64,
    /// When the window ends and the total starts from zero (zero when the key has no window:
    /// refused before one started).
    pub resets_in: Duration,
}

/// Counters with a fixed window that starts at a key's first use (tokens a day, calls an
/// hour). The window's key names the period when it must align to a calendar (the day).
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds `amount` to `key` only if the total stays at or below `max`, atomically.
    async fn take(
        &self,
        key: &str,
        amount: u64,
        max: u64,
        window: Duration,
    ) -> Result<Taken, Unavailable>;

    /// Adds `amount` to `key` unconditionally (what was used, counted after the fact) and
    /// returns the total.
    async fn add(&self, key: &str, amount: u64, window: Duration) -> Result<u64, Unavailable>;

    /// The total of `key`, `None` when the key has no window now.
    async fn get(&self, key: &str) -> Result<Option<u64>, Unavailable>;

    /// The totals of `keys`, in order ([`get`](Self::get) of each; the shared adapter asks
    /// for them all in one round trip).
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<u64>>, Unavailable> {
        let mut totals = Vec::with_capacity(keys.len());
        for key in keys {
            totals.push(self.get(key).await?);
        }
        Ok(totals)
    }

    /// [`add`](Self::add)s each amount to its key, all with the same `window`, and returns
    /// the totals in order (the shared adapter: in one round trip, atomically).
    async fn add_many(
        &self,
        adds: &[(&str, u64)],
        window: Duration,
    ) -> Result<Vec<u64>, Unavailable> {
        let mut totals = Vec::with_capacity(adds.len());
        for (key, amount) in adds {
            totals.push(self.add(key, *amount, window).await?);
        }
        Ok(totals)
    }

    /// Starts `key`'s window at `value` unless it has one already (a count read back from
    /// durable storage); returns the total in force.
    async fn seed(&self, key: &str, value: u64, window: Duration) -> Result<u64, Unavailable>;
}

/// The answer to [`Admission::admit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The totals of the counters asked for, in order ([`Counters::get_many`]).
    pub totals: Vec<Option<u64>>,
    /// One decision per check made, stopping at the first refusal
    /// ([`RateLimiter::check_all`]).
    pub decisions: Vec<Decision>,
}

/// What a request's admission asks of the shared state, in one call: the totals of some
/// [`Counters`] (read first) and a [`RateLimiter::check_all`] (taken after). The shared
/// adapter answers both in one round trip, atomically; [`Paired`] asks the two ports.
#[async_trait]
pub trait Admission: Send + Sync {
    /// Reads `counters` (keys of the [`Counters`] port) and makes `checks` (keys of the
    /// [`RateLimiter`] port), with their semantics. A failure is the whole call's.
    async fn admit(
        &self,
        checks: &[RateCheck<'_>],
        counters: &[&str],
    ) -> Result<Admitted, Unavailable>;
}

/// A rate limiter and counters as an [`Admission`], one call of each (the in-process
/// adapters, and the per-process side of a fallback).
#[derive(Clone)]
pub struct Paired {
    pub rate: Arc<dyn RateLimiter>,
    pub counters: Arc<dyn Counters>,
}

impl std::fmt::Debug for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paired").finish_non_exhaustive()
    }
}

#[async_trait]
impl Admission for Paired {
    async fn admit(
        &self,
        checks: &[RateCheck<'_>],
        counters: &[&str],
    ) -> Result<Admitted, Unavailable> {
        let totals = if counters.is_empty() {
            Vec::new()
        } else {
            self.counters.get_many(counters).await?
        };
        let decisions = if checks.is_empty() {
            Vec::new()
        } else {
            self.rate.check_all(checks).await?
        };
        Ok(Admitted { totals, decisions })
    }
}

/// Sets whose members leave by themselves unless refreshed within their time to live: a
/// user's open sockets on every replica (a replica killed with its sockets open stops
/// counting them after one time to live).
#[async_trait]
pub trait Membership: Send + Sync {
    /// Adds `member` to `set` when the set has fewer than `max` live members (or `member` is
    /// in it already); `Some(members)` after joining, `None` when full.
    async fn join(
        &self,
        set: &str,
        member: &str,
        max: usize,
        ttl: Duration,
    ) -> Result<Option<usize>, Unavailable>;

    /// Keeps `member` alive for another `ttl`.
    async fn refresh(&self, set: &str, member: &str, ttl: Duration) -> Result<(), Unavailable>;

    /// Removes `member`; returns the live members left.
    async fn leave(&self, set: &str, member: &str) -> Result<usize, Unavailable>;

    /// The live members of `set`.
    async fn count(&self, set: &str) -> Result<usize, Unavailable>;
}
