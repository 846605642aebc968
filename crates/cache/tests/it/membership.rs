//! The `Membership` contract: a maximum per set, members who leave or expire, refreshes, and
//! exactness when two replicas fill one set.

use std::sync::Arc;
use std::time::Duration;

use confab_cache::Membership;
use futures::future::join_all;

use crate::support::{SLACK, every_adapter, replica_pairs};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_set_holds_at_most_its_maximum() {
    for adapters in every_adapter("a_set_holds_at_most_its_maximum") {
        let m = &adapters.membership;
        let name = adapters.name;
        assert_eq!(
            m.join("s", "a", 2, MINUTE).await.unwrap(),
            Some(1),
            "{name}"
        );
        assert_eq!(
            m.join("s", "b", 2, MINUTE).await.unwrap(),
            Some(2),
            "{name}"
        );
        assert_eq!(m.join("s", "c", 2, MINUTE).await.unwrap(), None, "{name}");
        // A member joining again is not refused.
        assert_eq!(
            m.join("s", "a", 2, MINUTE).await.unwrap(),
            Some(2),
            "{name}"
        );
        assert_eq!(m.count("s").await.unwrap(), 2, "{name}");
        assert_eq!(m.leave("s", "a").await.unwrap(), 1, "{name}");
        assert_eq!(
            m.join("s", "c", 2, MINUTE).await.unwrap(),
            Some(2),
            "{name}"
        );
        assert_eq!(m.leave("s", "nobody").await.unwrap(), 2, "{name}");
        assert_eq!(m.count("empty").await.unwrap(), 0, "{name}");
        assert_eq!(m.leave("empty", "x").await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn members_expire_unless_refreshed() {
    for adapters in every_adapter("members_expire_unless_refreshed") {
        let m = &adapters.membership;
        let name = adapters.name;
        let ttl = Duration::from_millis(300);
        m.join("s", "kept", 2, ttl).await.unwrap();
        m.join("s", "dropped", 2, ttl).await.unwrap();
        // A refresh does not let a stranger in.
        m.refresh("s", "stranger", ttl).await.unwrap();
        assert_eq!(m.count("s").await.unwrap(), 2, "{name}");
        tokio::time::sleep(ttl / 2).await;
        m.refresh("s", "kept", ttl).await.unwrap();
        tokio::time::sleep(ttl / 2 + SLACK).await;
        assert_eq!(m.count("s").await.unwrap(), 1, "{name}: one expired");
        // The expired member's place is free again.
        assert_eq!(m.join("s", "new", 2, ttl).await.unwrap(), Some(2), "{name}");
        tokio::time::sleep(ttl + SLACK).await;
        assert_eq!(m.count("s").await.unwrap(), 0, "{name}: all expired");
    }
}

#[tokio::test]
async fn two_replicas_never_fill_a_set_past_its_maximum() {
    for (a, b) in replica_pairs("two_replicas_never_fill_a_set_past_its_maximum") {
        let joins = (0..100).map(|i| {
            let m: Arc<dyn Membership> = Arc::clone(if i % 2 == 0 {
                &a.membership
            } else {
                &b.membership
            });
            async move { m.join("hot", &format!("m{i}"), 7, MINUTE).await.unwrap() }
        });
        let results = join_all(joins).await;
        assert_eq!(results.iter().flatten().count(), 7, "{}", a.name);
        assert!(results.iter().flatten().all(|n| *n <= 7), "{}", a.name);
        assert_eq!(a.membership.count("hot").await.unwrap(), 7, "{}", a.name);
    }
}
