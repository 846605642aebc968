//! Per-user and per-API-key limits on the inference API: requests per minute and tokens per
//! UTC day (rate limits, and [`Counters`] under a key naming the day, seeded from the usage
//! log on the day's first use; both asked in one call of the [`Admission`] port) and requests
//! running at once (a [`Slot`] per running request). With the shared adapters (Redis, split
//! mode) the first two are exact across replicas; all-in-one uses the in-process adapters.
//! Every answer carries OpenAI's `x-ratelimit-*` headers; a refusal is 429 with
//! `Retry-After`.
//!
//! Requests running at once stay counted per process, on purpose: the cap protects the
//! capacity of the replica that runs the request (its engine queue and connections are its
//! own), a slot is freed synchronously when its answer ends or is dropped (a shared count
//! would cost two more round trips per request and a task per release), and a replica killed
//! with requests running would hold its users' places for a time to live. The shared
//! requests-per-minute and tokens-per-day limits bound what a user can do across replicas;
//! the concurrency cap is therefore `cap × replicas` at most.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_cache::{Admission, Counters, Paired, Rate, RateCheck};
use confab_core::auth::{Credential, Principal};
use confab_core::config::{ConcurrencyConfig, LimitsConfig};
use confab_core::runtime::LiveSettings;
use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::InferenceError;
use crate::ports::UsageLog;
use crate::tally::{self, Addition, Tally};
use crate::usage::{Subject, day_of};

/// The shared state the limits are kept in (the in-process adapters all-in-one, Redis ones
/// wrapped in their fallbacks in split mode).
#[derive(Clone)]
pub struct LimitPorts {
    /// A request's admission: its requests per minute (per user and per key) taken and its
    /// tokens of the day read, in one call.
    pub admission: Arc<dyn Admission>,
    /// Tokens per UTC day per user and per key (the counters `admission` reads).
    pub counters: Arc<dyn Counters>,
}

impl std::fmt::Debug for LimitPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitPorts").finish_non_exhaustive()
    }
}

impl LimitPorts {
    /// The in-process adapters: limits held by this process alone.
    pub fn in_process() -> Self {
        let counters: Arc<dyn Counters> = Arc::new(confab_cache::MemoryCounters::new(100_000));
        Self {
            admission: Arc::new(Paired {
                rate: Arc::new(confab_cache::MemoryRateLimiter::new()),
                counters: counters.clone(),
            }),
            counters,
        }
    }
}

/// The rate-limit headers of one request.
#[derive(Debug, Clone, Default)]
pub struct Allowance {
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub struct Limits {
    config: LimitsConfig,
    /// Where admins change the limits at run time; `None`: the start-up config only.
    settings: std::sync::OnceLock<LiveSettings>,
    ports: LimitPorts,
    /// Where the day's tokens so far are read from; `None`: counted from zero.
    usage: Option<Arc<dyn UsageLog>>,
    concurrency: ConcurrencyConfig,
    /// Requests running now per subject, in this process.
    running: Arc<Mutex<HashMap<Subject, u32>>>,
    /// Adds finished requests' tokens off the request path once started; until then (and
    /// when it is full) they are added directly.
    tally: std::sync::OnceLock<Tally>,
}

/// One running request's place in its user's (and key's) concurrency count; freed on drop.
#[derive(Debug)]
pub struct Slot {
    running: Arc<Mutex<HashMap<Subject, u32>>>,
    subjects: Vec<Subject>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.running.lock();
        for subject in &self.subjects {
            if let Some(count) = running.get_mut(subject) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    running.remove(subject);
                }
            }
        }
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

fn secs_to_midnight(now_ms: i64) -> u64 {
    let day_ms = 86_400_000;
    u64::try_from((day_ms - now_ms.rem_euclid(day_ms)) / 1000 + 1).unwrap_or(1)
}

fn header(name: &'static str, value: impl ToString) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_static(name),
        HeaderValue::from_str(&value.to_string()).ok()?,
    ))
}

impl Limits {
    pub fn new(
        config: &LimitsConfig,
        concurrency: &ConcurrencyConfig,
        usage: Option<Arc<dyn UsageLog>>,
        ports: LimitPorts,
    ) -> Self {
        Self {
            config: config.clone(),
            settings: std::sync::OnceLock::new(),
            ports,
            usage,
            concurrency: concurrency.clone(),
            running: Arc::new(Mutex::new(HashMap::new())),
            tally: std::sync::OnceLock::new(),
        }
    }

