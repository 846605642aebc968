//! The limiter ports over Redis (and the admission that joins a rate check and a read of
//! counters in one call), each check one Lua script (atomic on the server, so
//! replicas never overshoot together): GCRA rate limits timed by the server's clock, counters
//! with a window, and memberships as sorted sets scored by their expiry. The scripts are
//! sent as `EVALSHA`, with `EVAL` after Redis forgot them (a restart).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::limit::{
    Admission, Admitted, Counters, Decision, Membership, Rate, RateCheck, RateLimiter, Taken,
    Unavailable,
};
use crate::memory::Gcra;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A positive number of milliseconds (Redis refuses `PX 0`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One call of the GCRA script: the totals of `counters` (keys of [`RedisCounters`]), then
/// `checks` (keys of [`RedisRateLimiter`]) in order, stopping at the first refusal.
async fn gcra(
    conn: &RedisConnection,
    script: &Script,
    checks: &[RateCheck<'_>],
    counters: &[&str],
) -> Result<Admitted, Unavailable> {
    let limited: Vec<(Gcra, String, u32)> = checks
        .iter()
        .filter_map(|c| Some((Gcra::of(c.rate)?, conn.key("rate", c.key), c.cost)))
        .collect();
    let counter_keys: Vec<String> = counters.iter().map(|k| conn.key("count", k)).collect();
    let answers: Vec<i64> = if limited.is_empty() && counter_keys.is_empty() {
        Vec::new()
    } else {
        conn.call(async |conn| {
            let mut invocation = script.prepare_invoke();
            invocation.arg(counter_keys.len());
            for key in &counter_keys {
                invocation.key(key);
            }
            for (gcra, key, cost) in &limited {
                invocation
                    .key(key)
                    .arg(micros(gcra.t).max(1))
                    .arg(gcra.burst)
                    .arg(cost.max(&1));
            }
            invocation.invoke_async(conn).await
        })
        .await?
    };
    if answers.len() < counter_keys.len() {
        return Err(Unavailable("Redis answered too few totals".to_owned()));
    }
    let (totals, answers) = answers.split_at(counter_keys.len());
    let totals = totals
        .iter()
        .map(|&total| u64::try_from(total).ok())
        .collect();
    let mut answers = answers.chunks_exact(4).zip(&limited);
    let mut decisions = Vec::with_capacity(checks.len());
    for check in checks {
        let decision = if Gcra::of(check.rate).is_none() {
            Decision::unlimited()
        } else {
            // Fewer answers than limited checks: the script stopped at a refusal.
            let Some((answer, (gcra, _, _))) = answers.next() else {
                break;
            };
            let [allowed, remaining, reset, retry] = [answer[0], answer[1], answer[2], answer[3]];
            Decision {
                allowed: allowed == 1,
                limit: gcra.burst,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset_after: from_micros(reset),
                retry_after: (allowed != 1 && retry >= 0).then(|| from_micros(retry)),
            }
        };
        decisions.push(decision);
        if !decision.allowed {
            break;
        }
    }
    Ok(Admitted { totals, decisions })
}

/// Rate limits shared by every replica (keys `<prefix>:rate:<key>`).
#[derive(Debug)]
pub struct RedisRateLimiter {
    conn: RedisConnection,
    gcra: Script,
}

impl RedisRateLimiter {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            gcra: Script::new(include_str!("gcra.lua")),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, rate: Rate, cost: u32) -> Result<Decision, Unavailable> {
        let decisions = self.check_all(&[RateCheck { key, rate, cost }]).await?;
        decisions
            .into_iter()
            .next()
            .ok_or_else(|| Unavailable("Redis answered no decision".to_owned()))
    }

    async fn check_all(&self, checks: &[RateCheck<'_>]) -> Result<Vec<Decision>, Unavailable> {
        Ok(gcra(&self.conn, &self.gcra, checks, &[]).await?.decisions)
    }
}

/// Admissions over the keys of [`RedisRateLimiter`] and [`RedisCounters`] on the same
/// connection: the counters read and the rate checks made by one script call.
#[derive(Debug)]
pub struct RedisAdmission {
    conn: RedisConnection,
    gcra: Script,
}

impl RedisAdmission {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            gcra: Script::new(include_str!("gcra.lua")),
        }
    }
}

