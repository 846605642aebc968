//! The tokens of finished requests, added to the shared daily counts off the request path:
//! an answer's last event no longer waits for a round trip to the counters (Redis in split
//! mode), and the additions that queue up while one call is in flight go together in the
//! next, summed per key, so a busy replica makes one call per batch rather than one per
//! request. There is no timer: at low load each addition goes at once, alone.
//!
//! The count of a finished request is therefore in force a moment after its answer ends
//! (the time of one call). The daily limit is checked before a request and counted after
//! it, so requests running together could always pass it by their own tokens; this adds the
//! requests that start within that moment. When the queue is full (the counters far behind)
//! an addition is made directly, as before.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_cache::Counters;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Additions waiting at most; past that they are made directly.
const QUEUE: usize = 8_192;
/// Additions taken from the queue for one call at most.
const BATCH: usize = 1_024;

/// One request's tokens for one counter (a subject's key of the day), and how long the
/// counter lives.
#[derive(Debug)]
pub struct Addition {
    pub key: String,
    pub tokens: u64,
    pub window: Duration,
}

/// Hands additions to the background adder.
#[derive(Debug, Clone)]
pub struct Tally {
    queue: mpsc::Sender<Addition>,
}

impl Tally {
    /// Starts the adder on `tasks`; it adds what is queued and stops when `shutdown` is
    /// cancelled.
    pub fn start(
        counters: Arc<dyn Counters>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tasks.spawn(adder(counters, receiver, shutdown));
        Self { queue }
    }

    /// Queues `additions`; gives back those the queue had no room for (or all of them once
    /// the adder stopped), for the caller to add itself.
    pub fn queue(&self, additions: Vec<Addition>) -> Vec<Addition> {
        let mut left = Vec::new();
        for addition in additions {
            if let Err(refused) = self.queue.try_send(addition) {
                left.push(refused.into_inner());
            }
        }
        left
    }
}

async fn adder(
    counters: Arc<dyn Counters>,
    mut receiver: mpsc::Receiver<Addition>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            biased;
            taken = receiver.recv_many(&mut batch, BATCH) => {
                if taken == 0 {
                    break;
                }
                add(counters.as_ref(), &mut batch).await;
            }
            () = shutdown.cancelled() => {
                while let Ok(addition) = receiver.try_recv() {
                    batch.push(addition);
                }
                add(counters.as_ref(), &mut batch).await;
                break;
            }
        }
    }
}

/// Adds `batch` in one call, summed per key (each counter keeps the longest window asked).
pub async fn add(counters: &dyn Counters, batch: &mut Vec<Addition>) {
    if batch.is_empty() {
        return;
    }
    let mut sums: HashMap<String, u64> = HashMap::with_capacity(batch.len().min(64));
    let mut window = Duration::ZERO;
    for addition in batch.drain(..) {
        window = window.max(addition.window);
        *sums.entry(addition.key).or_insert(0) += addition.tokens;
    }
    let adds: Vec<(&str, u64)> = sums.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    if let Err(error) = counters.add_many(&adds, window).await {
        tracing::warn!(%error, "tokens not counted against the daily limit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_cache::MemoryCounters;

    #[tokio::test]
    async fn queued_additions_are_summed_per_key_and_added_by_shutdown() {
        let counters = Arc::new(MemoryCounters::new(100));
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let tally = Tally::start(counters.clone(), &tasks, shutdown.clone());
        let day = Duration::from_secs(3_600);
        for (key, tokens) in [("a", 5), ("b", 7), ("a", 10)] {
            let left = tally.queue(vec![Addition {
                key: key.to_owned(),
                tokens,
                window: day,
            }]);
            assert!(left.is_empty());
        }
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        let totals = counters.get_many(&["a", "b", "c"]).await.unwrap();
        assert_eq!(totals, vec![Some(15), Some(7), None]);
        // The adder is gone: what is queued now comes back to the caller.
        let left = tally.queue(vec![Addition {
            key: "a".into(),
            tokens: 1,
            window: day,
        }]);
        assert_eq!(left.len(), 1);
    }
}
