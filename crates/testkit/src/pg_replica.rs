//! The streaming replica of the test PostgreSQL server (scripts/lib/postgres.sh's
//! `start_postgres_replica`, which exports `TEST_POSTGRES_REPLICA_URL` and
//! `TEST_POSTGRES_REPLICA_CTL`): a test database's URL on it, stopping and starting it, and
//! pausing its replay so that a read shows whether the replica or the primary answered.
//!
//! One replica serves the whole suite and pausing it pauses every database on it: only one
//! test may use it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The test replica and its primary.
#[derive(Debug, Clone)]
pub struct PgReplica {
    /// The replica's `postgres` database, as a superuser.
    admin_url: String,
    /// The primary's, from `TEST_POSTGRES_URL`.
    primary_url: String,
    ctl: PathBuf,
}

impl PgReplica {
    /// The replica, when the suite runs on PostgreSQL and the test script started one.
    pub fn from_env() -> Option<Self> {
        if crate::backend() != crate::TestBackend::Postgres {
            return None;
        }
        Some(Self {
            admin_url: std::env::var("TEST_POSTGRES_REPLICA_URL").ok()?,
            primary_url: std::env::var("TEST_POSTGRES_URL").ok()?,
            ctl: std::env::var_os("TEST_POSTGRES_REPLICA_CTL")?.into(),
        })
    }

    /// The URL on the replica of the database `primary_db_url` names on the primary.
    pub fn url_of(&self, primary_db_url: &str) -> String {
        let path = primary_db_url.split('?').next().unwrap_or(primary_db_url);
        let name = path.rsplit('/').next().unwrap_or("postgres");
        crate::replace_database(&self.admin_url, name)
    }

    /// Stops the replica (a fast shutdown: its sessions are ended) and waits until it is down.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.control("stop").await
    }

    /// Starts the replica on its port again and waits until it accepts connections.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.control("start").await
    }

    async fn control(&self, action: &str) -> anyhow::Result<()> {
        let status = tokio::process::Command::new(&self.ctl)
            .arg(action)
            .status()
            .await
            .with_context(|| format!("run {} {action}", self.ctl.display()))?;
        if !status.success() {
            bail!("{} {action}: {status}", self.ctl.display());
        }
        Ok(())
    }

    /// Stops applying the WAL it receives: from now on the replica shows the data as it was.
    pub async fn pause_replay(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut conn)
            .await?;
        // The pause takes effect at the next record; wait until it has.
        for _ in 0..200 {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut conn)
                .await?;
            if state == "paused" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("the replica's replay did not pause within 5 s")
    }

    pub async fn resume_replay(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Waits (at most 30 s) until the replica has replayed everything the primary had written
    /// when this was called. The target is the primary's insert position, not its write
    /// position: the test server runs with `synchronous_commit = off`, so a commit just
    /// acknowledged may still sit in the WAL buffers, past `pg_current_wal_lsn()` (a CI run
    /// paused replay right before such a commit and listed nothing).
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        let mut primary = PgConnection::connect(&self.primary_url).await?;
        let target: String = sqlx::query_scalar("SELECT CAST(pg_current_wal_insert_lsn() AS TEXT)")
            .fetch_one(&mut primary)
            .await?;
        primary.close().await?;
        let mut replica = PgConnection::connect(&self.admin_url).await?;
        for _ in 0..1200 {
            let caught_up: bool = sqlx::query_scalar(
                "SELECT COALESCE(pg_last_wal_replay_lsn() >= CAST($1 AS pg_lsn), false)",
            )
            .bind(&target)
            .fetch_one(&mut replica)
            .await?;
            if caught_up {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("the replica did not replay up to {target} within 30 s")
    }
}
