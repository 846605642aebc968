//! A gate for warnings about a dependency that is down: one line every few seconds, not one
//! per request.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Opens at most once every `every`.
#[derive(Debug)]
pub(crate) struct WarnEvery {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl WarnEvery {
    pub(crate) const fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    /// Whether to log now; when true, the next `every` stays quiet.
    pub(crate) fn ready(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock();
        match *last {
            Some(at) if now.duration_since(at) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// How often a failing dependency is reported.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_per_period() {
        let gate = WarnEvery::new(Duration::from_secs(60));
        assert!(gate.ready());
        assert!(!gate.ready());
        let open = WarnEvery::new(Duration::ZERO);
        assert!(open.ready());
        assert!(open.ready());
    }
}
