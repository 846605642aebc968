//! The contract suite of the auth store, run against the backend under test (SQLite by
//! default, PostgreSQL with `TEST_BACKEND=postgres`; `scripts/test.sh` runs both), and the
//! per-IP throttle across replicas (`throttle`).
//!
//! Long (about 680 lines) because it is the whole contract suite of the auth store, one
//! case per rule; the signing-key cases are the next cut into a module of their own.
#![expect(clippy::unwrap_used, reason = "test code: panics are failures")]

mod throttle;

use confab_auth::domain::{User, UserStatus};
use confab_auth::ports::{AuthStore, NewApiKey, NewSession, Rotation, UserFilter};
use confab_auth::store::{SqlAuthStore, migrations};
use confab_core::auth::{Role, Scope};
use confab_core::config::DatabaseConfig;
use confab_store::{Db, StoreError};
use confab_testkit::TestDb;
use uuid::Uuid;

mod remote;

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
    assert_eq!((first.applied_before, first.applied_now), (0, 3));
    let second = migrations().run(&db).await.unwrap();
    assert_eq!((second.applied_before, second.applied_now), (3, 0));
    migrations().verify(&db).await.unwrap();
    // Each service keeps its own migration table.
    let row = sqlx::query("SELECT COUNT(*) AS n FROM _auth_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::try_get::<i64, _>(&row, "n").unwrap(), 3);
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

/// Under PostgreSQL's READ COMMITTED racing first sign-ups each saw no users and each became
/// an admin; the claim of the first-admin row lets exactly one win on both backends. The race
/// is run several times over (emptied in between) so that a store without the claim fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_first_sign_ups_make_exactly_one_admin() {
    let (store, db, _t) = store().await;
    let store = std::sync::Arc::new(store);
    for round in 0..10 {
        // Open the pool's connections first, so the sign-ups start together rather than one
        // connection at a time.
        let mut warm = Vec::new();
        for _ in 0..8 {
            warm.push(db.pool().acquire().await.unwrap());
        }
        drop(warm);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.spawn(async move {
                let email = format!("u{i}@example.com");
                let candidate = user(&email, Role::User, UserStatus::Active);
                barrier.wait().await;
                store.insert_user(&candidate, true).await.unwrap()
            });
        }
        let mut admins = 0;
        while let Some(stored) = tasks.join_next().await {
            admins += usize::from(stored.unwrap().role == Role::Admin);
        }
        assert_eq!(admins, 1, "round {round}");
        assert_eq!(store.count_active_admins().await.unwrap(), 1);
        for statement in ["DELETE FROM auth_first_admin", "DELETE FROM users"] {
            sqlx::query(statement).execute(db.pool()).await.unwrap();
        }
    }
}

/// A database that had users before the claim existed has had its first admin.
#[tokio::test]
async fn no_first_admin_once_users_exist() {
    let (store, _db, _t) = store().await;
    store
        .insert_user(
            &user("cli@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let later = store
        .insert_user(&user("b@example.com", Role::User, UserStatus::Active), true)
        .await
        .unwrap();
    assert_eq!(later.role, Role::User);
}

#[tokio::test]
async fn clearing_failed_logins_ends_a_stored_lockout() {
    let (store, db, _t) = store().await;
    let u = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    // A lockout as earlier versions stored it in the row.
    sqlx::query("UPDATE users SET failed_logins = 3, locked_until = 99 WHERE id = $1")
        .bind(u.id.to_string())
        .execute(db.pool())
        .await
        .unwrap();
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
        .rotate_refresh("h1", "h2", now + 1, 60_000, 0)
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
            .rotate_refresh("h1", "h3", now + 2, 60_000, 0)
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
            .rotate_refresh("h2", "h4", now + 3, 60_000, 0)
            .await
            .unwrap(),
        Rotation::Ended
    );
    assert_eq!(
        store
            .rotate_refresh("nope", "h5", now, 60_000, 0)
            .await
            .unwrap(),
        Rotation::Unknown
    );

    // An expired session cannot be refreshed.
    let old = session(u.id, "old", now - 10_000, 5_000);
    store.create_session(&old).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh("old", "h6", now, 60_000, 0)
            .await
            .unwrap(),
        Rotation::Ended
    );
}