    /// Adds finished requests' tokens to the shared counts from a task on `tasks` (see
    /// [`crate::tally`]) rather than on the request path.
    pub fn tally_in_background(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let _ = self
            .tally
            .get_or_init(|| Tally::start(self.ports.counters.clone(), tasks, shutdown));
    }

    /// Takes a place among the requests `principal` has running in this process, or refuses
    /// with 429 `concurrency_exceeded` when their user (or key) is at its cap.
    pub fn acquire(&self, principal: &Principal) -> Result<Slot, InferenceError> {
        let (user, key) = Self::subjects(principal);
        let caps = [(Some(user), self.concurrency.user_requests, "your account")]
            .into_iter()
            .chain([(key, self.concurrency.key_requests, "this API key")]);
        let mut running = self.running.lock();
        let mut subjects = Vec::with_capacity(2);
        for (subject, cap, whose) in caps {
            let Some(subject) = subject else { continue };
            let count = running.get(&subject).copied().unwrap_or(0);
            if cap > 0 && count >= cap {
                return Err(InferenceError::Limited {
                    code: "concurrency_exceeded",
                    message: format!(
                        "{whose} already has {count} requests running (at most {cap} at once); \
                         wait for one to finish"
                    ),
                    retry_after_secs: Some(1),
                });
            }
            subjects.push(subject);
        }
        for subject in &subjects {
            *running.entry(*subject).or_insert(0) += 1;
        }
        Ok(Slot {
            running: self.running.clone(),
            subjects,
        })
    }

    /// Follows the limits in `settings` from now on (runtime configuration).
    pub fn use_settings(&self, settings: LiveSettings) {
        let _ = self.settings.set(settings);
    }

    /// The limits in force: the runtime settings' when followed, else the start-up ones.
    fn config(&self) -> LimitsConfig {
        match self.settings.get() {
            Some(settings) => LimitsConfig::from(&settings.get().limits),
            None => self.config.clone(),
        }
    }

    fn subjects(principal: &Principal) -> (Subject, Option<Subject>) {
        let key = match &principal.credential {
            Credential::ApiKey { key_id, .. }
            | Credential::Service {
                key_id: Some(key_id),
                ..
            } => Some(Subject::Key(*key_id)),
            Credential::Session { .. } | Credential::Service { key_id: None, .. } => None,
        };
        (Subject::User(principal.user_id), key)
    }

    fn token_limit(config: &LimitsConfig, subject: Subject) -> u64 {
        match subject {
            Subject::User(_) => config.user_tokens_per_day,
            Subject::Key(_) => config.key_tokens_per_day,
        }
    }

    fn requests_per_minute(config: &LimitsConfig, subject: Subject) -> u32 {
        match subject {
            Subject::User(_) => config.user_requests_per_minute,
            Subject::Key(_) => config.key_requests_per_minute,
        }
    }

    /// The key of `subject`'s requests per minute.
    fn rate_key(subject: Subject) -> String {
        format!("inference:rpm:{}", subject_key(subject))
    }

    /// The key of `subject`'s tokens on `day` (`YYYY-MM-DD`, UTC).
    fn tokens_key(subject: Subject, day: &str) -> String {
        format!("inference:tokens:{day}:{}", subject_key(subject))
    }

