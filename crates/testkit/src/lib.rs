//! Test helpers shared by every crate's integration tests: a fresh database of the backend
//! under test, and the `confab` binary spawned on port 0.
//!
//! The backend comes from `TEST_BACKEND` (`sqlite`, the default, or `postgres`, which needs
//! `TEST_POSTGRES_URL` pointing at a server where the user may create databases). These names
//! deliberately lack the `CONFAB_` prefix: spawned servers would reject them as unknown keys.

pub mod fake_openai;
mod process;

use anyhow::Context;
use sqlx::Connection;

pub use process::ConfabProcess;

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
    let name = format!("confab_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin_url)
        .await
        .with_context(|| "cannot reach the PostgreSQL server in TEST_POSTGRES_URL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(replace_database(&admin_url, &name))
}

/// `postgres://u@h:5432/postgres?x=y` with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
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
