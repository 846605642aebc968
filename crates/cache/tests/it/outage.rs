//! Redis going away and coming back: the process starts without it, the cache misses, the
//! limiters answer from the per-process fallback (counted in the metric), and the same
//! adapters — not rebuilt — use Redis again once a server listens on the port again. The
//! outage test starts and kills a `redis-server` of its own on a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_cache::{
    Admission, Cache, Counters, FallbackAdmission, FallbackCounters, FallbackMembership,
    FallbackRateLimiter, LimiterPort, Membership, MemoryCounters, MemoryMembership,
    MemoryRateLimiter, Paired, Rate, RateCheck, RateLimiter, RedisAdmission, RedisCache,
    RedisConnection, RedisCounters, RedisMembership, RedisMetrics, RedisRateLimiter,
};
use tokio::process::{Child, Command};

use crate::support::{config, fresh_prefix, redis_url};

/// The adapters a split-mode process builds: Redis behind the fallback wrappers.
struct SplitProcess {
    metrics: Arc<RedisMetrics>,
    conn: RedisConnection,
    cache: RedisCache,
    rate: FallbackRateLimiter,
    counters: FallbackCounters,
    membership: FallbackMembership,
    admission: FallbackAdmission,
}

impl SplitProcess {
    fn new(url: &str) -> Self {
        let metrics = RedisMetrics::detached();
        let mut cfg = config(url, &fresh_prefix());
        cfg.timeout_ms = 300;
        let conn = RedisConnection::new(&cfg, Arc::clone(&metrics)).unwrap();
        let backoff = Duration::from_millis(100);
        // The per-process state, shared by the rate limiter's, the counters' and the
        // admission's fallbacks, as `confab serve` builds them.
        let local_rate: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
        let local_counters: Arc<dyn Counters> = Arc::new(MemoryCounters::new(100));
        let admission = FallbackAdmission::new(
            Arc::new(RedisAdmission::new(conn.clone())) as Arc<dyn Admission>,
            Arc::new(Paired {
                rate: local_rate.clone(),
                counters: local_counters.clone(),
            }),
            Arc::clone(&metrics),
        )
        .with_backoff(backoff);
        let rate = FallbackRateLimiter::new(
            Arc::new(RedisRateLimiter::new(conn.clone())) as Arc<dyn RateLimiter>,
            local_rate,
            Arc::clone(&metrics),
        )
        .with_backoff(backoff);
        let counters = FallbackCounters::new(
            Arc::new(RedisCounters::new(conn.clone())) as Arc<dyn Counters>,
            local_counters,
            Arc::clone(&metrics),
        )
        .with_backoff(backoff);
        let membership = FallbackMembership::new(
            Arc::new(RedisMembership::new(conn.clone())) as Arc<dyn Membership>,
            Arc::new(MemoryMembership::new(100)),
            Arc::clone(&metrics),
        )
        .with_backoff(backoff);
        Self {
            cache: RedisCache::new(conn.clone()),
            metrics,
            conn,
            rate,
            counters,
            membership,
            admission,
        }
    }

    /// Uses every port once; every answer must come (from Redis or the fallback).
    async fn use_every_port(&self) {
        let minute = Duration::from_secs(60);
        self.rate
            .check("k", Rate::per_minute(1000), 1)
            .await
            .unwrap();
        self.counters.take("k", 1, 1000, minute).await.unwrap();
        self.membership.join("s", "m", 10, minute).await.unwrap();
        let admitted = self
            .admission
            .admit(
                &[RateCheck {
                    key: "a",
                    rate: Rate::per_minute(1000),
                    cost: 1,
                }],
                &["k"],
            )
            .await
            .unwrap();
        assert_eq!(admitted.decisions.len(), 1);
    }