/// Two tabs refreshing with one token at once: the later request, within the grace window,
/// gets a token of its own and the session lives on. Outside the window, or with a token
/// that is no longer the session's last used one, reuse still ends the session.
#[tokio::test]
async fn a_just_used_refresh_token_has_a_grace_window() {
    let (store, _db, _t) = store().await;
    let u = store
        .insert_user(
            &user("a@example.com", Role::User, UserStatus::Active),
            false,
        )
        .await
        .unwrap();
    let now = confab_core::now_ms();
    let grace = 20_000;
    let s = session(u.id, "a", now, 600_000);
    store.create_session(&s).await.unwrap();
    let rotated =
        |r: Rotation| matches!(r, Rotation::Rotated { session_id, .. } if session_id == s.id);

    // The first tab: a -> b. The second tab, 5 s later with a: c, nothing revoked.
    assert!(rotated(
        store
            .rotate_refresh("a", "b", now, 600_000, grace)
            .await
            .unwrap()
    ));
    assert!(rotated(
        store
            .rotate_refresh("a", "c", now + 5_000, 600_000, grace)
            .await
            .unwrap()
    ));
    assert!(!store.session_auth(s.id).await.unwrap().unwrap().revoked);
    // Both tabs' tokens work.
    assert!(rotated(
        store
            .rotate_refresh("b", "d", now + 6_000, 600_000, grace)
            .await
            .unwrap()
    ));
    assert!(rotated(
        store
            .rotate_refresh("c", "e", now + 7_000, 600_000, grace)
            .await
            .unwrap()
    ));
    // `a` is no longer the last used token (b and c were used after it): reuse, even
    // within the window, ends the session.
    assert_eq!(
        store
            .rotate_refresh("a", "f", now + 8_000, 600_000, grace)
            .await
            .unwrap(),
        Rotation::Reused {
            session_id: s.id,
            user_id: u.id
        }
    );
    assert!(store.session_auth(s.id).await.unwrap().unwrap().revoked);

    // Past the window, the last used token presented again ends the session too.
    let t = session(u.id, "x", now, 600_000);
    store.create_session(&t).await.unwrap();
    assert!(matches!(
        store
            .rotate_refresh("x", "y", now, 600_000, grace)
            .await
            .unwrap(),
        Rotation::Rotated { .. }
    ));
    assert_eq!(
        store
            .rotate_refresh("x", "z", now + grace + 1, 600_000, grace)
            .await
            .unwrap(),
        Rotation::Reused {
            session_id: t.id,
            user_id: u.id
        }
    );
    assert!(store.session_auth(t.id).await.unwrap().unwrap().revoked);
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

/// With a key encryption key the private signing keys are stored encrypted: keys stored in
/// the clear before are encrypted at the next start and keep signing; the database alone (or
/// with the wrong secret) cannot sign.
#[tokio::test]
async fn signing_keys_are_encrypted_at_rest() {
    use confab_auth::keys::{KeyEncryption, KeyError, KeyRing};
    use confab_core::auth::AccessClaims;
    const SECRET: &str = "0123456789abcdef0123456789abcdef-kek";
    let (store, _db, _t) = store().await;
    let store: std::sync::Arc<dyn AuthStore> = std::sync::Arc::new(store);
    let open = |kek: Option<&str>| {
        let store = store.clone();
        let kek = kek.map(|k| KeyEncryption::from_secret(k).unwrap());
        async move { KeyRing::open(store, "confab".into(), 900, 90, kek).await }
    };
    let claims = || AccessClaims {
        sub: Uuid::now_v7(),
        sid: Uuid::now_v7(),
        role: Role::User,
        iss: "confab".into(),
        iat: confab_core::now_ms() / 1000,
        exp: confab_core::now_ms() / 1000 + 900,
    };

    // As before: in the clear.
    let plain = open(None).await.unwrap();
    let token = plain.sign(&claims()).unwrap();
    let before = store.signing_keys().await.unwrap();
    assert!(!KeyEncryption::is_sealed(&before[0].private_key));

    // The next start with a key encryption key encrypts it; the same key still signs.
    let sealed = open(Some(SECRET)).await.unwrap();
    let after = store.signing_keys().await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].kid, before[0].kid);
    assert!(KeyEncryption::is_sealed(&after[0].private_key));
    assert!(!after[0].private_key.contains(&before[0].private_key));
    assert!(sealed.verify(&token).await.is_ok());
    assert!(plain.verify(&sealed.sign(&claims()).unwrap()).await.is_ok());
    // Rotations store encrypted keys too.
    sealed.rotate().await.unwrap();
    assert!(
        store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| KeyEncryption::is_sealed(&k.private_key))
    );

    // Without the secret, or with another one, the keys cannot be used.
    assert!(matches!(
        open(None).await,
        Err(KeyError::EncryptionKeyMissing)
    ));
    let wrong = open(Some("another secret of at least 32 bytes!")).await;
    assert!(
        matches!(wrong, Err(KeyError::EncryptionKeyWrong { .. })),
        "{wrong:?}"
    );
    assert!(matches!(
        KeyEncryption::from_secret("short"),
        Err(KeyError::EncryptionKeyShort { .. })
    ));
}

