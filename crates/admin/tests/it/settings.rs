//! The contract of the `SettingsStore` port: nothing stored until the first change, then one
//! record whose version moves by compare-and-set only.

use std::sync::Arc;

use confab_admin::ports::SettingsStore;
use confab_admin::settings::SqlSettingsStore;
use confab_core::config::RegistrationPolicy;
use confab_core::runtime::{LimitLevels, RuntimeSettings};
use confab_store::StoreError;
use uuid::Uuid;

fn settings(default_model: Option<&str>) -> RuntimeSettings {
    RuntimeSettings {
        registration: RegistrationPolicy::Approval,
        default_model: default_model.map(Into::into),
        user_models: vec!["llama-*".into(), "small".into()],
        limits: LimitLevels {
            user_requests_per_minute: 10,
            user_tokens_per_day: 1_000,
            key_requests_per_minute: 0,
            key_tokens_per_day: 5,
        },
    }
}

fn is_version_conflict(result: Result<i64, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(field)) if field == "version")
}

#[tokio::test]
async fn nothing_is_stored_until_the_first_change() {
    let (db, _test_db) = super::database().await;
    let store = SqlSettingsStore::new(db.clone());
    assert!(store.load().await.unwrap().is_none());
    db.close().await;
}

#[tokio::test]
async fn changes_are_compare_and_set_by_version() {
    let (db, _test_db) = super::database().await;
    let store = SqlSettingsStore::new(db.clone());
    let admin = Uuid::now_v7();
    let first = settings(Some("small"));
    assert_eq!(store.save(&first, 0, admin, 1_000).await.unwrap(), 1);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.settings, first);
    assert_eq!(stored.version, 1);
    assert_eq!(stored.updated_at, Some(1_000));
    assert_eq!(stored.updated_by, Some(admin));

    // A change based on a version that is not the stored one is refused and changes nothing.
    for stale in [0, 2, 7] {
        assert!(
            is_version_conflict(store.save(&settings(None), stale, admin, 2_000).await),
            "expected {stale}"
        );
    }
    assert_eq!(store.load().await.unwrap().unwrap().settings, first);

    let other = Uuid::now_v7();
    let second = settings(None);
    assert_eq!(store.save(&second, 1, other, 3_000).await.unwrap(), 2);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(
        (
            stored.settings,
            stored.version,
            stored.updated_at,
            stored.updated_by
        ),
        (second, 2, Some(3_000), Some(other))
    );
    assert!(is_version_conflict(
        store.save(&first, 1, admin, 4_000).await
    ));
    db.close().await;
}

#[tokio::test]
async fn of_two_changes_based_on_one_version_exactly_one_lands() {
    let (db, _test_db) = super::database().await;
    let store: Arc<dyn SettingsStore> = Arc::new(SqlSettingsStore::new(db.clone()));
    // Both for the first change (an insert) and for a later one (an update).
    let (first, second) = (settings(Some("a")), settings(Some("b")));
    for base in [0, 1] {
        let (a, b) = tokio::join!(
            store.save(&first, base, Uuid::now_v7(), 10),
            store.save(&second, base, Uuid::now_v7(), 10),
        );
        let landed = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(landed, 1, "{a:?} {b:?}");
        assert!(is_version_conflict(if a.is_ok() { b } else { a }));
        assert_eq!(store.load().await.unwrap().unwrap().version, base + 1);
    }
    db.close().await;
}
