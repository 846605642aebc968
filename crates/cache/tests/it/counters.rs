//! The `Counters` contract: takes within a maximum, additions, seeds, windows that end, and
//! exactness when two replicas take from one key.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::Counters;
use futures::future::join_all;

use crate::support::{SLACK, every_adapter, replica_pairs};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn takes_stay_within_the_maximum() {
    for adapters in every_adapter("takes_stay_within_the_maximum") {
        let c = &adapters.counters;
        let name = adapters.name;
        for (amount, taken, total) in [(4, true, 4), (4, true, 8), (4, false, 8), (2, true, 10)] {
            let t = c.take("k", amount, 10, MINUTE).await.unwrap();
            assert_eq!((t.taken, t.total), (taken, total), "{name}: {t:?}");
            assert!(
                t.resets_in > MINUTE - Duration::from_secs(5) && t.resets_in <= MINUTE,
                "{name}: {t:?}"
            );
        }
        assert_eq!(c.get("k").await.unwrap(), Some(10), "{name}");
        // Refused on a key with no window: nothing starts.
        let t = c.take("fresh", 11, 10, MINUTE).await.unwrap();
        assert_eq!(
            (t.taken, t.total, t.resets_in),
            (false, 0, Duration::ZERO),
            "{name}"
        );
        assert_eq!(c.get("fresh").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn additions_count_and_windows_end() {
    for adapters in every_adapter("additions_count_and_windows_end") {
        let c = &adapters.counters;
        let name = adapters.name;
        let window = Duration::from_millis(200);
        assert_eq!(c.add("k", 5, window).await.unwrap(), 5, "{name}");
        assert_eq!(c.add("k", 3, window).await.unwrap(), 8, "{name}");
        // A take on the same key sees the additions.
        let t = c.take("k", 3, 10, window).await.unwrap();
        assert_eq!((t.taken, t.total), (false, 8), "{name}");
        tokio::time::sleep(window + SLACK).await;
        assert_eq!(c.get("k").await.unwrap(), None, "{name}: the window ended");
        assert_eq!(
            c.add("k", 2, window).await.unwrap(),
            2,
            "{name}: a new window"
        );
        // Later additions do not stretch the window.
        tokio::time::sleep(window / 2).await;
        c.add("k", 1, window).await.unwrap();
        tokio::time::sleep(window / 2 + SLACK).await;
        assert_eq!(c.get("k").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn a_seed_starts_a_window_once() {
    for adapters in every_adapter("a_seed_starts_a_window_once") {
        let c = &adapters.counters;
        let name = adapters.name;
        assert_eq!(c.seed("k", 7, MINUTE).await.unwrap(), 7, "{name}");
        assert_eq!(c.seed("k", 100, MINUTE).await.unwrap(), 7, "{name}");
        let t = c.take("k", 4, 10, MINUTE).await.unwrap();
        assert_eq!((t.taken, t.total), (false, 7), "{name}");
        let t = c.take("k", 3, 10, MINUTE).await.unwrap();
        assert_eq!((t.taken, t.total), (true, 10), "{name}");
    }
}

#[tokio::test]
async fn many_keys_are_read_and_added_together() {
    for adapters in every_adapter("many_keys_are_read_and_added_together") {
        let c = &adapters.counters;
        let name = adapters.name;
        assert!(c.get_many(&[]).await.unwrap().is_empty(), "{name}");
        assert!(c.add_many(&[], MINUTE).await.unwrap().is_empty(), "{name}");
        let totals = c.add_many(&[("x", 3), ("y", 4)], MINUTE).await.unwrap();
        assert_eq!(totals, [3, 4], "{name}");
        let totals = c.add_many(&[("x", 1), ("y", 1)], MINUTE).await.unwrap();
        assert_eq!(totals, [4, 5], "{name}");
        let read = c.get_many(&["x", "missing", "y"]).await.unwrap();
        assert_eq!(read, [Some(4), None, Some(5)], "{name}");
        // The window is the one given: a take sees the totals.
        let t = c.take("y", 1, 5, MINUTE).await.unwrap();
        assert_eq!((t.taken, t.total), (false, 5), "{name}");
        assert!(
            t.resets_in > MINUTE - Duration::from_secs(5),
            "{name}: {t:?}"
        );
    }
}

#[tokio::test]
async fn two_replicas_never_take_past_the_maximum() {
    for (a, b) in replica_pairs("two_replicas_never_take_past_the_maximum") {
        let takes = (0..200).map(|i| {
            let counters: Arc<dyn Counters> =
                Arc::clone(if i % 2 == 0 { &a.counters } else { &b.counters });
            async move { counters.take("hot", 1, 37, MINUTE).await.unwrap() }
        });
        let results = join_all(takes).await;
        assert_eq!(results.iter().filter(|t| t.taken).count(), 37, "{}", a.name);
        assert!(results.iter().all(|t| t.total <= 37), "{}", a.name);
        assert_eq!(a.counters.get("hot").await.unwrap(), Some(37), "{}", a.name);
    }
}
