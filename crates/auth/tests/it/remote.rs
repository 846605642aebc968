//! Authentication across processes: two auth services over one database and one event bus
//! (MemoryBus; NATS too when `TEST_NATS_URL` is set), one of them served on a loopback port,
//! and a `RemoteAuthenticator` pointed at it. Revocations through either reach the other and
//! the remote one at once; the JWKS is refreshed for a new key and not for junk; while auth
//! is down new credentials are 503 and cached ones keep working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use confab_auth::domain::UserStatus;
use confab_auth::keys::KeyRing;
use confab_auth::service::UserChanges;
use confab_auth::throttle::IpThrottle;
use confab_auth::{AuthDeps, AuthService, AuthState, InternalState, SqlAuthStore};
use confab_auth_client::{RemoteAuthConfig, RemoteAuthenticator};
use confab_bus::{EventBus, MemoryBus};
use confab_core::auth::{
    AdminUser, AuthFailure, Authenticator, Credential, Principal, Role, Scope, ServiceTokens,
};
use confab_core::config::{AuthConfig, DatabaseConfig};
use confab_core::extract::ClientMeta;
use confab_core::internal::InternalAuth;
use confab_store::Db;
use confab_testkit::TestDb;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
/// How soon a revocation must be honoured everywhere: far under the caches' 10–15 s.
const AT_ONCE: Duration = Duration::from_secs(2);

fn secret() -> ServiceTokens {
    ServiceTokens::new(&[9; 32]).unwrap()
}

async fn service(db: &Db, events: Arc<dyn EventBus>) -> Arc<AuthService> {
    let store = Arc::new(SqlAuthStore::new(db.clone()));
    let config = AuthConfig::default();
    let keys = KeyRing::open(
        store.clone(),
        config.issuer.clone(),
        config.access_token_ttl_secs,
        config.signing_key_rotation_days,
        None,
    )
    .await
    .unwrap();
    Arc::new(
        AuthService::new(
            AuthDeps {
                store,
                keys: Arc::new(keys),
                audit: Arc::new(confab_admin::audit::SqlAuditLog::new(db.clone())),
                settings: None,
                jobs: None,
                events: Some(events),
                purge: None,
                login_counters: Arc::new(confab_cache::MemoryCounters::new(1_000)),
            },
            config,
        )
        .await
        .unwrap(),
    )
}

/// Auth A's public and internal routes on a loopback port until `stop`.
async fn serve(
    auth: Arc<AuthService>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let state = AuthState {
        service: auth.clone(),
        authenticator: auth.clone(),
        throttle: Arc::new(IpThrottle::in_process(1000, 1000)),
        secure_cookies: false,
        trust_proxy_headers: false,
    };
    let router: axum::Router = confab_auth::router(state)
        .merge(confab_auth::internal_router(InternalState {
            service: auth,
            internal: InternalAuth(Some(secret())),
        }))
        .split_for_parts()
        .0;
    #[expect(
        clippy::disallowed_methods,
        reason = "test server: awaited by the test itself"
    )]
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    })
}

struct Cluster {
    a: Arc<AuthService>,
    b: Arc<AuthService>,
    remote: RemoteAuthenticator,
    base: String,
    server_stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    _db: TestDb,
}

