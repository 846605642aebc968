//! Backups while the server keeps serving, and restores (`confab backup`, `confab restore`,
//! `confab backup verify`, `confab backup prune`; the operator's guide is docs/operations.md,
//! "Backups and restore").
//!
//! A backup is one directory, `<to>/confab-<UTC time>`:
//! - `database/confab.db`: SQLite, copied with `VACUUM INTO` — a consistent copy taken in one
//!   read transaction while the server reads and writes (WAL). Not SQLite's online backup API:
//!   sqlx is the SQLite driver here and exposes no binding of it, and a second
//!   `libsqlite3-sys` cannot be linked beside sqlx's; `VACUUM INTO` is as consistent, also
//!   online, and compacts the copy.
//! - `database/pgdump/`: PostgreSQL, `pg_dump --format=directory` from a snapshot exported by a
//!   repeatable-read transaction, in which the manifest's row counts are read too.
//! - `data/audit-archive/`: the audit log's archive files (entries retention moved out of the
//!   database; their records are in it). Copied after the snapshot, so every archive the
//!   snapshot records is there.
//! - `manifest.json`, written last: format version, Confab's version, backend, time, every
//!   file's size and SHA-256, rows per table. A directory without it is a backup that did not
//!   finish, and nothing treats it as one.
//!
//! Not included: models (re-downloadable; `confab models pull`), the configuration file and
//! its secrets (`auth.key_encryption_key`, `services.token`, …: without the same
//! `auth.key_encryption_key` the restored signing keys cannot be read), and Redis and NATS
//! (caches, limits and in-flight events). Signing keys, sessions, settings and jobs are in the
//! database, so in the backup.

mod manifest;
mod postgres;
mod restore;
mod s3;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use confab_core::config::Config;
use confab_store::{Backend, Db};

pub use manifest::{FileEntry, MANIFEST, Manifest};
pub use restore::{Verification, restore, verify};
pub use s3::S3Place;

/// Where each part lives in a backup directory.
const SQLITE_FILE: &str = "database/confab.db";
const PG_DUMP_DIR: &str = "database/pgdump";
const ARCHIVE_DIR: &str = "data/audit-archive";
/// Backup directories' names start with this.
const PREFIX: &str = "confab-";

/// Where backups are kept: a directory, or a bucket and prefix of S3-compatible storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Dir(PathBuf),
    S3(S3Place),
}

impl Place {
    /// `s3://bucket[/prefix]`, or a directory's path.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match S3Place::parse(text) {
            Some(place) => Ok(Self::S3(place?)),
            None => Ok(Self::Dir(PathBuf::from(text))),
        }
    }
}

/// A finished backup.
#[derive(Debug)]
pub struct Created {
    /// Where it was made (for S3, the staging directory, removed once uploaded).
    pub dir: PathBuf,
    /// Where it is: its directory, or its `s3://` URL.
    pub location: String,
    pub manifest: Manifest,
    /// Whether the admin service's table recorded it (it is absent where the admin service's
    /// tables live in another database).
    pub recorded: bool,
}

/// Takes a backup of the configured database and data directory into a new directory under
/// `to`, while the server keeps serving.
pub async fn create(config: &Config, to: &Path) -> anyhow::Result<Created> {
    create_then(config, to, None).await
}

/// Takes a backup into `place`: a directory, or S3 (made in a staging directory under the data
/// directory, uploaded, then the staging copy removed).
pub async fn create_at(config: &Config, place: &Place) -> anyhow::Result<Created> {
    match place {
        Place::Dir(to) => create(config, to).await,
        Place::S3(target) => {
            let staging = s3::staging(config)?;
            create_then(config, staging.path(), Some(target)).await
        }
    }
}

/// [`verify`] for a backup in a directory or in S3 (downloaded into a staging directory).
pub async fn verify_at(config: &Config, place: &Place) -> anyhow::Result<Verification> {
    match place {
        Place::Dir(dir) => verify(config, dir).await,
        Place::S3(source) => {
            let staging = s3::staging(config)?;
            let (dir, url) = s3::download(config, source, staging.path()).await?;
            let mut verification = verify(config, &dir).await?;
            verification.location = url;
            Ok(verification)
        }
    }
}

/// [`restore`] from a backup in a directory or in S3 (downloaded into a staging directory).
pub async fn restore_at(config: &Config, place: &Place) -> anyhow::Result<Verification> {
    match place {
        Place::Dir(dir) => restore(config, dir).await,
        Place::S3(source) => {
            let staging = s3::staging(config)?;
            let (dir, url) = s3::download(config, source, staging.path()).await?;
            let mut restored = restore(config, &dir).await?;
            restored.location = url;
            Ok(restored)
        }
    }
}

