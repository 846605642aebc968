//! The backup manifest (`manifest.json`, written last: a directory without one is an
//! unfinished backup) and the files it lists, each with its size and SHA-256.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The version of the layout below; a restore refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// Most files a backup may list (the database, a dump's tables, the audit archives).
const MAX_FILES: usize = 100_000;
/// The largest manifest read back (its files and row counts).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub confab_version: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The same instant in Unix milliseconds.
    pub created_at_ms: i64,
    /// When the manifest was written (Unix milliseconds).
    pub completed_at_ms: i64,
    /// Every file of the backup but the manifest, by path relative to the backup directory.
    pub files: Vec<FileEntry>,
    /// Rows per table in the snapshot.
    pub row_counts: BTreeMap<String, i64>,
    /// What the backup holds and leaves out, in words, for the person restoring it.
    pub notes: Vec<String>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative, with `/` separators.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let file = std::fs::File::open(&path).with_context(|| {
            format!(
                "{} has no {MANIFEST}: not a backup, or one that did not finish",
                dir.display()
            )
        })?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a Confab backup manifest", path.display()))?;
        if manifest.format_version != FORMAT_VERSION {
            bail!(
                "{} has format version {}; this confab reads version {FORMAT_VERSION}",
                path.display(),
                manifest.format_version
            );
        }
        if manifest.files.len() > MAX_FILES {
            bail!("{} lists too many files", path.display());
        }
        for file in &manifest.files {
            relative(&file.path)?;
        }
        Ok(manifest)
    }

    /// Writes `dir/manifest.json` atomically (a temporary file, synced, renamed).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_vec_pretty(self)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            file.write_all(&text)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(MANIFEST))
            .with_context(|| format!("cannot write the manifest in {}", dir.display()))?;
        sync_dir(dir);
        Ok(())
    }
}

/// A manifest path as a relative path that stays inside the backup directory.
pub fn relative(path: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("the manifest names a file outside the backup: {path:?}");
    }
    Ok(p.to_path_buf())
}

/// The files under `dir` (recursively, the manifest and its temporary file left out), with
/// their sizes and hashes, sorted by path.
pub fn list_files(dir: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let mut entries = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(sub) = pending.pop() {
        let here = dir.join(&sub);
        for entry in
            std::fs::read_dir(&here).with_context(|| format!("cannot list {}", here.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let rel = sub.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(rel);
            } else if kind.is_file() {
                if sub.as_os_str().is_empty()
                    && (name == MANIFEST || name == format!("{MANIFEST}.tmp").as_str())
                {
                    continue;
                }
                let path = rel
                    .to_str()
                    .with_context(|| format!("{} is not UTF-8", rel.display()))?
                    .replace(std::path::MAIN_SEPARATOR, "/");
                let (size, sha256) = hash_file(&entry.path())?;
                entries.push(FileEntry { path, size, sha256 });
                if entries.len() > MAX_FILES {
                    bail!("{} holds more than {MAX_FILES} files", dir.display());
                }
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// The size and SHA-256 of a file, read in blocks.
pub fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 20];
    let mut size = 0_u64;
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What differs between the files a manifest lists and those in `dir`: one line each.
pub fn check_files(dir: &Path, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    let found = list_files(dir)?;
    let found: BTreeMap<&str, &FileEntry> = found.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut problems = Vec::new();
    for expected in &manifest.files {
        match found.get(expected.path.as_str()) {
            None => problems.push(format!("{}: missing", expected.path)),
            Some(actual) if actual.size != expected.size => problems.push(format!(
                "{}: {} bytes, the manifest says {}",
                expected.path, actual.size, expected.size
            )),
            Some(actual) if actual.sha256 != expected.sha256 => problems.push(format!(
                "{}: sha256 {}, the manifest says {}",
                expected.path, actual.sha256, expected.sha256
            )),
            Some(_) => {}
        }
    }
    let listed: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for path in found.keys() {
        if !listed.contains(path) {
            problems.push(format!("{path}: not in the manifest"));
        }
    }
    Ok(problems)
}

/// Syncs a directory's entries (best effort: not every filesystem allows it).
pub fn sync_dir(dir: &Path) {
    if let Ok(file) = std::fs::File::open(dir) {
        let _ = file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_backup() {
        assert!(relative("database/confab.db").is_ok());
        assert!(relative("../etc/passwd").is_err());
        assert!(relative("/etc/passwd").is_err());
        assert!(relative("").is_err());
    }

    #[test]
    fn changed_missing_and_extra_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a"), b"hello").unwrap();
        std::fs::write(dir.path().join("b"), b"world").unwrap();
        let files = list_files(dir.path()).unwrap();
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["b", "data/a"]
        );
        // sha256("hello")
        assert_eq!(
            files[1].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            confab_version: "0".into(),
            backend: "sqlite".into(),
            created_at: String::new(),
            created_at_ms: 0,
            completed_at_ms: 0,
            files,
            row_counts: BTreeMap::new(),
            notes: Vec::new(),
        };
        manifest.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), manifest);
        assert!(check_files(dir.path(), &manifest).unwrap().is_empty());
        std::fs::write(dir.path().join("data/a"), b"hellp").unwrap();
        std::fs::remove_file(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("c"), b"x").unwrap();
        let problems = check_files(dir.path(), &manifest).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("b: missing"), "{problems:?}");
        assert!(problems[1].starts_with("data/a: sha256"), "{problems:?}");
        assert!(
            problems[2].starts_with("c: not in the manifest"),
            "{problems:?}"
        );
    }
}