#[async_trait]
impl Admission for RedisAdmission {
    async fn admit(
        &self,
        checks: &[RateCheck<'_>],
        counters: &[&str],
    ) -> Result<Admitted, Unavailable> {
        gcra(&self.conn, &self.gcra, checks, counters).await
    }
}

/// Counters with a window shared by every replica (keys `<prefix>:count:<key>`).
#[derive(Debug)]
pub struct RedisCounters {
    conn: RedisConnection,
    take: Script,
    add: Script,
    seed: Script,
}

impl RedisCounters {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            take: Script::new(include_str!("take.lua")),
            add: Script::new(include_str!("add.lua")),
            seed: Script::new(include_str!("seed.lua")),
        }
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn take(
        &self,
        key: &str,
        amount: u64,
        max: u64,
        window: Duration,
    ) -> Result<Taken, Unavailable> {
        let key = self.conn.key("count", key);
        let (taken, total, resets_in): (i64, u64, i64) = self
            .conn
            .call(async |conn| {
                self.take
                    .key(&key)
                    .arg(amount)
                    .arg(max)
                    .arg(millis(window))
                    .invoke_async(conn)
                    .await
            })
            .await?;
        Ok(Taken {
            taken: taken == 1,
            total,
            resets_in: from_millis(resets_in),
        })
    }

    async fn add(&self, key: &str, amount: u64, window: Duration) -> Result<u64, Unavailable> {
        let totals = self.add_many(&[(key, amount)], window).await?;
        totals
            .into_iter()
            .next()
            .ok_or_else(|| Unavailable("Redis answered no total".to_owned()))
    }

    async fn add_many(
        &self,
        adds: &[(&str, u64)],
        window: Duration,
    ) -> Result<Vec<u64>, Unavailable> {
        if adds.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = adds
            .iter()
            .map(|(k, _)| self.conn.key("count", k))
            .collect();
        self.conn
            .call(async |conn| {
                let mut invocation = self.add.prepare_invoke();
                invocation.arg(millis(window));
                for (key, (_, amount)) in keys.iter().zip(adds) {
                    invocation.key(key).arg(*amount);
                }
                invocation.invoke_async(conn).await
            })
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<u64>, Unavailable> {
        let key = self.conn.key("count", key);
        self.conn
            .call(async |conn| redis::cmd("GET").arg(&key).query_async(conn).await)
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<u64>>, Unavailable> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.conn.key("count", k)).collect();
        self.conn
            .call(async |conn| redis::cmd("MGET").arg(&keys).query_async(conn).await)
            .await
    }

    async fn seed(&self, key: &str, value: u64, window: Duration) -> Result<u64, Unavailable> {
        let key = self.conn.key("count", key);
        self.conn
            .call(async |conn| {
                self.seed
                    .key(&key)
                    .arg(value)
                    .arg(millis(window))
                    .invoke_async(conn)
                    .await
            })
            .await
    }
}

/// Memberships shared by every replica (sorted sets `<prefix>:members:<set>`).
#[derive(Debug)]
pub struct RedisMembership {
    conn: RedisConnection,
    join: Script,
    refresh: Script,
    leave: Script,
    count: Script,
}

impl RedisMembership {
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            join: Script::new(include_str!("join.lua")),
            refresh: Script::new(include_str!("refresh.lua")),
            leave: Script::new(include_str!("leave.lua")),
            count: Script::new(include_str!("count.lua")),
        }
    }
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

#[async_trait]
impl Membership for RedisMembership {
    async fn join(
        &self,
        set: &str,
        member: &str,
        max: usize,
        ttl: Duration,
    ) -> Result<Option<usize>, Unavailable> {
        let key = self.conn.key("members", set);
        let members: i64 = self
            .conn
            .call(async |conn| {
                self.join
                    .key(&key)
                    .arg(member)
                    .arg(max)
                    .arg(millis(ttl))
                    .invoke_async(conn)
                    .await
            })
            .await?;
        Ok((members >= 0).then(|| count(members)))
    }

    async fn refresh(&self, set: &str, member: &str, ttl: Duration) -> Result<(), Unavailable> {
        let key = self.conn.key("members", set);
        self.conn
            .call(async |conn| {
                self.refresh
                    .key(&key)
                    .arg(member)
                    .arg(millis(ttl))
                    .invoke_async::<i64>(conn)
                    .await
            })
            .await
            .map(drop)
    }

    async fn leave(&self, set: &str, member: &str) -> Result<usize, Unavailable> {
        let key = self.conn.key("members", set);
        let left: i64 = self
            .conn
            .call(async |conn| self.leave.key(&key).arg(member).invoke_async(conn).await)
            .await?;
        Ok(count(left))
    }

    async fn count(&self, set: &str) -> Result<usize, Unavailable> {
        let key = self.conn.key("members", set);
        let live: i64 = self
            .conn
            .call(async |conn| self.count.key(&key).invoke_async(conn).await)
            .await?;
        Ok(count(live))
    }
}
