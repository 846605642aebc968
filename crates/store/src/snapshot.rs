//! Consistent snapshots of the database for backups: SQLite's `VACUUM INTO` (a transactionally
//! consistent copy taken online, beside the server's readers and writers), a PostgreSQL
//! snapshot exported from a read-only repeatable-read transaction (for `pg_dump --snapshot`),
//! and row counts per table read inside one snapshot.
//!
//! Table names come from the database's own catalogue, never from a client; they are quoted as
//! identifiers all the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::{Any, Row, Transaction};

use crate::{Backend, Db, StoreError};

/// Rows per table, by name (`schema.table` for PostgreSQL tables outside `public`).
pub type RowCounts = BTreeMap<String, i64>;

/// The file of a `sqlite:` URL (`None` for other URLs and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// A PostgreSQL transaction whose snapshot is exported: other sessions (`pg_dump --snapshot`)
/// see exactly what it sees while it stays open.
pub struct PgSnapshot {
    tx: Transaction<'static, Any>,
    id: String,
}

impl PgSnapshot {
    /// The snapshot's name, for `pg_dump --snapshot`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Rows per table in this snapshot.
    pub async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let tables = sqlx::query(
            "SELECT schemaname::text AS s, tablename::text AS t FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let mut counts = RowCounts::new();
        for row in tables {
            let schema: String = row.try_get("s")?;
            let table: String = row.try_get("t")?;
            let sql = format!(
                "SELECT count(*) AS n FROM {}.{}",
                quote_ident(&schema),
                quote_ident(&table)
            );
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("n")?;
            let name = if schema == "public" {
                table
            } else {
                format!("{schema}.{table}")
            };
            counts.insert(name, n);
        }
        Ok(counts)
    }

    /// Ends the transaction (it only read).
    pub async fn finish(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Db {
    /// Writes a consistent copy of this SQLite database to `dest` (which must not exist) with
    /// `VACUUM INTO`: one read transaction, so writers carry on (WAL) and the copy holds
    /// exactly the transactions committed before it began.
    pub async fn sqlite_copy_to(&self, dest: &Path) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::Config("VACUUM INTO is SQLite's".to_owned()));
        }
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", dest.display())))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Exports a PostgreSQL snapshot (a read-only repeatable-read transaction held open).
    pub async fn pg_snapshot(&self) -> Result<PgSnapshot, StoreError> {
        if self.backend() != Backend::Postgres {
            return Err(StoreError::Config(
                "exported snapshots are PostgreSQL's".to_owned(),
            ));
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let id: String = sqlx::query("SELECT pg_export_snapshot() AS id")
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
        Ok(PgSnapshot { tx, id })
    }

    /// Rows per table, read in one transaction. For SQLite every table but SQLite's own; for
    /// PostgreSQL see [`PgSnapshot::row_counts`].
    pub async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        match self.backend() {
            Backend::Postgres => {
                let mut snapshot = self.pg_snapshot().await?;
                let counts = snapshot.row_counts().await;
                snapshot.finish().await?;
                counts
            }
            Backend::Sqlite => {
                let mut tx = self.pool().begin().await?;
                let tables = sqlx::query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .fetch_all(&mut *tx)
                .await?;
                let mut counts = RowCounts::new();
                for row in tables {
                    let table: String = row.try_get("name")?;
                    let sql = format!("SELECT count(*) AS n FROM {}", quote_ident(&table));
                    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                    counts.insert(table, n);
                }
                tx.rollback().await?;
                Ok(counts)
            }
        }
    }

    /// Creates a database on this PostgreSQL server (a scratch one, for checking a backup).
    pub async fn create_database(&self, name: &str) -> Result<(), StoreError> {
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drops a database of this PostgreSQL server, if it exists.
    pub async fn drop_database(&self, name: &str) -> Result<(), StoreError> {
        let sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(name));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many tables the database holds (a restore goes only into one with none).
    pub async fn table_count(&self) -> Result<i64, StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%'"
            }
            Backend::Postgres => {
                "SELECT count(*) AS n FROM pg_tables \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            }
        };
        Ok(sqlx::query(sql)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }
}

/// An SQL identifier in double quotes, inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_come_from_urls() {
        assert_eq!(
            sqlite_file("sqlite:///data/confab.db?mode=rwc"),
            Some(PathBuf::from("/data/confab.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://rel/x.db"),
            Some(PathBuf::from("rel/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("audit_log"), "\"audit_log\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[tokio::test]
    async fn a_sqlite_copy_holds_the_rows_and_counts_match() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let db = Db::connect(&url, &confab_core::config::DatabaseConfig::default())
            .await
            .unwrap();
        assert_eq!(db.table_count().await.unwrap(), 0);
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(db.pool())
            .await
            .unwrap();
        for i in 0..5_i64 {
            sqlx::query("INSERT INTO t (x) VALUES ($1)")
                .bind(i)
                .execute(db.pool())
                .await
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        db.sqlite_copy_to(&copy).await.unwrap();
        let copied = Db::connect(
            &format!("sqlite://{}", copy.display()),
            &confab_core::config::DatabaseConfig::default(),
        )
        .await
        .unwrap();
        let counts = copied.row_counts().await.unwrap();
        assert_eq!(counts.get("t"), Some(&5));
        assert_eq!(db.row_counts().await.unwrap(), counts);
        assert_eq!(copied.table_count().await.unwrap(), 1);
    }
}