    fn fallbacks(&self) -> [u64; 4] {
        LimiterPort::ALL.map(|port| self.metrics.fallbacks(port))
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_process_starts_and_degrades_while_redis_is_down() {
    // Nothing listens on this port: the adapters are built anyway and answer.
    let process = SplitProcess::new(&format!("redis://127.0.0.1:{}", free_port()));
    let started = Instant::now();
    assert!(process.cache.get("k").await.is_none());
    process
        .cache
        .set("k".into(), b"v".to_vec(), Duration::from_secs(1))
        .await;
    process.use_every_port().await;
    process.use_every_port().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!process.metrics.up());
    assert!(process.metrics.cache_errors() >= 2);
    assert_eq!(process.fallbacks(), [2, 2, 2, 2]);
    // The fallback is a real limiter: a burst of 2 holds in this process.
    let r = Rate::per_minute(2);
    let allowed = [
        process.rate.check("burst", r, 1).await.unwrap().allowed,
        process.rate.check("burst", r, 1).await.unwrap().allowed,
        process.rate.check("burst", r, 1).await.unwrap().allowed,
    ];
    assert_eq!(allowed, [true, true, false]);
    // The calls that batch several keys fall back too.
    let minute = Duration::from_secs(60);
    let checks = [
        RateCheck {
            key: "x",
            rate: r,
            cost: 1,
        },
        RateCheck {
            key: "burst",
            rate: r,
            cost: 1,
        },
    ];
    let decisions = process.rate.check_all(&checks).await.unwrap();
    assert_eq!(
        decisions.iter().map(|d| d.allowed).collect::<Vec<_>>(),
        [true, false]
    );
    let totals = process
        .counters
        .add_many(&[("x", 2), ("y", 3)], minute)
        .await;
    assert_eq!(totals.unwrap(), [2, 3]);
    let read = process.counters.get_many(&["y", "z"]).await.unwrap();
    assert_eq!(read, [Some(3), None]);
    // The admission's fallback reads the counts and takes from the limits of this process.
    let admitted = process
        .admission
        .admit(&checks[1..], &["y", "z"])
        .await
        .unwrap();
    assert_eq!(admitted.totals, [Some(3), None]);
    assert!(!admitted.decisions[0].allowed, "{admitted:?}");
    assert!(process.conn.ping().await.is_err());
}

fn redis_server() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/bin/redis-server")])
        .find(|path| path.is_file())
}

/// A `redis-server` of this test's own, without persistence.
struct OwnServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnServer {
    async fn start() -> Option<Self> {
        let mut server = Self {
            binary: redis_server()?,
            port: free_port(),
            child: None,
        };
        server.run().await;
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready when it accepts connections (its own readiness signal); 10 s at most.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

#[tokio::test]
async fn limiters_fall_back_during_an_outage_and_recover_after_it() {
    if redis_url("limiters_fall_back_during_an_outage_and_recover_after_it").is_none() {
        return;
    }
    let Some(mut server) = OwnServer::start().await else {
        panic!("redis-server not found although TEST_REDIS_URL is set");
    };
    let process = SplitProcess::new(&server.url());
    let minute = Duration::from_secs(60);

    // Up: Redis answers, nothing falls back.
    process.conn.ping().await.unwrap();
    process.use_every_port().await;
    process.cache.set("k".into(), b"v".to_vec(), minute).await;
    assert_eq!(
        process.cache.get("k").await.as_deref(),
        Some(&b"v".to_vec())
    );
    assert_eq!(process.fallbacks(), [0, 0, 0, 0]);
    assert!(process.metrics.up());

    // Down: misses and fallbacks, quickly, and the metric says so.
    server.kill().await;
    let started = Instant::now();
    assert!(process.cache.get("k").await.is_none());
    process.use_every_port().await;
    process.use_every_port().await;
    let outage_calls = started.elapsed();
    assert!(outage_calls < Duration::from_secs(3), "{outage_calls:?}");
    assert_eq!(process.fallbacks(), [2, 2, 2, 2]);
    assert!(!process.metrics.up());
    assert!(process.metrics.cache_errors() >= 1);

    // Back on the same port: the same adapters find it by themselves.
    server.run().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while process.conn.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the connection did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(process.metrics.up());
    // Past the wrappers' back-off, answers come from Redis again: no more fallbacks.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let before = process.fallbacks();
    process.use_every_port().await;
    assert_eq!(process.fallbacks(), before);
    // The restarted server is empty (no persistence): state starts over there.
    process.cache.set("k".into(), b"w".to_vec(), minute).await;
    assert_eq!(
        process.cache.get("k").await.as_deref(),
        Some(&b"w".to_vec())
    );
    let taken = process.counters.take("fresh", 3, 3, minute).await.unwrap();
    assert!(taken.taken && taken.total == 3, "{taken:?}");
    server.kill().await;
}
