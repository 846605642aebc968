//! Restoring a backup into an empty database and data directory (`confab restore`), and
//! checking one by restoring it into a scratch place (`confab backup verify`): a temporary
//! SQLite file, or a PostgreSQL database created on the configured server and dropped after.
//! Both check the files' sizes and SHA-256 first, and after the restore the rows per table
//! against the manifest and the audit log's hash chain (with the archive files).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use confab_core::config::Config;
use confab_store::Db;

use super::manifest::{self, Manifest};
use super::{ARCHIVE_DIR, PG_DUMP_DIR, SQLITE_FILE, copy_tree, open_sqlite, postgres, resolve};

/// What a restore or a verification found.
#[derive(Debug)]
pub struct Verification {
    /// The backup directory.
    pub dir: PathBuf,
    /// Where the backup is: its directory, or its `s3://` URL.
    pub location: String,
    pub manifest: Manifest,
    /// Rows in all tables after the restore.
    pub rows: i64,
    /// Entries of the audit log checked (in the database and the archive files).
    pub audit_entries: u64,
    /// Every mismatch, one line each; empty when the backup is sound.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Restores the backup in `from` (or the newest under it) into the configured database and
/// data directory, which must be empty. Checks the files first and the result after.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<Verification> {
    let dir = resolve(from)?;
    let manifest = Manifest::read(&dir)?;
    let problems = check_files(&dir, &manifest).await?;
    if !problems.is_empty() {
        bail!(
            "the backup in {} is damaged; nothing was restored:\n  {}",
            dir.display(),
            problems.join("\n  ")
        );
    }
    let archive = confab_admin::archive_dir(&config.data_dir);
    if archive.is_dir() && std::fs::read_dir(&archive)?.next().is_some() {
        bail!(
            "{} is not empty: restore into an empty data directory",
            archive.display()
        );
    }
    let url = config.database_url();
    let target_is_sqlite = url.starts_with("sqlite:");
    match (manifest.backend.as_str(), target_is_sqlite) {
        ("sqlite", true) => restore_sqlite(config, &url, &dir).await?,
        ("postgres", false) => {
            refuse_non_empty(&url, config).await?;
            postgres::restore(
                config,
                &postgres::Connection::from_url(&url)?,
                &dir.join(PG_DUMP_DIR),
            )
            .await?;
        }
        (backend, _) => bail!(
            "this is a {backend} backup and the configured database is {}: restore it into a \
             database of the same kind",
            if target_is_sqlite {
                "SQLite"
            } else {
                "PostgreSQL"
            }
        ),
    }
    copy_tree(&dir.join(ARCHIVE_DIR), &archive)?;
    let db = Db::connect(&url, &config.database).await?;
    let result = check_database(&db, &manifest, &archive, dir).await;
    db.close().await;
    result
}

/// Restores the backup in `dir` (or the newest under it) into a scratch place and checks it.
/// An error is a failure to check; a backup that does not match its manifest is a
/// [`Verification`] with problems.
pub async fn verify(config: &Config, dir: &Path) -> anyhow::Result<Verification> {
    let dir = resolve(dir)?;
    let manifest = Manifest::read(&dir)?;
    let problems = check_files(&dir, &manifest).await?;
    if !problems.is_empty() {
        return Ok(Verification {
            location: dir.display().to_string(),
            dir,
            manifest,
            rows: 0,
            audit_entries: 0,
            problems,
        });
    }
    let archive = dir.join(ARCHIVE_DIR);
    match manifest.backend.as_str() {
        "sqlite" => {
            let scratch = tempfile::tempdir().context("cannot make a scratch directory")?;
            let file = scratch.path().join("confab.db");
            std::fs::copy(dir.join(SQLITE_FILE), &file)
                .with_context(|| format!("cannot copy the database into {}", file.display()))?;
            let db = open_sqlite(&file, config).await?;
            let result = check_database(&db, &manifest, &archive, dir).await;
            db.close().await;
            result
        }
        "postgres" => {
            let url = config.database_url();
            if url.starts_with("sqlite:") {
                bail!(
                    "verifying a PostgreSQL backup restores it into a scratch database: set \
                     database.url to a PostgreSQL server where this user may CREATE DATABASE"
                );
            }
            let server = Db::connect(&url, &config.database).await?;
            let name = format!("confab_verify_{}", uuid::Uuid::now_v7().simple());
            server.create_database(&name).await?;
            let scratch_url = postgres::with_database(&url, &name)?;
            let result = async {
                postgres::restore(
                    config,
                    &postgres::Connection::from_url(&scratch_url)?,
                    &dir.join(PG_DUMP_DIR),
                )
                .await?;
                let db = Db::connect(&scratch_url, &config.database).await?;
                let result = check_database(&db, &manifest, &archive, dir).await;
                db.close().await;
                result
            }
            .await;
            if let Err(e) = server.drop_database(&name).await {
                tracing::warn!(error = %e, database = %name, "cannot drop the scratch database");
            }
            server.close().await;
            result
        }
        other => bail!("unknown backend {other:?} in the manifest"),
    }
}

