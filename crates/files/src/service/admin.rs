//! The admin views: files by state across users (quarantined and pending ones first of all),
//! storage per user with totals, and whether the virus scanner is configured and answers.

use uuid::Uuid;

use super::{FilesResult, FilesService};
use crate::domain::{FileRecord, FileState, Usage};

/// A file as the admin list shows it (the record carries its owner).
#[derive(Debug)]
pub struct AdminFile(pub FileRecord);

/// The scanner as the admin console sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerStatus {
    pub configured: bool,
    pub address: Option<String>,
    /// Whether it answered a ping just now (`None` when none is configured).
    pub reachable: Option<bool>,
}

/// Storage per user and in all.
#[derive(Debug)]
pub struct StorageReport {
    pub users: Vec<(Uuid, Usage)>,
    pub by_state: Vec<(FileState, u64)>,
    pub total_bytes: u64,
    pub scanner: ScannerStatus,
    /// The last reconciliation of blobs and rows in this process.
    pub reconciliation: Option<super::Reconciliation>,
}

impl FilesService {
    /// Files in `state` across users, newest first.
    pub async fn admin_files(
        &self,
        state: FileState,
        before: Option<Uuid>,
        limit: u32,
    ) -> FilesResult<(Vec<FileRecord>, Option<Uuid>)> {
        let limit = limit.clamp(1, self.settings.page_max);
        let files = self.store.by_state(state, before, limit).await?;
        let next = (files.len() == limit as usize)
            .then(|| files.last().map(|f| f.id))
            .flatten();
        Ok((files, next))
    }

    /// Storage per user (largest first), totals, and the scanner's status.
    pub async fn storage_report(&self, limit: u32) -> FilesResult<StorageReport> {
        let users = self.store.storage(limit.clamp(1, 1000)).await?;
        let (by_state, total_bytes) = self.store.totals().await?;
        Ok(StorageReport {
            users,
            by_state,
            total_bytes,
            scanner: self.scanner_status().await,
            reconciliation: self.last_reconciliation(),
        })
    }

    pub async fn scanner_status(&self) -> ScannerStatus {
        match &self.scanner {
            None => ScannerStatus {
                configured: false,
                address: None,
                reachable: None,
            },
            Some(scanner) => ScannerStatus {
                configured: true,
                address: Some(scanner.address()),
                reachable: Some(scanner.ping().await.is_ok()),
            },
        }
    }
}