impl Cluster {
    /// `buses`: what auth A, auth B and the remote process each connect to.
    async fn start(buses: [Arc<dyn EventBus>; 3]) -> Self {
        let test_db = TestDb::new().await.unwrap();
        let db = Db::connect(&test_db.url, &DatabaseConfig::default())
            .await
            .unwrap();
        confab_auth::migrations().run(&db).await.unwrap();
        confab_admin::migrations().run(&db).await.unwrap();
        let [bus_a, bus_b, bus_remote] = buses;
        let a = service(&db, bus_a).await;
        let b = service(&db, bus_b).await;
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        a.follow_revocations(&tasks, shutdown.clone());
        b.follow_revocations(&tasks, shutdown.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server_stop = CancellationToken::new();
        let server = serve(a.clone(), listener, server_stop.clone()).await;
        let remote = RemoteAuthenticator::new(
            RemoteAuthConfig::new(&base, &AuthConfig::default().issuer, "chat"),
            secret(),
            bus_remote,
        )
        .unwrap();
        remote.start(&tasks, shutdown.clone());
        tokio::time::timeout(Duration::from_secs(10), remote.wait_for_keys())
            .await
            .unwrap();
        Cluster {
            a,
            b,
            remote,
            base,
            server_stop,
            server,
            tasks,
            shutdown,
            _db: test_db,
        }
    }

    async fn user(&self, email: &str) -> Uuid {
        self.a
            .create_user(
                email,
                "Someone",
                PASSWORD,
                Role::User,
                UserStatus::Active,
                false,
            )
            .await
            .unwrap()
            .id
    }

    /// A fresh session's access token and session id.
    async fn login(&self, email: &str) -> (String, Uuid) {
        let tokens = self
            .a
            .login(email, PASSWORD, &ClientMeta::default())
            .await
            .unwrap()
            .tokens
            .unwrap();
        (tokens.access_token, tokens.session_id)
    }

    async fn key(&self, token: &str) -> (String, Uuid) {
        let principal = self.a.authenticate(token).await.unwrap();
        let created = self
            .a
            .create_api_key(
                &principal,
                "k",
                &[Scope::Chat],
                None,
                &ClientMeta::default(),
            )
            .await
            .unwrap();
        (created.key, created.view.id)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server_stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.server.await.unwrap();
    }
}

/// Waits until every authenticator refuses `bearer` (asking again as fast as they answer,
/// within [`AT_ONCE`]); returns how long the slowest took.
async fn refused_everywhere(who: &[(&str, &dyn Authenticator)], bearer: &str) -> Duration {
    let start = Instant::now();
    for (name, authenticator) in who {
        loop {
            match authenticator.authenticate(bearer).await {
                Err(AuthFailure::Revoked) => break,
                other => {
                    assert!(
                        start.elapsed() < AT_ONCE,
                        "{name} still answers {other:?} after {:?}",
                        start.elapsed()
                    );
                    tokio::task::yield_now().await;
                }
            }
        }
    }
    start.elapsed()
}

#[expect(clippy::print_stderr, reason = "the test prints its figures")]
async fn revocations_reach_every_replica(cluster: Cluster) {
    // Another admin, so that the user promoted below may be locked.
    cluster
        .a
        .create_user(
            "root@example.com",
            "Root",
            PASSWORD,
            Role::Admin,
            UserStatus::Active,
            false,
        )
        .await
        .unwrap();
    let id = cluster.user("u@example.com").await;
    let (t1, s1) = cluster.login("u@example.com").await;
    let (t2, _) = cluster.login("u@example.com").await;
    let (key, key_id) = cluster.key(&t1).await;
    let (a, b, remote) = (&*cluster.a, &*cluster.b, &cluster.remote);
    let all: [(&str, &dyn Authenticator); 3] = [("auth A", a), ("auth B", b), ("remote", remote)];
    // Every cache warm.
    for (name, authenticator) in all {
        for bearer in [&t1, &t2, &key] {
            let principal = authenticator.authenticate(bearer).await.unwrap();
            assert_eq!(
                (principal.user_id, principal.role),
                (id, Role::User),
                "{name}"
            );
        }
        assert_eq!(
            authenticator.current_role(id).await.unwrap(),
            Some(Role::User)
        );
    }
    assert_eq!(
        remote.authenticate(&key).await.unwrap().credential,
        Credential::ApiKey {
            key_id,
            scopes: vec![Scope::Chat]
        }
    );

    // A logout through B: that session ends on A and the remote one; the other does not.
    b.logout(id, s1, &ClientMeta::default()).await.unwrap();
    let took = refused_everywhere(&[("auth A", a), ("remote", remote)], &t1).await;
    eprintln!("logout through B refused by A and the remote authenticator after {took:?}");
    assert!(remote.authenticate(&t2).await.is_ok());

    // A role change through B: today's role everywhere.
    let operator = AdminUser::operator();
    let promote = UserChanges {
        role: Some(Role::Admin),
        status: None,
    };
    b.update_user(&operator, id, &promote, &ClientMeta::default())
        .await
        .unwrap();
    let start = Instant::now();
    for (name, authenticator) in all {
        loop {
            let role = authenticator.authenticate(&t2).await.unwrap().role;
            let current = authenticator.current_role(id).await.unwrap();
            if role == Role::Admin && current == Some(Role::Admin) {
                break;
            }
            assert!(
                start.elapsed() < AT_ONCE,
                "{name} still sees {role:?}/{current:?}"
            );
            tokio::task::yield_now().await;
        }
    }
    eprintln!(
        "role change through B seen everywhere after {:?}",
        start.elapsed()
    );

    // A key revoked through A: refused by B and the remote one.
    a.revoke_api_key(id, key_id, &ClientMeta::default())
        .await
        .unwrap();
    let took = refused_everywhere(&[("auth B", b), ("remote", remote)], &key).await;
    eprintln!("key revoked through A refused by B and the remote authenticator after {took:?}");

    // Locked through A: every credential refused, the account no longer active.
    a.lock_user(&operator, id, &ClientMeta::default())
        .await
        .unwrap();
    let took = refused_everywhere(&[("auth B", b), ("remote", remote)], &t2).await;
    eprintln!("lock through A refused by B and the remote authenticator after {took:?}");
    assert!(matches!(
        remote.current_role(id).await,
        Err(AuthFailure::Revoked)
    ));
    assert!(matches!(
        b.current_role(id).await,
        Err(AuthFailure::Revoked)
    ));
    cluster.stop().await;
}

#[tokio::test]
async fn revocations_reach_every_replica_at_once_over_the_memory_bus() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1024));
    revocations_reach_every_replica(Cluster::start([bus.clone(), bus.clone(), bus]).await).await;
}

