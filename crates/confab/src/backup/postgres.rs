//! PostgreSQL's own tools for backups: `pg_dump --format=directory` from an exported snapshot,
//! and `pg_restore` into an empty database; found in `admin.backup_pg_bin_dir`, on the PATH,
//! or in the newest `/usr/lib/postgresql/*/bin` (Debian's layout). The password travels in
//! `PGPASSWORD`, never on a command line that `ps` shows.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use confab_core::config::Config;

/// `pg_dump` or `pg_restore`, found as the module says.
pub fn tool(config: &Config, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &config.admin.backup_pg_bin_dir {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{name} is not in admin.backup_pg_bin_dir ({})",
            dir.display()
        );
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let path = entry.path().join("bin").join(name);
            path.is_file().then_some((version, path))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path).with_context(|| {
        format!(
            "{name} not found (on the PATH or in /usr/lib/postgresql/*/bin): install PostgreSQL's \
             client tools, or set admin.backup_pg_bin_dir"
        )
    })
}

/// A connection for the PostgreSQL tools: the URL without its password (for `--dbname`), and
/// the password for `PGPASSWORD`.
pub struct Connection {
    pub dbname: String,
    pub password: Option<String>,
}

impl Connection {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let mut parsed =
            url::Url::parse(url).map_err(|_| anyhow::anyhow!("database.url is not a URL"))?;
        let password = parsed.password().map(|p| {
            url::form_urlencoded::parse(format!("p={}", p.replace('+', "%2B")).as_bytes())
                .next()
                .map_or_else(|| p.to_owned(), |(_, v)| v.into_owned())
        });
        // Percent-decoding above: a form's parser decodes `%xx` (a `+` is kept as itself).
        let _ = parsed.set_password(None);
        Ok(Self {
            dbname: parsed.to_string(),
            password,
        })
    }

    fn command(&self, tool: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(tool);
        command.env_remove("PGPASSWORD");
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command.stdin(std::process::Stdio::null());
        command.kill_on_drop(true);
        command
    }
}

/// Dumps the database into `dir` (created by pg_dump) as it was in `snapshot`.
pub async fn dump(
    config: &Config,
    connection: &Connection,
    snapshot: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let tool = tool(config, "pg_dump")?;
    let mut command = connection.command(&tool);
    command
        .arg("--format=directory")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--no-sync")
        .arg("--file")
        .arg(dir)
        .arg(format!("--dbname={}", connection.dbname));
    run(command, "pg_dump").await
}

/// Restores the dump in `dir` into the (empty) database, in one transaction: all or nothing.
pub async fn restore(config: &Config, connection: &Connection, dir: &Path) -> anyhow::Result<()> {
    let tool = tool(config, "pg_restore")?;
    let mut command = connection.command(&tool);
    command
        .arg("--exit-on-error")
        .arg("--single-transaction")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg(format!("--dbname={}", connection.dbname))
        .arg(dir);
    run(command, "pg_restore").await
}

async fn run(mut command: tokio::process::Command, name: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .await
        .with_context(|| format!("cannot run {name}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!("{name} failed ({}): {}", output.status, tail.trim());
    }
    Ok(())
}

/// `url` with another database name (for a scratch database on the same server).
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut parsed =
        url::Url::parse(url).map_err(|_| anyhow::anyhow!("database.url is not a URL"))?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        let c = Connection::from_url("postgres://u:p%40ss@h:5433/db?sslmode=require").unwrap();
        assert_eq!(c.dbname, "postgres://u@h:5433/db?sslmode=require");
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        let c = Connection::from_url("postgres://u@h/db").unwrap();
        assert_eq!(c.password, None);
    }

    #[test]
    fn scratch_databases_keep_the_server() {
        assert_eq!(
            with_database("postgres://u:p@h:1/prod?sslmode=disable", "scratch").unwrap(),
            "postgres://u:p@h:1/scratch?sslmode=disable"
        );
    }
}