    /// Tokens each of `keys` (a subject's key of today) used today, from `totals` (their
    /// shared counts, `None` for all when they could not be read); a count not started yet is
    /// started from the usage log (on the day's first use, by any replica).
    async fn used_today(
        &self,
        keys: &[(Subject, String)],
        totals: Option<Vec<Option<u64>>>,
        today: &str,
        window: Duration,
    ) -> Vec<Option<u64>> {
        let Some(totals) = totals else {
            return vec![None; keys.len()];
        };
        let counters = &self.ports.counters;
        let mut used = Vec::with_capacity(keys.len());
        for ((subject, key), total) in keys.iter().zip(totals) {
            if total.is_some() {
                used.push(total);
                continue;
            }
            let stored = match &self.usage {
                Some(usage) => usage.tokens_used(*subject, today).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read today's token usage; counting from zero");
                    0
                }),
                None => 0,
            };
            // Another replica may have started the day meanwhile: the count in force wins.
            used.push(match counters.seed(key, stored, window).await {
                Ok(total) => Some(total),
                Err(error) => {
                    tracing::warn!(%error, "token counts unavailable; the daily limit is not checked");
                    None
                }
            });
        }
        used
    }

    /// Admits a request or refuses it with 429; returns the headers to send either way. The
    /// requests-per-minute checks and the read of the day's tokens are one call of the
    /// admission port (one round trip with the shared adapter).
    pub async fn check(&self, principal: &Principal) -> Result<Allowance, InferenceError> {
        let now = confab_core::now_ms();
        let today = day_of(now);
        let reset = secs_to_midnight(now);
        // The day's count outlives the day a little, so a replica with a late clock still
        // finds it; the key names the day, so the next day starts from zero.
        let day_window = Duration::from_secs(reset + 3_600);
        let (user, key) = Self::subjects(principal);
        let config = self.config();
        let subjects = || std::iter::once(user).chain(key);
        let rates: Vec<(u32, String)> = subjects()
            .map(|s| (Self::requests_per_minute(&config, s), Self::rate_key(s)))
            .filter(|(per_minute, _)| *per_minute > 0)
            .collect();
        let token_keys: Vec<(Subject, String)> = subjects()
            .filter(|s| Self::token_limit(&config, *s) > 0)
            .map(|s| (s, Self::tokens_key(s, &today)))
            .collect();
        let checks: Vec<RateCheck<'_>> = rates
            .iter()
            .map(|(per_minute, key)| RateCheck {
                key,
                rate: Rate::per_minute(*per_minute),
                cost: 1,
            })
            .collect();
        let counters: Vec<&str> = token_keys.iter().map(|(_, key)| key.as_str()).collect();
        // Nothing to ask (every limit off) costs no call: the adapters answer empty at once.
        let (decisions, totals) = match self.ports.admission.admit(&checks, &counters).await {
            Ok(admitted) => (Some(admitted.decisions), Some(admitted.totals)),
            Err(error) => {
                tracing::warn!(%error, "request and token limits unavailable; not checked");
                (None, None)
            }
        };
        let used = self
            .used_today(&token_keys, totals, &today, day_window)
            .await;
        let mut headers = Vec::new();
        match decisions {
            None => {}
            Some(decisions) => {
                for ((per_minute, _), decision) in rates.iter().zip(&decisions) {
                    if !decision.allowed {
                        let wait = decision.retry_after.map_or(60, |d| d.as_secs() + 1);
                        return Err(InferenceError::Limited {
                            code: "rate_limit_exceeded",
                            message: format!(
                                "request limit of {per_minute} per minute reached; retry in {wait} s"
                            ),
                            retry_after_secs: Some(wait),
                        });
                    }
                }
                // The tightest subject speaks for the request: the last one (the key's).
                if let (Some((per_minute, _)), Some(decision)) = (rates.last(), decisions.last()) {
                    let reset_secs = decision.reset_after.as_secs_f64().ceil();
                    headers.extend([
                        header("x-ratelimit-limit-requests", per_minute),
                        header("x-ratelimit-remaining-requests", decision.remaining),
                        header("x-ratelimit-reset-requests", format!("{reset_secs}s")),
                    ]);
                }
            }
        }
        let mut token_headers = Vec::new();
        for ((subject, _), used) in token_keys.iter().zip(used) {
            let Some(used) = used else { continue };
            let limit = Self::token_limit(&config, *subject);
            if used >= limit {
                return Err(InferenceError::Limited {
                    code: "tokens_exceeded",
                    message: format!(
                        "daily token limit of {limit} reached; it resets at midnight UTC"
                    ),
                    retry_after_secs: Some(reset),
                });
            }
            token_headers = vec![
                header("x-ratelimit-limit-tokens", limit),
                header("x-ratelimit-remaining-tokens", limit - used),
                header("x-ratelimit-reset-tokens", format!("{reset}s")),
            ];
        }
        Ok(Allowance {
            headers: headers.into_iter().chain(token_headers).flatten().collect(),
        })
    }

    /// Counts the tokens of a finished request against today's limits (on every replica):
    /// queued for the background adder when it runs (the count is in force a moment later),
    /// else added here in one call.
    pub async fn add_tokens(&self, principal: &Principal, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = confab_core::now_ms();
        let today = day_of(now);
        let window = Duration::from_secs(secs_to_midnight(now) + 3_600);
        let (user, key) = Self::subjects(principal);
        let config = self.config();
        let additions: Vec<Addition> = std::iter::once(user)
            .chain(key)
            .filter(|s| Self::token_limit(&config, *s) > 0)
            .map(|s| Addition {
                key: Self::tokens_key(s, &today),
                tokens,
                window,
            })
            .collect();
        if additions.is_empty() {
            return;
        }
        let mut left = match self.tally.get() {
            Some(tally) => tally.queue(additions),
            None => additions,
        };
        tally::add(self.ports.counters.as_ref(), &mut left).await;
    }
}