async fn check_files(dir: &Path, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    let dir = dir.to_path_buf();
    let manifest = manifest.clone();
    tokio::task::spawn_blocking(move || manifest::check_files(&dir, &manifest)).await?
}

/// Refuses a PostgreSQL database that holds any table.
async fn refuse_non_empty(url: &str, config: &Config) -> anyhow::Result<()> {
    let db = Db::connect(url, &config.database).await?;
    let tables = db.table_count().await;
    db.close().await;
    let tables = tables?;
    if tables > 0 {
        bail!(
            "the configured database is not empty ({tables} tables): restore into an empty \
             database (e.g. createdb a new one and point database.url at it)"
        );
    }
    Ok(())
}

/// Copies the backup's SQLite file into place; the configured file must be absent or empty.
async fn restore_sqlite(config: &Config, url: &str, dir: &Path) -> anyhow::Result<()> {
    let file =
        confab_store::sqlite_file(url).context("the configured SQLite database is not a file")?;
    if file.exists() {
        let db = open_sqlite(&file, config).await?;
        let tables = db.table_count().await;
        db.close().await;
        let tables = tables?;
        if tables > 0 {
            bail!(
                "{} is not empty ({tables} tables): restore into an empty data directory (or \
                 move the database away first)",
                file.display()
            );
        }
        for leftover in [
            file.clone(),
            with_suffix(&file, "-wal"),
            with_suffix(&file, "-shm"),
        ] {
            if leftover.exists() {
                std::fs::remove_file(&leftover)
                    .with_context(|| format!("cannot remove {}", leftover.display()))?;
            }
        }
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = with_suffix(&file, ".restoring");
    std::fs::copy(dir.join(SQLITE_FILE), &partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &file)?;
    if let Some(parent) = file.parent() {
        manifest::sync_dir(parent);
    }
    Ok(())
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Rows per table against the manifest, and the audit chain.
async fn check_database(
    db: &Db,
    manifest: &Manifest,
    archive: &Path,
    dir: PathBuf,
) -> anyhow::Result<Verification> {
    let mut problems = Vec::new();
    let counts = db.row_counts().await?;
    for (table, expected) in &manifest.row_counts {
        match counts.get(table) {
            None => problems.push(format!("table {table}: missing after the restore")),
            Some(n) if n != expected => problems.push(format!(
                "table {table}: {n} rows after the restore, the manifest says {expected}"
            )),
            Some(_) => {}
        }
    }
    for table in counts.keys() {
        if !manifest.row_counts.contains_key(table) {
            problems.push(format!("table {table}: not in the manifest"));
        }
    }
    // A database without the admin service's tables (split mode, databases of their own)
    // has no audit log to check.
    let mut audit_entries = 0;
    if counts.contains_key("audit_log") {
        let report = confab_admin::SqlAuditLog::new(db.clone())
            .verify_with_archives(Some(archive))
            .await
            .context("cannot check the audit log")?;
        audit_entries = report.entries;
        if let Some(broken) = report.first_broken {
            problems.push(format!("audit log broken at {broken}"));
        }
    }
    Ok(Verification {
        location: dir.display().to_string(),
        dir,
        manifest: manifest.clone(),
        rows: counts.values().sum(),
        audit_entries,
        problems,
    })
}
