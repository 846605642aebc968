//! The contract suite of the auth store, run against the backend under test (SQLite by
//! default, PostgreSQL with `TEST_BACKEND=postgres`; `scripts/test.sh` runs both).
#![expect(clippy::unwrap_used, reason = "test code: panics are failures")]

use confab_auth::domain::{User, UserStatus};
use confab_auth::ports::{AuthStore, NewApiKey, NewSession, Rotation, UserFilter};
use confab_auth::store::{SqlAuthStore, migrations};
use confab_core::auth::{Role, Scope};
use confab_core::config::DatabaseConfig;
use confab_store::{Db, StoreError};
use confab_testkit::TestDb;
use uuid::Uuid;

async fn store() -> (SqlAuthStore, Db, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    migrations().run(&db).await.unwrap();
    (SqlAuthStore::new(db.clone()), db, test_db)
}

fn user(email: &str, role: Role, status: UserStatus) -> User {
    User {
        id: Uuid::now_v7(),
        email: email.to_owned(),
        name: "Someone".to_owned(),
        password_hash: "$argon2id$placeholder".to_owned(),
        role,
        status,
        failed_logins: 0,
        locked_until: None,
        must_change_password: false,
        created_at: confab_core::now_ms(),
        updated_at: confab_core::now_ms(),
    }
}

