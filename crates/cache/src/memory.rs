//! The in-process adapters of the limiter ports (all-in-one mode, and split mode's fallback
//! while Redis is away): [`MemoryRateLimiter`] (GCRA with `governor`, one keyed limiter per
//! distinct [`Rate`]), [`MemoryCounters`] and [`MemoryMembership`] (moka, bounded, each entry
//! expiring with its window or its last member).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{InsufficientCapacity, Quota};
use moka::Expiry;
use moka::ops::compute::Op;
use parking_lot::{Mutex, RwLock};

use crate::limit::{Counters, Decision, Membership, Rate, RateLimiter, Taken, Unavailable};

type Keyed = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// How often idle keys are swept out of the rate limiters (on the next check after it).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The GCRA parameters of a rate: one cell every `t`, `burst` cells at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gcra {
    pub(crate) t: Duration,
    pub(crate) burst: u32,
}

impl Gcra {
    /// `None` when the rate does not limit (`limit` 0, or a zero period).
    pub(crate) fn of(rate: Rate) -> Option<Self> {
        if rate.limit == 0 {
            return None;
        }
        let t = rate.period / rate.limit;
        (!t.is_zero()).then_some(Self {
            t,
            burst: rate.burst.max(1),
        })
    }
}

impl Decision {
    /// The answer for a rate that does not limit.
    pub(crate) fn unlimited() -> Self {
        Self {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }
}

fn saturating_u32(n: u128) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The per-process rate limiter: exact within this process, nothing shared.
pub struct MemoryRateLimiter {
    limiters: RwLock<HashMap<Rate, Arc<Keyed>>>,
    last_sweep: Mutex<Instant>,
    clock: DefaultClock,
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("rates", &self.limiters.read().len())
            .finish()
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, rate: Rate, gcra: Gcra, burst: NonZeroU32) -> Option<Arc<Keyed>> {
        if let Some(limiter) = self.limiters.read().get(&rate) {
            return Some(Arc::clone(limiter));
        }
        let quota = Quota::with_period(gcra.t)?.allow_burst(burst);
        let mut limiters = self.limiters.write();
        let limiter = limiters.entry(rate).or_insert_with(|| {
            Arc::new(
                governor::RateLimiter::dashmap_with_clock(quota, self.clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            )
        });
        Some(Arc::clone(limiter))
    }

    /// Drops keys whose allowance is whole again, and limiters left with no keys, at most
    /// once every [`SWEEP_EVERY`]: memory follows the keys in use, not every key ever seen.
    fn sweep_if_due(&self) {
        {
            let mut last = self.last_sweep.lock();
            if last.elapsed() < SWEEP_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let mut limiters = self.limiters.write();
        limiters.retain(|_, limiter| {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            !limiter.is_empty()
        });
    }

    /// The keys held now (for tests of the sweep).
    pub fn keys(&self) -> usize {
        self.limiters.read().values().map(|l| l.len()).sum()
    }

    fn decide(&self, key: &str, rate: Rate, cost: u32) -> Decision {
        self.sweep_if_due();
        let Some(gcra) = Gcra::of(rate) else {
            return Decision::unlimited();
        };
        let (Some(burst), Some(n)) = (NonZeroU32::new(gcra.burst), NonZeroU32::new(cost.max(1)))
        else {
            return Decision::unlimited();
        };
        let Some(limiter) = self.limiter(rate, gcra, burst) else {
            return Decision::unlimited();
        };
        let t = gcra.t.as_nanos();
        match limiter.check_key_n(&key.to_owned(), n) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Whole again once the `burst - remaining` cells taken have drained.
                let reset = t * u128::from(gcra.burst.saturating_sub(remaining));
                Decision {
                    allowed: true,
                    limit: gcra.burst,
                    remaining,
                    reset_after: Duration::from_nanos(saturating_u64(reset)),
                    retry_after: None,
                }
            }
            Ok(Err(not_until)) => {
                let retry = not_until.wait_time_from(self.clock.now());
                let wait = retry.as_nanos();
                // The key's arrival time is `retry + t * (burst - n)` away; what fits now is
                // what `n` cells lack of the wait.
                let reset = wait + t * u128::from(gcra.burst - n.get());
                let remaining = (t * u128::from(n.get())).saturating_sub(wait) / t;
                Decision {
                    allowed: false,
                    limit: gcra.burst,
                    remaining: saturating_u32(remaining),
                    reset_after: Duration::from_nanos(saturating_u64(reset)),
                    retry_after: Some(retry),
                }
            }
            Err(InsufficientCapacity(_)) => Decision {
                allowed: false,
                limit: gcra.burst,
                remaining: 0,
                reset_after: Duration::ZERO,
                retry_after: None,
            },
        }
    }
}

