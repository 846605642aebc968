//! The `[files]` section: the files service's limits, its allowlist of types, its virus
//! scanner (clamd) and its share links. Where the bytes live is `[storage]`.

use serde::{Deserialize, Serialize};

use super::Secret;

/// The files service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// The largest file one upload may store, in bytes (larger: 413 `file_too_large`).
    pub max_file_bytes: u64,
    /// What one user may store in all: bytes, and files.
    pub quota_bytes: u64,
    pub quota_files: u64,
    /// The kinds of files accepted, by content: `image`, `pdf`, `document`, `text`,
    /// `markdown`, `audio`, `video`, `archive` (archives are off by default).
    pub allowed_kinds: Vec<String>,
    /// clamd's address (`tcp://host:3310`, `host:3310`, `unix:///run/clamav/clamd.ctl` or a
    /// socket path). Set: every upload is scanned before it is served, and nothing is served
    /// while clamd cannot say (fails closed). Unset: files are stored `unscanned`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamd_address: Option<String>,
    /// The longest stream clamd accepts (its `StreamMaxLength`), in bytes: a larger upload is
    /// refused (413 `file_too_large_to_scan`), never stored unscanned.
    pub clamd_max_bytes: u64,
    /// How long one step of a scan may wait on clamd, in seconds.
    pub clamd_timeout_secs: u64,
    /// The longest a share link may live, in hours.
    pub link_max_hours: u32,
    /// With S3 storage (not encrypted at rest): a share link answers with a redirect to a
    /// presigned URL of the object, valid for a minute, so the bytes come from the storage
    /// rather than through Confab. The object is then served as the storage has it (no file
    /// name, `application/octet-stream`: downloaded, never shown inline).
    pub presigned_links: bool,
    /// The key that signs share links (any length; 32 random bytes or more). Unset: one is
    /// made once and kept in the database, shared by every replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_key: Option<Secret>,
    /// Encrypts stored files and their variants at rest (AES-256-GCM, a data key per object,
    /// wrapped by this key; at least 32 bytes). Unset: stored as given. Changing or losing it
    /// makes stored files unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<Secret>,
    /// Images with more pixels than this are refused (decompression bombs).
    pub image_max_pixels: u64,
    /// The most memory one image decode may allocate, in bytes.
    pub image_max_alloc_bytes: u64,
    /// Uploads one user may have in progress at once in a process (429 `too_many_uploads`).
    pub uploads_per_user: u32,
    /// The size of a resumable upload's parts, in bytes.
    pub part_bytes: u64,
    /// Resumable uploads one user may have open at once.
    pub open_uploads_per_user: u32,
    /// A resumable upload not completed within this many hours is deleted.
    pub upload_expiry_hours: u32,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 100 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            quota_files: 1000,
            allowed_kinds: [
                "image", "pdf", "document", "text", "markdown", "audio", "video",
            ]
            .map(String::from)
            .to_vec(),
            clamd_address: None,
            clamd_max_bytes: 100 * 1024 * 1024,
            clamd_timeout_secs: 30,
            link_max_hours: 24 * 7,
            presigned_links: false,
            link_key: None,
            encryption_key: None,
            image_max_pixels: 50_000_000,
            image_max_alloc_bytes: 512 * 1024 * 1024,
            uploads_per_user: 4,
            part_bytes: 8 * 1024 * 1024,
            open_uploads_per_user: 4,
            upload_expiry_hours: 24,
        }
    }
}

/// The kinds `allowed_kinds` may name.
pub const FILE_KINDS: [&str; 8] = [
    "image", "pdf", "document", "text", "markdown", "audio", "video", "archive",
];

impl FilesConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_file_bytes == 0 {
            return Err("files.max_file_bytes must be at least 1".into());
        }
        if self.quota_bytes == 0 || self.quota_files == 0 {
            return Err("files.quota_bytes and files.quota_files must be at least 1".into());
        }
        for kind in &self.allowed_kinds {
            if !FILE_KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "files.allowed_kinds: `{kind}` is not a kind; the kinds are {}",
                    FILE_KINDS.join(", ")
                ));
            }
        }
        if self.clamd_address.as_deref() == Some("") {
            return Err(
                "files.clamd_address is empty: set clamd's address or leave it unset \
                        to store files unscanned"
                    .into(),
            );
        }
        if self.clamd_max_bytes == 0 || self.clamd_timeout_secs == 0 {
            return Err(
                "files.clamd_max_bytes and files.clamd_timeout_secs must be at least 1".into(),
            );
        }
        if !(1..=24 * 365).contains(&self.link_max_hours) {
            return Err("files.link_max_hours must be between 1 and 8760 (a year)".into());
        }
        if let Some(key) = &self.encryption_key
            && key.expose().len() < 32
        {
            return Err(
                "files.encryption_key must be at least 32 bytes (e.g. `openssl rand -hex 32`)"
                    .into(),
            );
        }
        if self.image_max_pixels == 0 || self.image_max_alloc_bytes == 0 {
            return Err(
                "files.image_max_pixels and files.image_max_alloc_bytes must be at least 1".into(),
            );
        }
        if self.uploads_per_user == 0 || self.open_uploads_per_user == 0 {
            return Err(
                "files.uploads_per_user and files.open_uploads_per_user must be at least 1".into(),
            );
        }
        // S3 multipart parts are at least 5 MiB (but the last); 1 GiB bounds a part in memory.
        if !(5 * 1024 * 1024..=1024 * 1024 * 1024).contains(&self.part_bytes) {
            return Err("files.part_bytes must be between 5 MiB and 1 GiB".into());
        }
        if self.upload_expiry_hours == 0 {
            return Err("files.upload_expiry_hours must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encryption_key_is_at_least_32_bytes() {
        let with = |key: &str| FilesConfig {
            encryption_key: Some(Secret::new(key)),
            ..FilesConfig::default()
        };
        assert!(FilesConfig::default().validate().is_ok());
        assert!(with("short").validate().is_err());
        assert!(with(&"k".repeat(31)).validate().is_err());
        assert!(with(&"k".repeat(32)).validate().is_ok());
    }
}
