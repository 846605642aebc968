//! The `Cache` contract, and Redis keys isolated by prefix.

use std::time::Duration;

use crate::support::{SLACK, every_adapter, fresh_prefix, redis, redis_url};

#[tokio::test]
async fn cache_keeps_the_contract() {
    for adapters in every_adapter("cache_keeps_the_contract") {
        let cache = &adapters.cache;
        let name = adapters.name;
        let minute = Duration::from_secs(60);
        assert!(cache.get("a").await.is_none(), "{name}");
        cache.set("a".into(), b"1".to_vec(), minute).await;
        assert_eq!(
            cache.get("a").await.as_deref(),
            Some(&b"1".to_vec()),
            "{name}"
        );
        cache.set("a".into(), b"2".to_vec(), minute).await;
        assert_eq!(
            cache.get("a").await.as_deref(),
            Some(&b"2".to_vec()),
            "{name}"
        );
        cache.remove("a").await;
        assert!(cache.get("a").await.is_none(), "{name}");
        // Bytes stay bytes (not UTF-8, NUL included).
        let binary = vec![0_u8, 255, 1, 0, 128];
        cache.set("bin".into(), binary.clone(), minute).await;
        assert_eq!(cache.get("bin").await.as_deref(), Some(&binary), "{name}");
        cache
            .set("short".into(), b"x".to_vec(), Duration::from_millis(100))
            .await;
        assert!(cache.get("short").await.is_some(), "{name}");
        tokio::time::sleep(Duration::from_millis(100) + SLACK).await;
        assert!(
            cache.get("short").await.is_none(),
            "{name}: expired entries are gone"
        );
    }
}

#[tokio::test]
async fn redis_keys_are_isolated_by_prefix() {
    let Some(url) = redis_url("redis_keys_are_isolated_by_prefix") else {
        return;
    };
    let (a, b) = (redis(&url, &fresh_prefix()), redis(&url, &fresh_prefix()));
    let minute = Duration::from_secs(60);
    a.cache.set("k".into(), b"a".to_vec(), minute).await;
    assert!(b.cache.get("k").await.is_none());
    b.cache.set("k".into(), b"b".to_vec(), minute).await;
    assert_eq!(a.cache.get("k").await.as_deref(), Some(&b"a".to_vec()));

    assert!(a.counters.take("k", 5, 5, minute).await.unwrap().taken);
    let other = b.counters.take("k", 5, 5, minute).await.unwrap();
    assert!(other.taken && other.total == 5, "{other:?}");

    let rate = confab_cache::Rate::per_minute(1);
    assert!(a.rate.check("k", rate, 1).await.unwrap().allowed);
    assert!(b.rate.check("k", rate, 1).await.unwrap().allowed);
    assert!(!a.rate.check("k", rate, 1).await.unwrap().allowed);

    assert_eq!(
        a.membership.join("s", "m", 1, minute).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        b.membership.join("s", "n", 1, minute).await.unwrap(),
        Some(1)
    );
}