fn session(user_id: Uuid, hash: &str, now: i64, ttl: i64) -> NewSession {
    NewSession {
        id: Uuid::now_v7(),
        user_id,
        now,
        expires_at: now + ttl,
        refresh_hash: hash.to_owned(),
        ip: Some("127.0.0.1".into()),
        user_agent: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_verified() {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    let err = migrations().verify(&db).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Migration(ref m) if m.contains("confab migrate")),
        "{err}"
    );
    let first = migrations().run(&db).await.unwrap();
    assert_eq!((first.applied_before, first.applied_now), (0, 1));
    let second = migrations().run(&db).await.unwrap();
    assert_eq!((second.applied_before, second.applied_now), (1, 0));
    migrations().verify(&db).await.unwrap();
    // Each service keeps its own migration table.
    let row = sqlx::query("SELECT COUNT(*) AS n FROM _auth_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&row, "n").unwrap(), 1);
}

#[tokio::test]
async fn first_user_becomes_admin_and_emails_are_unique() {
    let (store, _db, _t) = store().await;
    let first = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Pending),
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        (first.role, first.status),
        (Role::Admin, UserStatus::Active)
    );
    let second = store
        .insert_user(
            &user("b@example.com", Role::User, UserStatus::Pending),
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        (second.role, second.status),
        (Role::User, UserStatus::Pending)
    );
    let duplicate = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, StoreError::Conflict(ref field) if field.contains("email")),
        "{duplicate:?}"
    );
    assert_eq!(
        store
            .user_by_email("a@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
    assert_eq!(
        store.user_by_id(second.id).await.unwrap().unwrap().email,
        "b@example.com"
    );
    assert!(store.user_by_id(Uuid::now_v7()).await.unwrap().is_none());
    assert_eq!(store.count_active_admins().await.unwrap(), 1);
}

#[tokio::test]
async fn failed_logins_lock_at_the_threshold() {
    let (store, _db, _t) = store().await;
    let u = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    assert!(!store.record_failed_login(u.id, 3, 99).await.unwrap());
    assert!(!store.record_failed_login(u.id, 3, 99).await.unwrap());
    assert!(store.record_failed_login(u.id, 3, 99).await.unwrap());
    let locked = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((locked.failed_logins, locked.locked_until), (0, Some(99)));
    store.clear_failed_logins(u.id).await.unwrap();
    let cleared = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((cleared.failed_logins, cleared.locked_until), (0, None));
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_reuse_ends_the_session() {
    let (store, _db, _t) = store().await;
    let u = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let now = confab_core::now_ms();
    let s = session(u.id, "h1", now, 60_000);
    store.create_session(&s).await.unwrap();
    assert_eq!(
        store.session_of_refresh("h1").await.unwrap(),
        Some((s.id, u.id))
    );

    match store
        .rotate_refresh("h1", "h2", now + 1, 60_000)
        .await
        .unwrap()
    {
        Rotation::Rotated { session_id, user } => assert_eq!((session_id, user.id), (s.id, u.id)),
        other => panic!("{other:?}"),
    }
    assert!(store.session_of_refresh("h1").await.unwrap().is_none());
    let auth = store.session_auth(s.id).await.unwrap().unwrap();
    assert!(!auth.revoked);
    assert_eq!(auth.expires_at, now + 1 + 60_000, "sliding expiry");

    assert_eq!(
        store
            .rotate_refresh("h1", "h3", now + 2, 60_000)
            .await
            .unwrap(),
        Rotation::Reused {
            session_id: s.id,
            user_id: u.id
        }
    );
    assert!(store.session_auth(s.id).await.unwrap().unwrap().revoked);
    assert_eq!(
        store
            .rotate_refresh("h2", "h4", now + 3, 60_000)
            .await
            .unwrap(),
        Rotation::Ended
    );
    assert_eq!(
        store
            .rotate_refresh("nope", "h5", now, 60_000)
            .await
            .unwrap(),
        Rotation::Unknown
    );

    // An expired session cannot be refreshed.
    let old = session(u.id, "old", now - 10_000, 5_000);
    store.create_session(&old).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh("old", "h6", now, 60_000)
            .await
            .unwrap(),
        Rotation::Ended
    );
}

#[tokio::test]
async fn sessions_are_revoked_per_user_except_one() {
    let (store, _db, _t) = store().await;
    let u = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let now = confab_core::now_ms();
    let keep = session(u.id, "k", now, 60_000);
    let drop1 = session(u.id, "d1", now, 60_000);
    let drop2 = session(u.id, "d2", now, 60_000);
    for s in [&keep, &drop1, &drop2] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store
            .revoke_sessions_of(u.id, Some(keep.id), "test", now)
            .await
            .unwrap(),
        2
    );
    assert!(!store.session_auth(keep.id).await.unwrap().unwrap().revoked);
    assert!(store.session_auth(drop1.id).await.unwrap().unwrap().revoked);
    store.revoke_session(keep.id, "logout", now).await.unwrap();
    assert!(store.session_auth(keep.id).await.unwrap().unwrap().revoked);
    assert_eq!(
        store
            .revoke_sessions_of(u.id, None, "test", now)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn api_keys_are_owned_listed_and_revoked() {
    let (store, _db, _t) = store().await;
    let a = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let b = store
        .insert_user(
            &user("b@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let key = NewApiKey {
        id: Uuid::now_v7(),
        user_id: a.id,
        name: "laptop".into(),
        prefix: "cfk_abcdefgh".into(),
        key_hash: "hash-a".into(),
        scopes: vec![Scope::Chat, Scope::Files],
        created_at: 1,
        expires_at: Some(5),
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(store.count_api_keys(a.id).await.unwrap(), 1);
    let listed = store.list_api_keys(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scopes, vec![Scope::Chat, Scope::Files]);
    assert!(store.list_api_keys(b.id).await.unwrap().is_empty());

    let auth = store.api_key_auth("hash-a").await.unwrap().unwrap();
    assert_eq!(
        (auth.user_id, auth.expires_at, auth.revoked),
        (a.id, Some(5), false)
    );
    store.touch_api_key(key.id, 42).await.unwrap();
    assert_eq!(
        store
            .api_key_auth("hash-a")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(42)
    );
    assert!(store.api_key_auth("other").await.unwrap().is_none());

    assert!(
        !store.revoke_api_key(b.id, key.id, 7).await.unwrap(),
        "not b's key"
    );
    assert!(store.revoke_api_key(a.id, key.id, 7).await.unwrap());
    assert!(
        !store.revoke_api_key(a.id, key.id, 8).await.unwrap(),
        "already revoked"
    );
    assert!(store.api_key_auth("hash-a").await.unwrap().unwrap().revoked);
    assert!(store.list_api_keys(a.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn signing_keys_rotate_atomically() {
    let (store, _db, _t) = store().await;
    let first = confab_auth::keys::generate_key(100).unwrap();
    store.rotate_signing_key(&first).await.unwrap();
    let second = confab_auth::keys::generate_key(200).unwrap();
    store.rotate_signing_key(&second).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, first.kid);
    assert_eq!(keys[0].retired_at, Some(200));
    assert_eq!(keys[1].retired_at, None);
}

#[tokio::test]
async fn groups_and_membership() {
    let (store, _db, _t) = store().await;
    let a = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let g = Uuid::now_v7();
    store.create_group(g, "research", 1).await.unwrap();
    assert!(matches!(
        store
            .create_group(Uuid::now_v7(), "research", 2)
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));
    store.add_member(g, a.id, 3).await.unwrap();
    store.add_member(g, a.id, 4).await.unwrap();
    assert!(matches!(
        store.add_member(g, Uuid::now_v7(), 5).await.unwrap_err(),
        StoreError::NotFound
    ));
    assert!(matches!(
        store.add_member(Uuid::now_v7(), a.id, 5).await.unwrap_err(),
        StoreError::NotFound
    ));
    assert_eq!(
        store.groups_of(a.id).await.unwrap(),
        vec!["research".to_owned()]
    );
    let groups = store.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].members, vec![a.id]);
    assert!(store.remove_member(g, a.id).await.unwrap());
    assert!(!store.remove_member(g, a.id).await.unwrap());
    assert!(store.delete_group(g).await.unwrap());
    assert!(!store.delete_group(g).await.unwrap());
}

#[tokio::test]
async fn users_are_listed_with_filters_and_cursors() {
    let (store, _db, _t) = store().await;
    for (i, email) in ["ada@example.com", "bob@example.com", "odd%name@example.com"]
        .iter()
        .enumerate()
    {
        let mut u = user(
            email,
            Role::User,
            if i == 1 {
                UserStatus::Pending
            } else {
                UserStatus::Active
            },
        );
        u.created_at = 1000 + i64::try_from(i).unwrap();
        store.insert_user(&u, false).await.unwrap();
    }
    let all = |limit| UserFilter {
        limit,
        ..UserFilter::default()
    };
    assert_eq!(store.list_users(&all(10)).await.unwrap().len(), 3);
    let first_page = store.list_users(&all(1)).await.unwrap();
    assert_eq!(first_page.len(), 2, "one extra row signals another page");
    let after = Some((first_page[0].created_at, first_page[0].id.to_string()));
    let rest = store
        .list_users(&UserFilter { after, ..all(10) })
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].email, "bob@example.com");
    let pending = store
        .list_users(&UserFilter {
            status: Some(UserStatus::Pending),
            ..all(10)
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let percent = store
        .list_users(&UserFilter {
            query: Some("%".into()),
            ..all(10)
        })
        .await
        .unwrap();
    assert_eq!(percent.len(), 1, "LIKE wildcards in the query are literal");
    let by_name = store
        .list_users(&UserFilter {
            query: Some("BOB".into()),
            ..all(10)
        })
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
}
