//! Backups in S3-compatible storage: `s3://bucket[/prefix]` wherever a backup directory can be
//! named. A backup is made in a staging directory under the data directory, exactly as a local
//! one, then uploaded file by file (streamed, in parts) under `<prefix>/confab-<UTC time>/`,
//! `manifest.json` last: an upload that stops half-way is an unfinished backup that nothing
//! treats as one, and `prune` removes it once a newer backup completes. Verifying and restoring
//! download a backup into a staging directory and run the local checks on it. The connection
//! (endpoint, region, credentials) is `[storage.s3]`'s, with the `AWS_*` names.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use confab_blob::{BlobKey, BlobStore, ObjectBlobs, S3Target};
use confab_core::config::Config;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use super::manifest::{self, MANIFEST, Manifest};
use super::{PREFIX, choose};

/// A bucket and a prefix in it, from `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Place {
    pub bucket: String,
    /// `a/b`, or empty.
    pub prefix: String,
}

impl S3Place {
    /// Reads `s3://bucket[/prefix]`; `None` when `text` is not an `s3://` URL.
    pub fn parse(text: &str) -> Option<anyhow::Result<Self>> {
        let rest = text.strip_prefix("s3://")?;
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        Some((|| {
            confab_core::config::check_bucket(bucket)
                .map_err(|e| anyhow::anyhow!("{text}: bucket `{bucket}`: {e}"))?;
            confab_core::config::check_prefix(prefix)
                .map_err(|e| anyhow::anyhow!("{text}: prefix `{prefix}`: {e}"))?;
            Ok(Self {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            })
        })())
    }

    fn url(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, true) => format!("s3://{}", self.bucket),
            (true, false) => format!("s3://{}/{name}", self.bucket),
            (false, true) => format!("s3://{}/{}", self.bucket, self.prefix),
            (false, false) => format!("s3://{}/{}/{name}", self.bucket, self.prefix),
        }
    }

    fn store(&self, config: &Config) -> anyhow::Result<ObjectBlobs> {
        ObjectBlobs::s3(
            &config.storage.s3,
            S3Target {
                bucket: &self.bucket,
                prefix: &self.prefix,
            },
        )
        .with_context(|| format!("cannot reach {}", self.url("")))
    }
}

/// A staging directory under the data directory (a volume that has room, where the root
/// filesystem may be read-only), removed when dropped.
pub fn staging(config: &Config) -> anyhow::Result<tempfile::TempDir> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    tempfile::Builder::new()
        .prefix(".backup-staging-")
        .tempdir_in(&config.data_dir)
        .with_context(|| {
            format!(
                "cannot make a staging directory in {}",
                config.data_dir.display()
            )
        })
}

fn key(text: &str) -> anyhow::Result<BlobKey> {
    BlobKey::new(text).map_err(|e| anyhow::anyhow!("{e}: a backup file's name S3 cannot take"))
}

/// Uploads the finished backup in `dir` (its manifest's files, then the manifest) under
/// `place`; returns the backup's URL.
pub async fn upload(config: &Config, place: &S3Place, dir: &Path) -> anyhow::Result<String> {
    let store = place.store(config)?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("a backup directory has a name")?;
    let manifest = Manifest::read(dir)?;
    for file in &manifest.files {
        let target = key(&format!("{name}/{}", file.path))?;
        let source = dir.join(manifest::relative(&file.path)?);
        let opened = tokio::fs::File::open(&source)
            .await
            .with_context(|| format!("cannot read {}", source.display()))?;
        let body = tokio_util::io::ReaderStream::with_capacity(opened, 256 * 1024).boxed();
        store
            .put_stream(&target, body)
            .await
            .with_context(|| format!("cannot upload {} to {}", file.path, place.url(name)))?;
    }
    let manifest_bytes = tokio::fs::read(dir.join(MANIFEST)).await?;
    store
        .put(&key(&format!("{name}/{MANIFEST}"))?, manifest_bytes.into())
        .await
        .with_context(|| format!("cannot upload {MANIFEST} to {}", place.url(name)))?;
    Ok(place.url(name))
}

