//! A circuit breaker, shared by the inference router's backends and the gateway's upstream
//! services: consecutive failures or an error rate over a window open it; after a pause one
//! probe may pass; a success closes it.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// When a circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// Requests in the window before the error rate counts.
    pub min_requests: u32,
    /// The share of failures (0 to 1) over the window that opens the circuit.
    pub error_rate: f64,
    /// How long the circuit stays open before one probe may pass.
    pub open_for: Duration,
    /// The error rate's window, in seconds.
    pub window_secs: u64,
}

/// A circuit's state, as exported in `/metrics` (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

#[derive(Debug)]
enum Breaker {
    Closed { consecutive: u32, window: Window },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Outcomes over the last `len` seconds in one-second buckets, so recording is O(1) and
/// reading is O(len) however many requests there are.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// (second since `start`, requests, failures) per slot.
    buckets: Vec<(u64, u32, u32)>,
}

impl Window {
    fn new(secs: u64) -> Self {
        let len = usize::try_from(secs.clamp(1, 3600)).unwrap_or(30);
        Self {
            start: Instant::now(),
            buckets: vec![(u64::MAX, 0, 0); len],
        }
    }

    fn record(&mut self, now: Instant, success: bool) {
        let second = now.duration_since(self.start).as_secs();
        let len = self.buckets.len() as u64;
        let slot = &mut self.buckets[usize::try_from(second % len).unwrap_or(0)];
        if slot.0 != second {
            *slot = (second, 0, 0);
        }
        slot.1 += 1;
        if !success {
            slot.2 += 1;
        }
    }

    /// Requests and failures within the window.
    fn totals(&self, now: Instant) -> (u32, u32) {
        let second = now.duration_since(self.start).as_secs();
        let len = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|(at, _, _)| *at != u64::MAX && *at + len > second)
            .fold((0, 0), |(n, f), (_, requests, failures)| {
                (n + requests, f + failures)
            })
    }
}

/// One circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<Breaker>,
    settings: BreakerSettings,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            state: Mutex::new(Breaker::Closed {
                consecutive: 0,
                window: Window::new(settings.window_secs),
            }),
            settings,
        }
    }

    pub fn state(&self) -> CircuitState {
        match &*self.state.lock() {
            Breaker::Closed { .. } => CircuitState::Closed,
            Breaker::HalfOpen { .. } => CircuitState::HalfOpen,
            Breaker::Open { until } if Instant::now() >= *until => CircuitState::HalfOpen,
            Breaker::Open { .. } => CircuitState::Open,
        }
    }

    /// Whether a request may go to this backend now. When the pause of an open circuit has
    /// passed, the first caller becomes the probe and others keep waiting.
    pub fn allow(&self) -> bool {
        let mut state = self.state.lock();
        match &mut *state {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } => {
                if Instant::now() >= *until {
                    *state = Breaker::HalfOpen { probing: true };
                    true
                } else {
                    false
                }
            }
            Breaker::HalfOpen { probing } => {
                if *probing {
                    false
                } else {
                    *probing = true;
                    true
                }
            }
        }
    }

    pub fn record(&self, success: bool) {
        let now = Instant::now();
        let settings = &self.settings;
        let mut state = self.state.lock();
        let open = Breaker::Open {
            until: now + settings.open_for,
        };
        match &mut *state {
            Breaker::HalfOpen { .. } | Breaker::Open { .. } => {
                *state = if success {
                    Breaker::Closed {
                        consecutive: 0,
                        window: Window::new(settings.window_secs),
                    }
                } else {
                    open
                };
            }
            Breaker::Closed {
                consecutive,
                window,
            } => {
                *consecutive = if success { 0 } else { *consecutive + 1 };
                window.record(now, success);
                let tripped_by_rate = !success && {
                    let (requests, failures) = window.totals(now);
                    requests >= settings.min_requests
                        && f64::from(failures) / f64::from(requests) >= settings.error_rate
                };
                if *consecutive >= settings.failures || tripped_by_rate {
                    *state = open;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failures: 3,
            min_requests: 4,
            error_rate: 0.5,
            open_for: Duration::ZERO,
            window_secs: 30,
        }
    }

    #[test]
    fn consecutive_failures_open_then_a_probe_closes() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            open_for: Duration::from_secs(3600),
            ..settings()
        });
        breaker.record(false);
        breaker.record(false);
        assert_eq!(breaker.state(), CircuitState::Closed);
        breaker.record(false);
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(!breaker.allow());

        let breaker = CircuitBreaker::new(settings());
        for _ in 0..3 {
            breaker.record(false);
        }
        // Open for 0 s: the next caller is the single probe.
        assert!(breaker.allow());
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.record(true);
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(breaker.allow());
    }

    #[test]
    fn an_error_rate_opens_and_a_failed_probe_reopens() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failures: 100,
            ..settings()
        });
        for ok in [true, false, true, false] {
            breaker.record(ok);
        }
        assert_ne!(
            breaker.state(),
            CircuitState::Closed,
            "50% errors over 4 requests"
        );
        assert!(breaker.allow());
        breaker.record(false);
        assert!(matches!(*breaker.state.lock(), Breaker::Open { .. }));
    }
}
