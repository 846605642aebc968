//! Throwaway PostgreSQL databases, one per test, and the reaping of those whose test ended.
//!
//! A database is named `<prefix>_<pid>_<uuid>`: the test process's id, then a fresh UUID.
//! Nothing drops a database when its test ends (a failing test's database is worth keeping
//! while the suite runs, and a test process may die without unwinding), so a full suite
//! against one server used to leave one database per test behind: several GB, doubled by the
//! streaming replica, which filled a CI machine's disk. When `TEST_POSTGRES_REAP=1` (set by
//! scripts/test.sh for the server it started itself, never for a server from the environment,
//! which other hosts may share), each new database first drops the databases of this prefix
//! whose process has ended, so at most about one database per running test stays.

use anyhow::Context;
use sqlx::Connection;

/// Creates `<prefix>_<pid>_<uuid>` on the server at `admin_url` (a URL whose user may create
/// databases) and returns the URL of the new database.
pub async fn create_database(admin_url: &str, prefix: &str) -> anyhow::Result<String> {
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url)
        .await
        .with_context(|| "cannot reach the PostgreSQL server of the tests")?;
    if reaping() {
        reap(&mut conn, prefix).await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    conn.close().await?;
    Ok(replace_database(admin_url, &name))
}

fn reaping() -> bool {
    cfg!(target_os = "linux") && std::env::var("TEST_POSTGRES_REAP").as_deref() == Ok("1")
}

/// Drops this prefix's databases whose test process has ended. Best effort: another test may
/// be dropping the same database at the same moment, so errors are ignored.
async fn reap(conn: &mut sqlx::postgres::PgConnection, prefix: &str) {
    let pattern = format!("{prefix}\\_%");
    let Ok(names) =
        sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(&pattern)
            .fetch_all(&mut *conn)
            .await
    else {
        return;
    };
    for name in names {
        let Some(pid) = owner_pid(&name, prefix) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        // FORCE: a server the ended test spawned may still hold connections for a moment.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut *conn)
        .await;
    }
}

/// The process id in `<prefix>_<pid>_<uuid>`, or None for a name of another shape.
fn owner_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('_')?;
    let (pid, uuid) = rest.split_once('_')?;
    (uuid.len() == 32).then_some(())?;
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// `postgres://u@h:5432/postgres?x=y` with another database name.
pub(crate) fn replace_database(url: &str, name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_process() {
        let uuid = "0193a1b2c3d4e5f60718293a4b5c6d7e";
        assert_eq!(
            owner_pid(&format!("confab_test_4242_{uuid}"), "confab_test"),
            Some(4242)
        );
        assert_eq!(
            owner_pid(&format!("confab_test_{uuid}"), "confab_test"),
            None
        );
        assert_eq!(owner_pid("confab_test_x_y", "confab_test"), None);
        assert_eq!(
            owner_pid(&format!("confab_cluster_7_{uuid}"), "confab_test"),
            None
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()) || !cfg!(target_os = "linux"));
    }
}
