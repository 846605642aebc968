//! The research cap: YouTube searches (research cache misses) one user may start an hour,
//! counted with the [`Counters`] port, so with the shared adapter (Redis, split mode) the cap
//! holds across every replica, and all-in-one counts in this process.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::Counters;
use uuid::Uuid;

use super::SeoError;

/// The window of the cap.
const HOUR: Duration = Duration::from_secs(3_600);

/// At most `per_hour` researches per user in each hour from their first.
pub struct ResearchCap {
    counters: Arc<dyn Counters>,
    per_hour: u32,
}

impl std::fmt::Debug for ResearchCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResearchCap")
            .field("per_hour", &self.per_hour)
            .finish_non_exhaustive()
    }
}

impl ResearchCap {
    /// The cap of `per_hour` (at least 1) in `counters`.
    pub fn new(counters: Arc<dyn Counters>, per_hour: u32) -> Self {
        Self {
            counters,
            per_hour: per_hour.max(1),
        }
    }

    /// Takes one of `user`'s researches this hour, or refuses with
    /// [`SeoError::TooManyResearches`]. When the counters cannot answer, the research goes
    /// ahead (the fallback adapters count in this process instead, so this is rare).
    pub async fn take(&self, user: Uuid) -> Result<(), SeoError> {
        let key = format!("seo:research:{}", user.simple());
        match self
            .counters
            .take(&key, 1, u64::from(self.per_hour), HOUR)
            .await
        {
            Ok(taken) if taken.taken => Ok(()),
            Ok(_) => Err(SeoError::TooManyResearches {
                per_hour: self.per_hour,
            }),
            Err(error) => {
                tracing::warn!(%error, "the research cap is unavailable; not checked");
                Ok(())
            }
        }
    }
}