/// A running process rotates a key that has grown too old; the old key stays in the JWKS
/// and keeps verifying the tokens it signed.
#[tokio::test]
async fn a_running_key_ring_rotates_by_age() {
    use confab_auth::keys::KeyRing;
    use confab_core::auth::AccessClaims;
    let (store, db, _t) = store().await;
    let store: std::sync::Arc<dyn AuthStore> = std::sync::Arc::new(store);
    let ring = KeyRing::open(store.clone(), "confab".into(), 900, 1, None)
        .await
        .unwrap();
    let now = confab_core::now_ms();
    let token = ring
        .sign(&AccessClaims {
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            role: Role::User,
            iss: "confab".into(),
            iat: now / 1000,
            exp: now / 1000 + 900,
        })
        .unwrap();
    assert_eq!(ring.maintain().await.unwrap(), None, "a fresh key stays");
    // The key ages past the rotation age (one day) while the process runs.
    let old_kid = store.signing_keys().await.unwrap()[0].kid.clone();
    sqlx::query("UPDATE signing_keys SET created_at = $1")
        .bind(now - 2 * 86_400_000)
        .execute(db.pool())
        .await
        .unwrap();
    let new_kid = ring.maintain().await.unwrap().expect("rotated");
    assert_ne!(new_kid, old_kid);
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );
    assert!(ring.verify(&token).await.is_ok());
}

/// The key set keeps the tokens it verified (their signature is checked once), and still
/// refuses a kept token once it has expired, or a token that differs by one byte.
#[tokio::test]
async fn a_kept_verified_token_is_refused_once_expired() {
    use confab_auth::keys::KeyRing;
    use confab_core::auth::{AccessClaims, AuthFailure};
    let (store, _db, _t) = store().await;
    let store: std::sync::Arc<dyn AuthStore> = std::sync::Arc::new(store);
    let ring = KeyRing::open(store, "confab".into(), 900, 90, None)
        .await
        .unwrap();
    let now = confab_core::now_ms() / 1000;
    let claims = |exp: i64| AccessClaims {
        sub: Uuid::now_v7(),
        sid: Uuid::now_v7(),
        role: Role::User,
        iss: "confab".into(),
        iat: now,
        exp,
    };
    let lasting = claims(now + 900);
    let token = ring.sign(&lasting).unwrap();
    assert_eq!(ring.verify(&token).await.unwrap(), lasting);
    assert_eq!(
        ring.verify(&token).await.unwrap(),
        lasting,
        "from the kept claims"
    );
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(
        ring.verify(&tampered).await,
        Err(AuthFailure::Invalid)
    ));

    // Past its `exp` but within the 5 s leeway: valid, and kept.
    let ending = claims(now - 4);
    let token = ring.sign(&ending).unwrap();
    assert_eq!(ring.verify(&token).await.unwrap(), ending);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while confab_core::now_ms() / 1000 - 5 <= ending.exp {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(matches!(
        ring.verify(&token).await,
        Err(AuthFailure::Expired)
    ));
}