#[tokio::test]
async fn revocations_reach_every_replica_at_once_over_nats() {
    let Ok(url) = std::env::var("TEST_NATS_URL") else {
        eprintln!("skipped: TEST_NATS_URL is not set (scripts/test.sh starts NATS)");
        return;
    };
    let mut buses = Vec::new();
    for _ in 0..3 {
        let bus: Arc<dyn EventBus> = Arc::new(confab_bus::NatsBus::connect(&url).await.unwrap());
        buses.push(bus);
    }
    let buses: [Arc<dyn EventBus>; 3] = buses.try_into().ok().unwrap();
    revocations_reach_every_replica(Cluster::start(buses).await).await;
}

fn junk_token(kid: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
    let claims = b64.encode(json!({"sub": Uuid::now_v7(), "exp": 4_000_000_000_i64}).to_string());
    format!("{header}.{claims}.{}", b64.encode([7u8; 64]))
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_junk_kids_fetch_nothing() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1024));
    let cluster = Cluster::start([bus.clone(), bus.clone(), bus]).await;
    cluster.user("r@example.com").await;
    assert_eq!(cluster.remote.jwks_fetches(), 1);
    // A key rotated in after the JWKS was cached signs the next token.
    cluster.a.keys().rotate().await.unwrap();
    let (token, _) = cluster.login("r@example.com").await;
    let principal = cluster.remote.authenticate(&token).await.unwrap();
    assert_eq!(principal.role, Role::User);
    assert_eq!(cluster.remote.jwks_fetches(), 2);
    // Junk kids, many at once: no fetch within the minimum interval, and all refused.
    let junk: Vec<String> = (0..200).map(|i| junk_token(&format!("junk-{i}"))).collect();
    let answers =
        futures::future::join_all(junk.iter().map(|t| cluster.remote.authenticate(t))).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Err(AuthFailure::Invalid)))
    );
    eprintln!(
        "200 tokens with unknown kids: {} JWKS fetches in all",
        cluster.remote.jwks_fetches()
    );
    assert_eq!(cluster.remote.jwks_fetches(), 2);
    cluster.stop().await;
}

