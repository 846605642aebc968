//! Split mode's limiters that degrade instead of failing: [`Fallback`] answers from the
//! shared adapter (Redis) and, while it is [`Unavailable`], from a per-process one — limits
//! then hold per process instead of per deployment, which beats refusing every request or
//! letting all through. Each answer the local adapter gives is counted
//! (`confab_redis_fallbacks_total{port}`); a warning is logged at most every few seconds;
//! after a failure the shared adapter is skipped for a short back-off (so a dead Redis does
//! not add its timeout to every request) and then tried again, so service comes back by
//! itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::limit::{
    Admission, Admitted, Counters, Decision, Membership, Rate, RateCheck, RateLimiter, Taken,
    Unavailable,
};
use crate::metrics::{LimiterPort, RedisMetrics};
use crate::warn::{WARN_EVERY, WarnEvery};

/// How long the shared adapter is skipped after it failed.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The limiter ports this wrapper serves, each with its metric label.
pub trait Port: Send + Sync {
    const PORT: LimiterPort;
}

impl Port for dyn RateLimiter {
    const PORT: LimiterPort = LimiterPort::RateLimiter;
}

impl Port for dyn Counters {
    const PORT: LimiterPort = LimiterPort::Counters;
}

impl Port for dyn Membership {
    const PORT: LimiterPort = LimiterPort::Membership;
}

impl Port for dyn Admission {
    const PORT: LimiterPort = LimiterPort::Admission;
}

/// `primary` (shared) with `local` (this process) behind it, for one limiter port `P`
/// (`dyn RateLimiter`, `dyn Counters`, `dyn Membership` or `dyn Admission`). An admission's
/// local side must be made of the same per-process adapters as the rate limiter's and the
/// counters' fallbacks, so what they count while Redis is away is what it reads.
pub struct Fallback<P: ?Sized + Port> {
    primary: Arc<P>,
    local: Arc<P>,
    metrics: Arc<RedisMetrics>,
    backoff: Duration,
    state: Mutex<Health>,
    warn: WarnEvery,
}

/// The shared adapter in front of the per-process one, for rate limits.
pub type FallbackRateLimiter = Fallback<dyn RateLimiter>;
/// The shared adapter in front of the per-process one, for counters.
pub type FallbackCounters = Fallback<dyn Counters>;
/// The shared adapter in front of the per-process one, for memberships.
pub type FallbackMembership = Fallback<dyn Membership>;
/// The shared adapter in front of the per-process one, for admissions.
pub type FallbackAdmission = Fallback<dyn Admission>;

#[derive(Debug, Default)]
struct Health {
    /// Skip the primary until then.
    skip_until: Option<Instant>,
    /// The primary failed last time it was asked.
    failing: bool,
}

impl<P: ?Sized + Port> std::fmt::Debug for Fallback<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("port", &P::PORT)
            .field("health", &*self.state.lock())
            .finish()
    }
}

impl<P: ?Sized + Port> Fallback<P> {
    pub fn new(primary: Arc<P>, local: Arc<P>, metrics: Arc<RedisMetrics>) -> Self {
        Self {
            primary,
            local,
            metrics,
            backoff: DEFAULT_BACKOFF,
            state: Mutex::new(Health::default()),
            warn: WarnEvery::new(WARN_EVERY),
        }
    }

    /// Skips the primary for `backoff` after a failure (default [`DEFAULT_BACKOFF`]).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    fn primary_due(&self) -> bool {
        self.state
            .lock()
            .skip_until
            .is_none_or(|until| Instant::now() >= until)
    }

    fn succeeded(&self) {
        let mut state = self.state.lock();
        state.skip_until = None;
        if std::mem::take(&mut state.failing) {
            tracing::info!(
                port = P::PORT.as_str(),
                "the shared limiter answers again; limits are shared across replicas again"
            );
        }
    }

    fn failed(&self, error: &Unavailable) {
        {
            let mut state = self.state.lock();
            state.skip_until = Some(Instant::now() + self.backoff);
            state.failing = true;
        }
        if self.warn.ready() {
            tracing::warn!(
                port = P::PORT.as_str(),
                %error,
                "the shared limiter is unavailable; limits hold per process until it returns"
            );
        }
    }

    /// The primary's answer, or `None` after noting its failure.
    fn settle<T>(&self, result: Result<T, Unavailable>) -> Option<T> {
        match result {
            Ok(answer) => {
                self.succeeded();
                Some(answer)
            }
            Err(error) => {
                self.failed(&error);
                None
            }
        }
    }

    /// The local adapter, counted as a fallback.
    fn local(&self) -> &P {
        self.metrics.fallback(P::PORT);
        &self.local
    }
}

/// One call of a port's method: on the primary unless it is backing off, else (or when it
/// fails) on the local adapter.
macro_rules! route {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        if $self.primary_due()
            && let Some(answer) = $self.settle($self.primary.$method($($arg),*).await)
        {
            return Ok(answer);
        }
        $self.local().$method($($arg),*).await
    }};
}

#[async_trait]
impl RateLimiter for Fallback<dyn RateLimiter> {
    async fn check(&self, key: &str, rate: Rate, cost: u32) -> Result<Decision, Unavailable> {
        route!(self.check(key, rate, cost))
    }

    async fn check_all(&self, checks: &[RateCheck<'_>]) -> Result<Vec<Decision>, Unavailable> {
        route!(self.check_all(checks))
    }
}

#[async_trait]
impl Counters for Fallback<dyn Counters> {
    async fn take(
        &self,
        key: &str,
        amount: u64,
        max: u64,
        window: Duration,
    ) -> Result<Taken, Unavailable> {
        route!(self.take(key, amount, max, window))
    }

    async fn add(&self, key: &str, amount: u64, window: Duration) -> Result<u64, Unavailable> {
        route!(self.add(key, amount, window))
    }

    async fn get(&self, key: &str) -> Result<Option<u64>, Unavailable> {
        route!(self.get(key))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<u64>>, Unavailable> {
        route!(self.get_many(keys))
    }

    async fn add_many(
        &self,
        adds: &[(&str, u64)],
        window: Duration,
    ) -> Result<Vec<u64>, Unavailable> {
        route!(self.add_many(adds, window))
    }

    async fn seed(&self, key: &str, value: u64, window: Duration) -> Result<u64, Unavailable> {
        route!(self.seed(key, value, window))
    }
}

#[async_trait]
impl Membership for Fallback<dyn Membership> {
    async fn join(
        &self,
        set: &str,
        member: &str,
        max: usize,
        ttl: Duration,
    ) -> Result<Option<usize>, Unavailable> {
        route!(self.join(set, member, max, ttl))
    }

    async fn refresh(&self, set: &str, member: &str, ttl: Duration) -> Result<(), Unavailable> {
        route!(self.refresh(set, member, ttl))
    }

    async fn leave(&self, set: &str, member: &str) -> Result<usize, Unavailable> {
        route!(self.leave(set, member))
    }

    async fn count(&self, set: &str) -> Result<usize, Unavailable> {
        route!(self.count(set))
    }
}

#[async_trait]
impl Admission for Fallback<dyn Admission> {
    async fn admit(
        &self,
        checks: &[RateCheck<'_>],
        counters: &[&str],
    ) -> Result<Admitted, Unavailable> {
        route!(self.admit(checks, counters))
    }
}