fn saturating_u64(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, rate: Rate, cost: u32) -> Result<Decision, Unavailable> {
        Ok(self.decide(key, rate, cost))
    }
}

/// Entries that expire at an instant they carry.
trait Ends {
    fn ends(&self) -> Instant;
}

struct UntilEnds;

impl<V: Ends> Expiry<String, V> for UntilEnds {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &V,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ends().saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &V,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ends().saturating_duration_since(updated_at))
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    total: u64,
    ends: Instant,
}

impl Ends for Window {
    fn ends(&self) -> Instant {
        self.ends
    }
}

/// The per-process counters: at most `max_keys` windows (the least used go first beyond it).
pub struct MemoryCounters {
    inner: moka::future::Cache<String, Window>,
}

impl std::fmt::Debug for MemoryCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCounters")
            .field("keys", &self.inner.entry_count())
            .finish()
    }
}

impl MemoryCounters {
    pub fn new(max_keys: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(max_keys)
                .expire_after(UntilEnds)
                .build(),
        }
    }

    /// Runs `f` on `key`'s live window (`None` when it has none) under the key's lock; `f`
    /// returns the window to keep (or `None` to leave it as it is) and the answer.
    async fn update<T>(
        &self,
        key: &str,
        now: Instant,
        f: impl FnOnce(Option<Window>) -> (Option<Window>, T),
    ) -> Result<T, Unavailable> {
        let mut out = None;
        self.inner
            .entry_by_ref(key)
            .and_compute_with(|entry| {
                let live = entry.map(|e| e.into_value()).filter(|w| w.ends > now);
                let (keep, answer) = f(live);
                out = Some(answer);
                std::future::ready(keep.map_or(Op::Nop, Op::Put))
            })
            .await;
        out.ok_or_else(not_computed)
    }
}

/// `and_compute_with` runs its closure exactly once, so this is never returned; it keeps the
/// code free of a panic all the same.
fn not_computed() -> Unavailable {
    Unavailable("the in-process update did not run".to_owned())
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn take(
        &self,
        key: &str,
        amount: u64,
        max: u64,
        window: Duration,
    ) -> Result<Taken, Unavailable> {
        let now = Instant::now();
        self.update(key, now, |live| {
            let (total, ends) = live.map_or((0, now + window), |w| (w.total, w.ends));
            let after = total.saturating_add(amount);
            if after <= max {
                let taken = Taken {
                    taken: true,
                    total: after,
                    resets_in: ends - now,
                };
                (Some(Window { total: after, ends }), taken)
            } else {
                let resets_in = live.map_or(Duration::ZERO, |w| w.ends - now);
                let refused = Taken {
                    taken: false,
                    total,
                    resets_in,
                };
                (None, refused)
            }
        })
        .await
    }

    async fn add(&self, key: &str, amount: u64, window: Duration) -> Result<u64, Unavailable> {
        let now = Instant::now();
        self.update(key, now, |live| {
            let (total, ends) = live.map_or((0, now + window), |w| (w.total, w.ends));
            let total = total.saturating_add(amount);
            (Some(Window { total, ends }), total)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<u64>, Unavailable> {
        let now = Instant::now();
        Ok(self
            .inner
            .get(key)
            .await
            .filter(|w| w.ends > now)
            .map(|w| w.total))
    }

    async fn seed(&self, key: &str, value: u64, window: Duration) -> Result<u64, Unavailable> {
        let now = Instant::now();
        self.update(key, now, |live| match live {
            Some(w) => (None, w.total),
            None => (
                Some(Window {
                    total: value,
                    ends: now + window,
                }),
                value,
            ),
        })
        .await
    }
}

#[derive(Debug, Clone, Default)]
struct Members {
    /// Each live member and when it leaves unless refreshed.
    until: HashMap<String, Instant>,
}

impl Members {
    fn live(mut self, now: Instant) -> Self {
        self.until.retain(|_, ends| *ends > now);
        self
    }
}

impl Ends for Members {
    /// The set goes when its last member does.
    fn ends(&self) -> Instant {
        self.until
            .values()
            .copied()
            .max()
            .unwrap_or_else(Instant::now)
    }
}

/// The per-process memberships: at most `max_sets` sets (the least used go first beyond
/// it); a set never holds more than the `max` its joins ask for.
pub struct MemoryMembership {
    inner: moka::future::Cache<String, Members>,
}

impl std::fmt::Debug for MemoryMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMembership")
            .field("sets", &self.inner.entry_count())
            .finish()
    }
}

impl MemoryMembership {
    pub fn new(max_sets: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(max_sets)
                .expire_after(UntilEnds)
                .build(),
        }
    }

    /// Runs `f` on `set`'s live members under the set's lock; `f` changes them and answers;
    /// the set is stored back, or removed once empty.
    async fn update<T>(
        &self,
        set: &str,
        f: impl FnOnce(&mut Members, Instant) -> T,
    ) -> Result<T, Unavailable> {
        let now = Instant::now();
        let mut out = None;
        self.inner
            .entry_by_ref(set)
            .and_compute_with(|entry| {
                let existed = entry.is_some();
                let mut members = entry.map(|e| e.into_value()).unwrap_or_default().live(now);
                out = Some(f(&mut members, now));
                std::future::ready(if !members.until.is_empty() {
                    Op::Put(members)
                } else if existed {
                    Op::Remove
                } else {
                    Op::Nop
                })
            })
            .await;
        out.ok_or_else(not_computed)
    }
}