#[tokio::test]
async fn with_auth_down_new_credentials_are_unavailable_and_cached_ones_work() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1024));
    let cluster = Cluster::start([bus.clone(), bus.clone(), bus.clone()]).await;
    let id = cluster.user("d@example.com").await;
    let (cached, _) = cluster.login("d@example.com").await;
    let (key, _) = cluster.key(&cached).await;
    let remote = cluster.remote.clone();
    assert!(remote.authenticate(&cached).await.is_ok());
    assert!(remote.authenticate(&key).await.is_ok());
    assert_eq!(remote.current_role(id).await.unwrap(), Some(Role::User));
    // Auth goes away.
    let addr = cluster.base.trim_start_matches("http://").to_owned();
    cluster.server_stop.cancel();
    let Cluster {
        a,
        server,
        tasks,
        shutdown,
        _db,
        ..
    } = cluster;
    server.await.unwrap();
    let (fresh, _) = {
        let tokens = a
            .login("d@example.com", PASSWORD, &ClientMeta::default())
            .await
            .unwrap()
            .tokens
            .unwrap();
        (tokens.access_token, tokens.session_id)
    };
    assert!(
        matches!(
            remote.authenticate(&fresh).await,
            Err(AuthFailure::Unavailable(_))
        ),
        "a new token while auth is down is 503, not 401"
    );
    let fresh_key = {
        let principal = a.authenticate(&fresh).await.unwrap();
        a.create_api_key(
            &principal,
            "k2",
            &[Scope::Chat],
            None,
            &ClientMeta::default(),
        )
        .await
        .unwrap()
        .key
    };
    assert!(matches!(
        remote.authenticate(&fresh_key).await,
        Err(AuthFailure::Unavailable(_))
    ));
    assert!(matches!(
        remote.current_role(Uuid::now_v7()).await,
        Err(AuthFailure::Unavailable(_))
    ));
    // What was cached keeps working.
    assert!(remote.authenticate(&cached).await.is_ok());
    assert!(remote.authenticate(&key).await.is_ok());
    assert_eq!(remote.current_role(id).await.unwrap(), Some(Role::User));

    // A process that starts while auth is down keeps trying, and works once auth is back.
    let mut config = RemoteAuthConfig::new(
        format!("http://{addr}"),
        &AuthConfig::default().issuer,
        "chat",
    );
    config.jwks_retry_max = Duration::from_millis(100);
    let late = RemoteAuthenticator::new(config, secret(), bus).unwrap();
    late.start(&tasks, shutdown.clone());
    assert!(matches!(
        late.authenticate(&cached).await,
        Err(AuthFailure::Unavailable(_))
    ));
    assert!(!late.keys_loaded());
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let stop = CancellationToken::new();
    let server = serve(a.clone(), listener, stop.clone()).await;
    tokio::time::timeout(Duration::from_secs(10), late.wait_for_keys())
        .await
        .unwrap();
    assert!(late.authenticate(&fresh).await.is_ok());
    assert!(remote.authenticate(&fresh).await.is_ok());
    shutdown.cancel();
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    server.await.unwrap();
}

#[tokio::test]
async fn internal_routes_answer_only_internal_tokens() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1024));
    let cluster = Cluster::start([bus.clone(), bus.clone(), bus]).await;
    let id = cluster.user("i@example.com").await;
    let (token, session_id) = cluster.login("i@example.com").await;
    let http = reqwest::Client::new();
    let introspect = |bearer: Option<String>, body: Value| {
        let mut request = http
            .post(format!("{}/internal/v1/auth/introspect", cluster.base))
            .json(&body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let internal = secret().mint_internal("chat").unwrap();
    let user_service_token = secret()
        .mint(
            &Principal {
                user_id: id,
                role: Role::User,
                credential: Credential::Session { session_id },
            },
            &[Scope::Chat],
        )
        .unwrap();
    // No token, a user's own token, a user service token: 401.
    for bearer in [None, Some(token.clone()), Some(user_service_token)] {
        let (status, body) = introspect(bearer, json!({"token": token})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
    }
    let (status, body) = introspect(Some(internal.clone()), json!({"token": token})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], json!(id));
    assert_eq!(body["role"], "user");
    assert_eq!(
        body["credential"],
        json!({"kind": "session", "session_id": session_id})
    );
    assert!(body["cache_until"].is_string());
    let (status, body) =
        introspect(Some(internal.clone()), json!({"token": "cfk_not-a-key"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, _) = introspect(Some(internal.clone()), json!({"token": "x".repeat(5000)})).await;
    assert_eq!(status, 401);

    let user = |id: Uuid, bearer: String| {
        let request = http
            .get(format!("{}/internal/v1/auth/users/{id}", cluster.base))
            .bearer_auth(bearer);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = user(id, internal.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"user_id": id, "role": "user", "status": "active", "active": true})
    );
    assert_eq!(user(Uuid::now_v7(), internal).await.0, 404);
    assert_eq!(user(id, token).await.0, 401);
    cluster.stop().await;
}
