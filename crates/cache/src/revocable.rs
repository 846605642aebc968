//! A bounded, short-lived cache of lookups that belong to a user (credentials, roles), where
//! revoking one user's entries is O(1) and exact: [`RevocableCache`].
//!
//! A lookup takes a [`Ticket`] before it reads its source; an entry is served only if its
//! ticket is newer than the latest revocation of its owner (and of everything). So a lookup
//! that read the old state and finished after the revocation cannot put it back in the cache:
//! the race that "invalidate, then clear again after the change" only narrows is closed.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use uuid::Uuid;

/// When a lookup began, in the cache's own revocation clock. Take it before reading the
/// source of truth and hand it to [`RevocableCache::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Clone)]
struct Stamped<V> {
    owner: Uuid,
    ticket: Ticket,
    value: V,
}

/// Values by key, each owned by a user, living at most `ttl`, at most `capacity` of them.
pub struct RevocableCache<K, V> {
    entries: moka::future::Cache<K, Stamped<V>>,
    /// The clock value of each owner's latest revocation, kept twice the entries' lifetime
    /// so that every entry that could predate it has expired first.
    revoked: moka::future::Cache<Uuid, u64>,
    clock: AtomicU64,
    /// Entries with tickets below this were revoked all at once.
    all_before: AtomicU64,
    capacity: u64,
}

impl<K, V> std::fmt::Debug for RevocableCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocableCache")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl<K, V> RevocableCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            revoked: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.saturating_mul(2))
                .build(),
            clock: AtomicU64::new(1),
            all_before: AtomicU64::new(0),
            capacity,
        }
    }

    /// Taken before a lookup reads its source.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.clock.load(Ordering::SeqCst))
    }

    async fn is_current(&self, owner: Uuid, ticket: Ticket) -> bool {
        ticket.0 >= self.all_before.load(Ordering::SeqCst)
            && self
                .revoked
                .get(&owner)
                .await
                .is_none_or(|revoked| ticket.0 >= revoked)
    }

    /// The value under `key`, unless it expired or its owner was revoked since its lookup.
    pub async fn get(&self, key: &K) -> Option<V> {
        let entry = self.entries.get(key).await?;
        if self.is_current(entry.owner, entry.ticket).await {
            Some(entry.value)
        } else {
            self.entries.invalidate(key).await;
            None
        }
    }

    /// Keeps what a lookup that began at `ticket` found, unless its owner was revoked since.
    pub async fn insert(&self, key: K, owner: Uuid, value: V, ticket: Ticket) {
        if self.is_current(owner, ticket).await {
            self.entries
                .insert(
                    key,
                    Stamped {
                        owner,
                        ticket,
                        value,
                    },
                )
                .await;
        }
    }

    /// Every entry of `owner` looked up before now stops being served.
    pub async fn revoke_owner(&self, owner: Uuid) {
        // More revoked owners than entries can exist: forget everything rather than lose a
        // revocation to the bound.
        if self.revoked.entry_count() >= self.capacity {
            self.revoke_all();
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.revoked.insert(owner, now).await;
    }

    /// Every entry looked up before now stops being served (after missed revocations).
    pub fn revoke_all(&self) {
        let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_before.store(now, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoking_an_owner_drops_only_theirs_and_stops_late_lookups() {
        let cache = RevocableCache::<&str, u32>::new(100, Duration::from_secs(60));
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let t = cache.ticket();
        cache.insert("a1", alice, 1, t).await;
        cache.insert("b1", bob, 2, t).await;
        // A lookup of Alice's that began before her revocation and ends after it.
        let late = cache.ticket();
        cache.revoke_owner(alice).await;
        assert_eq!(cache.get(&"a1").await, None);
        assert_eq!(cache.get(&"b1").await, Some(2));
        cache.insert("a2", alice, 3, late).await;
        assert_eq!(cache.get(&"a2").await, None, "a stale lookup came back");
        // A lookup after the revocation is kept.
        cache.insert("a3", alice, 4, cache.ticket()).await;
        assert_eq!(cache.get(&"a3").await, Some(4));
        // Everything.
        let before = cache.ticket();
        cache.revoke_all();
        assert_eq!(cache.get(&"b1").await, None);
        assert_eq!(cache.get(&"a3").await, None);
        cache.insert("b2", bob, 5, before).await;
        assert_eq!(cache.get(&"b2").await, None);
        cache.insert("b3", bob, 6, cache.ticket()).await;
        assert_eq!(cache.get(&"b3").await, Some(6));
    }
}
