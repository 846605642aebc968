//! The `Admission` contract: counters read and rate checks made in one call, with the same
//! answers as the two ports asked apart, over the same state; exact when two replicas admit
//! on one key.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::{Admission, Rate, RateCheck};
use futures::future::join_all;

use crate::support::{every_adapter, replica_pairs};

const HOUR: Duration = Duration::from_secs(3600);

fn check(key: &str, limit: u32) -> RateCheck<'_> {
    RateCheck {
        key,
        rate: Rate {
            limit,
            period: HOUR,
            burst: limit,
        },
        cost: 1,
    }
}

#[tokio::test]
async fn totals_are_read_and_checks_taken_in_one_call() {
    for adapters in every_adapter("totals_are_read_and_checks_taken_in_one_call") {
        let name = adapters.name;
        let admission = &adapters.admission;
        let empty = admission.admit(&[], &[]).await.unwrap();
        assert!(
            empty.totals.is_empty() && empty.decisions.is_empty(),
            "{name}"
        );

        // The counters are the `Counters` port's keys, the checks the `RateLimiter`'s.
        adapters.counters.add("day:a", 40, HOUR).await.unwrap();
        let first = admission
            .admit(&[check("user", 3), check("key", 2)], &["day:a", "day:none"])
            .await
            .unwrap();
        assert_eq!(first.totals, [Some(40), None], "{name}");
        let remaining: Vec<_> = first
            .decisions
            .iter()
            .map(|d| (d.allowed, d.remaining))
            .collect();
        assert_eq!(remaining, [(true, 2), (true, 1)], "{name}: {first:?}");
        // What the admission took, the rate limiter sees, and the other way round.
        let user = adapters
            .rate
            .check("user", check("", 3).rate, 1)
            .await
            .unwrap();
        assert!(user.allowed && user.remaining == 1, "{name}: {user:?}");

        // Only counters, or only checks.
        adapters.counters.add("day:a", 2, HOUR).await.unwrap();
        let read = admission.admit(&[], &["day:a"]).await.unwrap();
        assert_eq!(read.totals, [Some(42)], "{name}");
        assert!(read.decisions.is_empty(), "{name}");
        let taken = admission.admit(&[check("key", 2)], &[]).await.unwrap();
        assert!(taken.totals.is_empty(), "{name}");
        assert!(
            taken.decisions.len() == 1 && taken.decisions[0].allowed,
            "{name}: {taken:?}"
        );

        // `key` is spent: the call refuses there and stops, the totals are still read, `user`
        // keeps what it took and the check after the refusal is not made.
        let refused = admission
            .admit(
                &[check("user", 3), check("key", 2), check("after", 1)],
                &["day:a"],
            )
            .await
            .unwrap();
        assert_eq!(refused.totals, [Some(42)], "{name}");
        assert_eq!(refused.decisions.len(), 2, "{name}: {refused:?}");
        assert!(refused.decisions[0].allowed, "{name}: {refused:?}");
        let key = refused.decisions[1];
        assert!(
            !key.allowed && key.retry_after.is_some_and(|d| d > Duration::ZERO),
            "{name}: {key:?}"
        );
        let after = adapters
            .rate
            .check("after", check("", 1).rate, 1)
            .await
            .unwrap();
        assert!(after.allowed, "{name}: `after` was not taken: {after:?}");

        // A rate of zero limits nothing and still answers.
        let free = admission.admit(&[check("free", 0)], &[]).await.unwrap();
        assert!(free.decisions[0].allowed, "{name}: {free:?}");
    }
}

#[tokio::test]
async fn two_replicas_admit_exactly_the_burst() {
    for (a, b) in replica_pairs("two_replicas_admit_exactly_the_burst") {
        let admits = (0..120).map(|i| {
            let admission: Arc<dyn Admission> = Arc::clone(if i % 2 == 0 {
                &a.admission
            } else {
                &b.admission
            });
            async move {
                let admitted = admission
                    .admit(&[check("hot", 40)], &["tokens"])
                    .await
                    .unwrap();
                admitted.decisions[0].allowed
            }
        });
        let allowed = join_all(admits).await.into_iter().filter(|ok| *ok).count();
        assert_eq!(allowed, 40, "{}", a.name);
    }
}