#[async_trait]
impl Membership for MemoryMembership {
    async fn join(
        &self,
        set: &str,
        member: &str,
        max: usize,
        ttl: Duration,
    ) -> Result<Option<usize>, Unavailable> {
        self.update(set, |members, now| {
            if members.until.contains_key(member) || members.until.len() < max {
                members.until.insert(member.to_owned(), now + ttl);
                Some(members.until.len())
            } else {
                None
            }
        })
        .await
    }

    async fn refresh(&self, set: &str, member: &str, ttl: Duration) -> Result<(), Unavailable> {
        self.update(set, |members, now| {
            if let Some(ends) = members.until.get_mut(member) {
                *ends = now + ttl;
            }
        })
        .await
    }

    async fn leave(&self, set: &str, member: &str) -> Result<usize, Unavailable> {
        self.update(set, |members, _| {
            members.until.remove(member);
            members.until.len()
        })
        .await
    }

    async fn count(&self, set: &str) -> Result<usize, Unavailable> {
        let now = Instant::now();
        Ok(self
            .inner
            .get(set)
            .await
            .map_or(0, |members| members.live(now).until.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_rate_limit_keys_are_swept() {
        let limiter = MemoryRateLimiter::new();
        let rate = Rate {
            limit: 1000,
            period: Duration::from_secs(1),
            burst: 1,
        };
        for i in 0..50 {
            let decision = limiter.check(&format!("k{i}"), rate, 1).await.unwrap();
            assert!(decision.allowed);
        }
        assert_eq!(limiter.keys(), 50);
        // One cell is 1 ms: after a few, every key is whole again and the sweep drops it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        *limiter.last_sweep.lock() = Instant::now() - SWEEP_EVERY;
        limiter.check("other", rate, 1).await.unwrap();
        assert!(limiter.keys() <= 1, "{} keys left", limiter.keys());
    }

    #[test]
    fn rates_that_do_not_limit() {
        assert!(Gcra::of(Rate::per_minute(0)).is_none());
        let zero_period = Rate {
            limit: 5,
            period: Duration::ZERO,
            burst: 5,
        };
        assert!(Gcra::of(zero_period).is_none());
        let gcra = Gcra::of(Rate::per_minute(60).with_burst(0)).unwrap();
        assert_eq!((gcra.t, gcra.burst), (Duration::from_secs(1), 1));
    }
}
