//! Redis for the replica tests: the server `scripts/test.sh` starts (`TEST_REDIS_URL`), and
//! one port as two replicas see it.

use confab_cache::{RedisConnection, RedisMetrics};
use confab_core::config::RedisConfig;

/// The Redis server under test, or `None` (saying that `test`'s Redis part is skipped).
#[expect(clippy::print_stderr, reason = "the note says why a part did not run")]
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: Redis part skipped, TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A connection to `url` whose keys live under `prefix` (generous timeouts: tests run on busy
/// machines).
pub fn connection(url: &str, prefix: &str) -> anyhow::Result<RedisConnection> {
    let config = RedisConfig {
        url: Some(url.to_owned()),
        key_prefix: prefix.to_owned(),
        timeout_ms: 2_000,
    };
    RedisConnection::new(&config, RedisMetrics::detached()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Two replicas' views of one port: the in-process adapter `memory` shared by both (always),
/// and two Redis connections on one fresh key prefix made into the port by `redis` (when
/// `TEST_REDIS_URL` is set). Each pair is named `memory` or `redis`.
pub fn replicas<T: Clone>(
    test: &str,
    memory: T,
    redis: impl Fn(RedisConnection) -> T,
) -> anyhow::Result<Vec<(&'static str, T, T)>> {
    let mut pairs = vec![("memory", memory.clone(), memory)];
    if let Some(url) = redis_url(test) {
        let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
        pairs.push((
            "redis",
            redis(connection(&url, &prefix)?),
            redis(connection(&url, &prefix)?),
        ));
    }
    Ok(pairs)
}