/// A subject as a key part: `user:<id>` or `key:<id>`.
fn subject_key(subject: Subject) -> String {
    match subject {
        Subject::User(id) => format!("user:{}", id.simple()),
        Subject::Key(id) => format!("key:{}", id.simple()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::auth::{Role, Scope};
    use uuid::Uuid;

    fn key_principal() -> Principal {
        Principal {
            user_id: Uuid::now_v7(),
            role: Role::User,
            credential: Credential::ApiKey {
                key_id: Uuid::now_v7(),
                scopes: vec![Scope::Inference],
            },
        }
    }

    #[tokio::test]
    async fn requests_per_minute_then_429() {
        let limits = Limits::new(
            &LimitsConfig {
                key_requests_per_minute: 2,
                ..LimitsConfig::default()
            },
            &ConcurrencyConfig::default(),
            None,
            LimitPorts::in_process(),
        );
        let p = key_principal();
        let first = limits.check(&p).await.unwrap();
        assert!(
            first
                .headers
                .iter()
                .any(|(n, v)| n == "x-ratelimit-remaining-requests" && v == "1")
        );
        limits.check(&p).await.unwrap();
        let refused = limits.check(&p).await.unwrap_err();
        assert_eq!(
            (refused.status(), refused.code()),
            (429, "rate_limit_exceeded")
        );
        assert!(refused.retry_after_secs().unwrap() >= 1);
        // Another key has its own allowance.
        limits.check(&key_principal()).await.unwrap();
    }

    #[tokio::test]
    async fn tokens_per_day() {
        let limits = Limits::new(
            &LimitsConfig {
                user_tokens_per_day: 100,
                ..LimitsConfig::default()
            },
            &ConcurrencyConfig::default(),
            None,
            LimitPorts::in_process(),
        );
        let p = key_principal();
        let ok = limits.check(&p).await.unwrap();
        assert!(
            ok.headers
                .iter()
                .any(|(n, v)| n == "x-ratelimit-remaining-tokens" && v == "100")
        );
        limits.add_tokens(&p, 60).await;
        let ok = limits.check(&p).await.unwrap();
        assert!(
            ok.headers
                .iter()
                .any(|(n, v)| n == "x-ratelimit-remaining-tokens" && v == "40")
        );
        limits.add_tokens(&p, 60).await;
        let refused = limits.check(&p).await.unwrap_err();
        assert_eq!(refused.code(), "tokens_exceeded");
        assert!(refused.retry_after_secs().unwrap() <= 86_401);
    }

    #[test]
    fn running_requests_per_user_and_key_are_capped_and_freed_on_drop() {
        let limits = Limits::new(
            &LimitsConfig::default(),
            &ConcurrencyConfig {
                user_requests: 3,
                key_requests: 2,
                engine_queue: 0,
            },
            None,
            LimitPorts::in_process(),
        );
        let p = key_principal();
        let a = limits.acquire(&p).unwrap();
        let _b = limits.acquire(&p).unwrap();
        // The key is at its cap of 2.
        let refused = limits.acquire(&p).unwrap_err();
        assert_eq!(
            (refused.status(), refused.code()),
            (429, "concurrency_exceeded")
        );
        assert_eq!(refused.retry_after_secs(), Some(1));
        // The same user through their session still has one place left, then none.
        let session = Principal {
            user_id: p.user_id,
            role: Role::User,
            credential: Credential::Session {
                session_id: Uuid::now_v7(),
            },
        };
        let _c = limits.acquire(&session).unwrap();
        assert!(limits.acquire(&session).is_err());
        // Another user is not affected.
        limits.acquire(&key_principal()).unwrap();
        // A finished request frees its place for both counts.
        drop(a);
        limits.acquire(&p).unwrap();
        assert!(limits.running.lock().len() <= 3);
    }

    #[test]
    fn zero_means_unlimited() {
        let limits = Limits::new(
            &LimitsConfig::default(),
            &ConcurrencyConfig {
                user_requests: 0,
                key_requests: 0,
                engine_queue: 0,
            },
            None,
            LimitPorts::in_process(),
        );
        let p = key_principal();
        let slots: Vec<_> = (0..100).map(|_| limits.acquire(&p).unwrap()).collect();
        assert_eq!(slots.len(), 100);
        drop(slots);
        assert!(
            limits.running.lock().is_empty(),
            "counts are forgotten at zero"
        );
    }
}