/// [`prune`] in a directory or under an S3 prefix: (kept, removed), as paths or URLs.
pub async fn prune_at(
    config: &Config,
    place: &Place,
    keep: usize,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    match place {
        Place::Dir(dir) => {
            let pruned = prune(dir, keep)?;
            let show =
                |paths: Vec<PathBuf>| paths.iter().map(|p| p.display().to_string()).collect();
            Ok((show(pruned.kept), show(pruned.removed)))
        }
        Place::S3(target) => {
            let pruned = s3::prune(config, target, keep).await?;
            Ok((pruned.kept, pruned.removed))
        }
    }
}

/// Makes the backup under `to`; with `upload`, sends it there before recording it.
async fn create_then(
    config: &Config,
    to: &Path,
    upload: Option<&S3Place>,
) -> anyhow::Result<Created> {
    let started = time::OffsetDateTime::now_utc();
    let name = format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        started.year(),
        u8::from(started.month()),
        started.day(),
        started.hour(),
        started.minute(),
        started.second(),
        started.millisecond()
    );
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let dir = to.join(&name);
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("database"))?;
    let url = config.database_url();
    let db = Db::connect(&url, &config.database)
        .await
        .context("cannot open the database")?;
    let result = snapshot(config, &db, &url, &dir).await;
    let (backend, row_counts) = match result {
        Ok(done) => done,
        Err(e) => {
            db.close().await;
            return Err(e);
        }
    };
    copy_tree(
        &confab_admin::archive_dir(&config.data_dir),
        &dir.join(ARCHIVE_DIR),
    )?;
    let files = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || manifest::list_files(&dir)
    })
    .await??;
    let created_at_ms = started.unix_timestamp_nanos().div_euclid(1_000_000) as i64;
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        confab_version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: backend.to_owned(),
        created_at: started
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        created_at_ms,
        completed_at_ms: confab_core::now_ms(),
        files,
        row_counts,
        notes: vec![
            "holds: the database (users, sessions, signing keys, conversations, settings, \
             jobs, the audit log) and the audit archive files"
                .to_owned(),
            "leaves out: models (re-download them), the configuration and its secrets \
             (keep auth.key_encryption_key), Redis and NATS"
                .to_owned(),
        ],
    };
    manifest.write(&dir)?;
    let location = match upload {
        None => dir.display().to_string(),
        Some(place) => match s3::upload(config, place, &dir).await {
            Ok(url) => url,
            Err(e) => {
                db.close().await;
                return Err(e);
            }
        },
    };
    let recorded = record(&db, &location, &manifest).await;
    db.close().await;
    Ok(Created {
        dir,
        location,
        manifest,
        recorded,
    })
}

/// Writes the database's snapshot into `dir/database`; returns the backend's name and the
/// snapshot's row counts.
async fn snapshot(
    config: &Config,
    db: &Db,
    url: &str,
    dir: &Path,
) -> anyhow::Result<(&'static str, confab_store::RowCounts)> {
    match db.backend() {
        Backend::Sqlite => {
            let copy = dir.join(SQLITE_FILE);
            db.sqlite_copy_to(&copy)
                .await
                .context("VACUUM INTO failed")?;
            // Counted in the copy: exactly what the backup holds.
            let copied = open_sqlite(&copy, config).await?;
            let counts = copied.row_counts().await;
            copied.close().await;
            Ok(("sqlite", counts?))
        }
        Backend::Postgres => {
            let mut snapshot = db.pg_snapshot().await?;
            let counts = snapshot.row_counts().await?;
            let connection = postgres::Connection::from_url(url)?;
            let dumped =
                postgres::dump(config, &connection, snapshot.id(), &dir.join(PG_DUMP_DIR)).await;
            snapshot.finish().await?;
            dumped?;
            Ok(("postgres", counts))
        }
    }
}

/// Records the backup in the admin service's table, for
/// `confab_backup_last_success_timestamp_seconds`. A failure is a warning: the backup itself
/// is complete.
async fn record(db: &Db, location: &str, manifest: &Manifest) -> bool {
    let log = confab_admin::backups::SqlBackupLog::new(db.clone());
    let record = confab_admin::backups::BackupRecord {
        id: uuid::Uuid::now_v7(),
        started_at: manifest.created_at_ms,
        completed_at: manifest.completed_at_ms,
        backend: manifest.backend.clone(),
        location: location.to_owned(),
        bytes: confab_store::to_i64(manifest.total_bytes()),
        files: i64::try_from(manifest.files.len()).unwrap_or(i64::MAX),
    };
    match log.record(&record).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "the backup is complete but could not be recorded in admin_backups \
                 (is the admin service's database this one, migrated?)"
            );
            false
        }
    }
}