/// The backups under `place`, oldest first: (complete names, unfinished names).
async fn backups(store: &ObjectBlobs) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    // Listed in key order, so each backup's keys come together: one (name, complete) each.
    let mut found: Vec<(String, bool)> = Vec::new();
    for blob in store.list(None).await? {
        let Some((first, rest)) = blob.key.split_once('/') else {
            continue;
        };
        if !first.starts_with(PREFIX) {
            continue;
        }
        match found.last_mut() {
            Some((name, complete)) if name == first => *complete |= rest == MANIFEST,
            _ => found.push((first.to_owned(), rest == MANIFEST)),
        }
    }
    let (complete, unfinished): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, c)| *c);
    Ok((
        complete.into_iter().map(|(name, _)| name).collect(),
        unfinished.into_iter().map(|(name, _)| name).collect(),
    ))
}

/// Downloads the backup at `place` (a backup itself, or the newest complete one under it)
/// into `into`; returns the local copy's directory and the backup's URL.
pub async fn download(
    config: &Config,
    place: &S3Place,
    into: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let store = place.store(config)?;
    // `place` may be one backup (its manifest at the root) or hold several.
    let (store, place) = match store.head(&key(MANIFEST)?).await {
        Ok(_) => (store, place.clone()),
        Err(confab_blob::BlobError::NotFound(_)) => {
            let (complete, _) = backups(&store).await?;
            let Some(newest) = complete.last() else {
                bail!(
                    "{} holds no complete backup (no confab-<time>/{MANIFEST})",
                    place.url("")
                );
            };
            let inner = S3Place {
                bucket: place.bucket.clone(),
                prefix: if place.prefix.is_empty() {
                    newest.clone()
                } else {
                    format!("{}/{newest}", place.prefix)
                },
            };
            (inner.store(config)?, inner)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", place.url(""))),
    };
    let name = place
        .prefix
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("backup");
    let dir = into.join(name);
    for blob in store.list(None).await? {
        let target = dir.join(manifest::relative(&blob.key)?);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let read = store.get(&key(&blob.key)?, None).await?;
        let mut file = tokio::fs::File::create(&target)
            .await
            .with_context(|| format!("cannot write {}", target.display()))?;
        let mut body = read.body;
        while let Some(chunk) = body.try_next().await? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
    }
    if !dir.join(MANIFEST).is_file() {
        bail!("{} is not a complete backup (no {MANIFEST})", place.url(""));
    }
    Ok((dir, place.url("")))
}

/// What [`prune`] removed, as URLs.
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<String>,
    pub removed: Vec<String>,
}

/// [`super::prune`] under an S3 prefix.
pub async fn prune(config: &Config, place: &S3Place, keep: usize) -> anyhow::Result<Pruned> {
    if keep == 0 {
        bail!("--keep must be at least 1");
    }
    let store = place.store(config)?;
    let (complete, unfinished) = backups(&store).await?;
    let (kept, doomed) = choose(&complete, &unfinished, keep);
    for name in &doomed {
        // The manifest first: a backup half-deleted is an unfinished one, never a damaged one.
        let prefix = key(name)?;
        let mut blobs = store.list(Some(&prefix)).await?;
        blobs.sort_by_key(|b| !b.key.ends_with(&format!("/{MANIFEST}")));
        for blob in blobs {
            store.delete(&key(&blob.key)?).await?;
        }
    }
    Ok(Pruned {
        kept: kept.iter().map(|n| place.url(n)).collect(),
        removed: doomed.iter().map(|n| place.url(n)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_read_and_checked() {
        let place = S3Place::parse("s3://backups/prod/eu/").unwrap().unwrap();
        assert_eq!(
            place,
            S3Place {
                bucket: "backups".into(),
                prefix: "prod/eu".into()
            }
        );
        assert_eq!(place.url("confab-x"), "s3://backups/prod/eu/confab-x");
        let bare = S3Place::parse("s3://backups").unwrap().unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.url(""), "s3://backups");
        assert!(S3Place::parse("/var/backups").is_none());
        for bad in ["s3://", "s3://UPPER", "s3://b/../x", "s3://bucket//x"] {
            assert!(S3Place::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
