//! Per-user and per-API-key limits on the inference API: requests per minute (a keyed GCRA
//! limiter), tokens per UTC day (counted in memory, seeded from the usage log on first use
//! each day) and requests running at once (a [`Slot`] per running request). Every answer
//! carries OpenAI's `x-ratelimit-*` headers; a refusal is 429 with `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use confab_core::auth::{Credential, Principal};
use confab_core::config::{ConcurrencyConfig, LimitsConfig};
use confab_core::runtime::LiveSettings;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::InferenceError;
use crate::ports::UsageLog;
use crate::usage::{Subject, day_of};

type Limiter =
    RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

fn limiter(per_minute: u32) -> Option<Limiter> {
    let rate = NonZeroU32::new(per_minute)?;
    Some(
        RateLimiter::keyed(Quota::per_minute(rate)).with_middleware::<StateInformationMiddleware>(),
    )
}

/// The rate-limit headers of one request.
#[derive(Debug, Clone, Default)]
pub struct Allowance {
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The limits in force and their limiters.
struct Levels {
    config: LimitsConfig,
    user_rpm: Option<Limiter>,
    key_rpm: Option<Limiter>,
}

impl Levels {
    fn new(config: &LimitsConfig) -> Self {
        Self {
            user_rpm: limiter(config.user_requests_per_minute),
            key_rpm: limiter(config.key_requests_per_minute),
            config: config.clone(),
        }
    }
}

pub struct Limits {
    levels: parking_lot::RwLock<Arc<Levels>>,
    /// Where admins change the limits at run time; `None`: the start-up config only.
    settings: std::sync::OnceLock<LiveSettings>,
    clock: DefaultClock,
    /// Tokens used today per subject: (day, tokens).
    tokens: Mutex<HashMap<Subject, (String, u64)>>,
    /// Where the day's tokens so far are read from; `None`: counted from zero.
    usage: Option<Arc<dyn UsageLog>>,
    concurrency: ConcurrencyConfig,
    /// Requests running now per subject.
    running: Arc<Mutex<HashMap<Subject, u32>>>,
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
            .field("config", &self.levels.read().config)
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
    ) -> Self {
        Self {
            levels: parking_lot::RwLock::new(Arc::new(Levels::new(config))),
            settings: std::sync::OnceLock::new(),
            clock: DefaultClock::default(),
            tokens: Mutex::new(HashMap::new()),
            usage,
            concurrency: concurrency.clone(),
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a place among the requests `principal` has running, or refuses with 429
    /// `concurrency_exceeded` when their user (or key) is at its cap.
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

    /// The limits in force; rebuilt when an admin changed them (request counts restart).
    fn levels(&self) -> Arc<Levels> {
        let current = self.levels.read().clone();
        let Some(settings) = self.settings.get() else {
            return current;
        };
        let wanted = LimitsConfig::from(&settings.get().limits);
        if wanted == current.config {
            return current;
        }
        let mut levels = self.levels.write();
        if levels.config != wanted {
            *levels = Arc::new(Levels::new(&wanted));
        }
        levels.clone()
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

    fn token_limit(levels: &Levels, subject: Subject) -> u64 {
        match subject {
            Subject::User(_) => levels.config.user_tokens_per_day,
            Subject::Key(_) => levels.config.key_tokens_per_day,
        }
    }

    /// Tokens `subject` used today, loading the day's total from the usage log once.
    async fn used_today(&self, subject: Subject, today: &str) -> u64 {
        if let Some((day, used)) = self.tokens.lock().get(&subject)
            && day == today
        {
            return *used;
        }
        let stored = match &self.usage {
            Some(usage) => usage.tokens_used(subject, today).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read today's token usage; counting from zero");
                0
            }),
            None => 0,
        };
        let mut tokens = self.tokens.lock();
        let entry = tokens
            .entry(subject)
            .or_insert_with(|| (today.to_owned(), stored));
        if entry.0 != today {
            *entry = (today.to_owned(), stored);
        }
        entry.1
    }

    /// Admits a request or refuses it with 429; returns the headers to send either way.
    pub async fn check(&self, principal: &Principal) -> Result<Allowance, InferenceError> {
        let now = confab_core::now_ms();
        let today = day_of(now);
        let (user, key) = Self::subjects(principal);
        let levels = self.levels();
        let mut allowance = Allowance::default();
        let checks = [(
            user,
            levels.user_rpm.as_ref(),
            levels.config.user_requests_per_minute,
        )]
        .into_iter()
        .chain(key.map(|k| {
            (
                k,
                levels.key_rpm.as_ref(),
                levels.config.key_requests_per_minute,
            )
        }));
        let mut request_headers = Vec::new();
        let mut token_headers = Vec::new();
        for (subject, limiter, per_minute) in checks {
            if let Some(limiter) = limiter {
                match limiter.check_key(&subject.id()) {
                    Ok(snapshot) => {
                        request_headers = vec![
                            header("x-ratelimit-limit-requests", per_minute),
                            header(
                                "x-ratelimit-remaining-requests",
                                snapshot.remaining_burst_capacity(),
                            ),
                            header(
                                "x-ratelimit-reset-requests",
                                format!("{}s", 60 / per_minute.max(1)),
                            ),
                        ];
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.clock.now()).as_secs() + 1;
                        return Err(InferenceError::Limited {
                            code: "rate_limit_exceeded",
                            message: format!(
                                "request limit of {per_minute} per minute reached; retry in {wait} s"
                            ),
                            retry_after_secs: Some(wait),
                        });
                    }
                }
            }
            let limit = Self::token_limit(&levels, subject);
            if limit > 0 {
                let used = self.used_today(subject, &today).await;
                let reset = secs_to_midnight(now);
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
        }
        allowance.headers = request_headers
            .into_iter()
            .chain(token_headers)
            .flatten()
            .collect();
        Ok(allowance)
    }

    /// Counts the tokens of a finished request against today's limits.
    pub fn add_tokens(&self, principal: &Principal, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let today = day_of(confab_core::now_ms());
        let (user, key) = Self::subjects(principal);
        let levels = self.levels();
        let mut counts = self.tokens.lock();
        for subject in std::iter::once(user).chain(key) {
            if Self::token_limit(&levels, subject) == 0 {
                continue;
            }
            let entry = counts.entry(subject).or_insert_with(|| (today.clone(), 0));
            if entry.0 != today {
                *entry = (today.clone(), 0);
            }
            entry.1 += tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::auth::{Role, Scope};

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
        );
        let p = key_principal();
        let ok = limits.check(&p).await.unwrap();
        assert!(
            ok.headers
                .iter()
                .any(|(n, v)| n == "x-ratelimit-remaining-tokens" && v == "100")
        );
        limits.add_tokens(&p, 60);
        let ok = limits.check(&p).await.unwrap();
        assert!(
            ok.headers
                .iter()
                .any(|(n, v)| n == "x-ratelimit-remaining-tokens" && v == "40")
        );
        limits.add_tokens(&p, 60);
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