/// Opens an SQLite file (one that exists) as a database.
async fn open_sqlite(file: &Path, config: &Config) -> anyhow::Result<Db> {
    Ok(Db::connect(&format!("sqlite://{}", file.display()), &config.database).await?)
}

/// Copies the regular files under `from` (if it exists) into `to`, keeping the tree.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    if !from.is_dir() {
        return Ok(0);
    }
    let mut copied = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(sub) = pending.pop() {
        std::fs::create_dir_all(to.join(&sub))
            .with_context(|| format!("cannot create {}", to.join(&sub).display()))?;
        for entry in std::fs::read_dir(from.join(&sub))? {
            let entry = entry?;
            let rel = sub.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(rel);
            } else if kind.is_file() {
                std::fs::copy(entry.path(), to.join(&rel))
                    .with_context(|| format!("cannot copy {}", entry.path().display()))?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// The backup in `dir`: `dir` itself when it holds a manifest, else the newest complete
/// backup directly under it.
pub fn resolve(dir: &Path) -> anyhow::Result<PathBuf> {
    require_dir(dir)?;
    if dir.join(MANIFEST).is_file() {
        return Ok(dir.to_path_buf());
    }
    let (complete, _) = list(dir)?;
    complete
        .into_iter()
        .next_back()
        .with_context(|| format!("{} holds no complete backup (no {MANIFEST})", dir.display()))
}

/// Refuses a path that is not a directory, naming what to give instead.
fn require_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: name a backup (a confab-<time> directory) or the directory \
             that holds them",
            dir.display()
        );
    }
    Ok(())
}

/// The backup directories under `dir`, oldest first (their names sort by time): the complete
/// ones and the unfinished ones (no manifest).
fn list(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    require_dir(dir)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with(PREFIX))
        .collect();
    names.sort();
    let (complete, unfinished) = names
        .into_iter()
        .map(|name| dir.join(name))
        .partition(|path| path.join(MANIFEST).is_file());
    Ok((complete, unfinished))
}

/// What [`prune`] removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
}

/// Keeps the `keep` newest complete backups under `dir` and removes the older ones, and the
/// unfinished backups older than the newest complete one (a newer unfinished one may be a
/// backup still running, and stays).
pub fn prune(dir: &Path, keep: usize) -> anyhow::Result<Pruned> {
    if keep == 0 {
        bail!("--keep must be at least 1");
    }
    let (complete, unfinished) = list(dir)?;
    let (kept, doomed) = choose(&complete, &unfinished, keep);
    let mut pruned = Pruned {
        kept,
        removed: Vec::new(),
    };
    for path in doomed {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot remove {}", path.display()))?;
        pruned.removed.push(path);
    }
    Ok(pruned)
}

/// Which backups `prune` keeps and removes, given the complete and unfinished ones oldest
/// first (names that sort by time): the `keep` newest complete ones stay, older complete ones
/// go, and unfinished ones older than the newest complete one go (a newer one may be a backup
/// still running).
fn choose<T: Ord + Clone>(complete: &[T], unfinished: &[T], keep: usize) -> (Vec<T>, Vec<T>) {
    let cut = complete.len().saturating_sub(keep);
    let kept = complete[cut..].to_vec();
    let mut doomed: Vec<T> = complete[..cut].to_vec();
    if let Some(newest) = complete.last() {
        doomed.extend(unfinished.iter().filter(|p| *p < newest).cloned());
    }
    (kept, doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(root: &Path, name: &str, complete: bool) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if complete {
            std::fs::write(dir.join(MANIFEST), "{}").unwrap();
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_running_ones() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        backup(r, "confab-20260101T000000.000Z", true);
        backup(r, "confab-20260101T010000.000Z", false);
        backup(r, "confab-20260101T020000.000Z", true);
        backup(r, "confab-20260101T030000.000Z", true);
        backup(r, "confab-20260101T040000.000Z", false);
        backup(r, "unrelated", true);
        let pruned = prune(r, 2).unwrap();
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(&pruned.kept),
            ["confab-20260101T020000.000Z", "confab-20260101T030000.000Z"]
        );
        assert_eq!(
            names(&pruned.removed),
            ["confab-20260101T000000.000Z", "confab-20260101T010000.000Z"]
        );
        assert!(r.join("confab-20260101T040000.000Z").is_dir());
        assert!(r.join("unrelated").is_dir());
        assert_eq!(resolve(r).unwrap(), r.join("confab-20260101T030000.000Z"));
        assert!(prune(r, 0).is_err());
    }
}
