//! Test helpers shared by every crate's integration tests: a fresh database of the backend
//! under test, the `confab` binary spawned on port 0, fake upstreams (OpenAI, YouTube), the
//! Redis server of the replica tests, the PostgreSQL streaming replica ([`PgReplica`]), and a
//! certificate authority for the TLS tests.
//!
//! The backend comes from `TEST_BACKEND` (`sqlite`, the default, or `postgres`, which needs
//! `TEST_POSTGRES_URL` pointing at a server where the user may create databases). These names
//! deliberately lack the `CONFAB_` prefix: spawned servers would reject them as unknown keys.

pub mod fake_openai;
mod pdf;
mod pg_replica;
mod postgres_db;
mod process;
pub mod redis;
pub mod tls;
pub mod youtube;

pub use pdf::pdf;
pub use postgres_db::create_database as create_postgres_database_on;
use postgres_db::replace_database;

use anyhow::Context;

pub use pg_replica::PgReplica;
pub use process::{ConfabProcess, SpawnOptions};

/// The database backend the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

pub fn backend() -> TestBackend {
    match std::env::var("TEST_BACKEND").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        _ => TestBackend::Sqlite,
    }
}

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    /// Holds the SQLite file (and doubles as a data directory) until the test ends.
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = match backend() {
            TestBackend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            TestBackend::Postgres => create_postgres_database().await?,
        };
        Ok(Self { url, dir })
    }
}

async fn create_postgres_database() -> anyhow::Result<String> {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .context("TEST_BACKEND=postgres needs TEST_POSTGRES_URL (scripts/test.sh sets both)")?;
    postgres_db::create_database(&admin_url, "confab_test").await
}

/// The file name of the real model the engine tests use.
pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1";

/// The directory holding SmolLM2-135M-Instruct for engine tests: `TEST_MODELS_DIR`, else
/// `target/test-models` (scripts/test.sh fetches it there).
pub fn test_models_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::var_os("TEST_MODELS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-models"),
        std::path::PathBuf::from,
    );
    if dir.join(format!("{SMOLLM2}.gguf")).exists() {
        Ok(dir)
    } else {
        anyhow::bail!(
            "the engine tests need {SMOLLM2}.gguf in {}: run scripts/fetch-model.sh target/test-models (scripts/test.sh does)",
            dir.display()
        )
    }
}

/// A minimal valid GGUF file (a header and metadata, no tensors) for model-store tests.
pub fn tiny_gguf(name: &str, padding: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let kvs = [("general.architecture", "llama"), ("general.name", name)];
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (key, value) in kvs {
        out.extend_from_slice(&(key.len() as u64).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    // GGUF aligns the data section to 32 bytes; padding makes downloads long enough to resume.
    out.resize(out.len().div_ceil(32) * 32 + padding, 0);
    out
}

/// A static file server (with range requests) over `dir` on 127.0.0.1, for download tests.
pub async fn serve_dir(
    dir: &std::path::Path,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    #[expect(
        clippy::disallowed_methods,
        reason = "a test server that lives as long as the test"
    )]
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

/// Architecture check for a service crate: none of `sources` (name, text) — every module but
/// the SQL adapters — names sqlx or the database pool outside its `#[cfg(test)]` part. Panics
/// naming the first module that does.
pub fn assert_no_sql(sources: &[(&str, &str)]) {
    for (name, source) in sources {
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        for banned in ["sqlx", "confab_store::Db", "Db::", "Db,"] {
            assert!(!code.contains(banned), "{name} mentions {banned}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            replace_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
