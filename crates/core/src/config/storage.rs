//! The `[storage]` section: where blobs live (a directory, or an S3-compatible bucket), and
//! the S3 connection that `confab backup --to s3://…` uses too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Secret, check_http_url};

/// Where blobs (uploaded files, their variants) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A directory on this machine (`storage.local_dir`, by default `<data_dir>/blobs`).
    #[default]
    Local,
    /// An S3-compatible bucket (`storage.s3`): AWS S3, MinIO, Ceph, Garage…
    S3,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// The directory of the `local` backend; unset: `<data_dir>/blobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_dir: Option<PathBuf>,
    pub s3: S3Config,
}

impl StorageConfig {
    /// The `local` backend's directory.
    pub fn local_dir(&self, data_dir: &Path) -> PathBuf {
        self.local_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("blobs"))
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.backend == StorageBackend::S3 && self.s3.bucket.is_none() {
            return Err("storage.backend = \"s3\" needs storage.s3.bucket".into());
        }
        self.s3.validate()
    }
}

/// An S3-compatible endpoint. The credentials also come from the standard variables
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The bucket of the `s3` backend (backups name theirs in `--to s3://bucket/prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Keys are written under this prefix (`a/b`: no leading or trailing `/`); empty: none.
    pub prefix: String,
    /// `http(s)://host[:port]` of an S3-compatible server; unset: AWS S3 in `region`.
    /// `http://` is allowed (a server beside the process), `https://` is verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// `bucket.host` addressing instead of `host/bucket` (AWS prefers it; most self-hosted
    /// servers want path style, the default).
    pub virtual_hosted_style: bool,
    /// How long one request may take, in seconds.
    pub timeout_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted_style: false,
            timeout_secs: 60,
        }
    }
}

impl S3Config {
    fn validate(&self) -> Result<(), String> {
        if let Some(bucket) = &self.bucket {
            check_bucket(bucket).map_err(|e| format!("storage.s3.bucket `{bucket}`: {e}"))?;
        }
        check_prefix(&self.prefix).map_err(|e| format!("storage.s3.prefix: {e}"))?;
        if let Some(endpoint) = &self.endpoint
            && (!(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                || check_http_url(endpoint).is_err())
        {
            return Err(format!(
                "storage.s3.endpoint (AWS_ENDPOINT_URL) `{endpoint}` is not an http:// or \
                 https:// URL"
            ));
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err("storage.s3.access_key_id and storage.s3.secret_access_key \
                        (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) go together: set both, or \
                        neither for the instance's own credentials"
                .into());
        }
        if self.region.is_empty() {
            return Err("storage.s3.region (AWS_REGION) must not be empty".into());
        }
        if self.timeout_secs == 0 {
            return Err("storage.s3.timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

/// S3's bucket naming rules: 3–63 lowercase letters, digits, `-` and `.`, starting and ending
/// with a letter or digit.
pub fn check_bucket(bucket: &str) -> Result<(), &'static str> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        || !edge_ok(bucket.chars().next())
        || !edge_ok(bucket.chars().last())
    {
        return Err(
            "a bucket name is 3 to 63 lowercase letters, digits, `-` and `.`, starting \
                    and ending with a letter or digit",
        );
    }
    Ok(())
}

/// A key prefix: empty, or `/`-separated segments of letters, digits, `-`, `_`, `.` (no `.`
/// or `..` segment).
pub fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok = prefix.len() <= 512
        && prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(
            "a prefix is `/`-separated segments of letters, digits, `-`, `_` and `.`, without \
             a leading or trailing `/`",
        )
    }
}
