//! The files service's upkeep, run by one task per process: resumable uploads past their
//! expiry are deleted with their parts, and the reconciliation compares the blob store with
//! the rows — a blob without a row (a crash between the two writes, or a delete whose blob
//! removal failed) is removed once older than the grace period; a row whose blob is missing
//! is reported (the admin storage view and the log), never silently dropped; and what writes
//! cut off by a killed process staged in a local directory is swept after the same grace.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_blob::BlobKey;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::{FilesResult, FilesService};
use crate::domain::FileState;

/// A blob this young may belong to an upload still being written: left alone.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// What the last reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub blobs_checked: u64,
    pub orphans_removed: u64,
    /// Files whose content is missing from the blob store.
    pub missing: Vec<Uuid>,
}

impl FilesService {
    /// Runs the upkeep every `every` until `shutdown`.
    pub fn start_maintenance(
        self: &Arc<Self>,
        every: Duration,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        let service = self.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                match service.expire_uploads().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "expired resumable uploads deleted"),
                    Err(e) => tracing::warn!(error = %e, "cannot delete expired uploads"),
                }
                if let Err(e) = service.reconcile(ORPHAN_GRACE).await {
                    tracing::warn!(error = %e, "the files reconciliation failed");
                }
                // What writes cut off by a killed process staged (a local directory's).
                match service.blobs.sweep_incomplete(ORPHAN_GRACE).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(files = n, "staged files of interrupted writes removed")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot sweep interrupted writes"),
                }
            }
        });
    }

    /// Compares blobs and rows: removes blobs without a row older than `grace`, reports rows
    /// without a blob.
    pub async fn reconcile(&self, grace: Duration) -> FilesResult<Reconciliation> {
        // Rows first: a file stored after this read has a young blob, which the grace spares.
        let mut rows = HashSet::new();
        for state in FileState::ALL {
            let mut before = None;
            loop {
                let page = self.store.by_state(state, before, 500).await?;
                let done = page.len() < 500;
                before = page.last().map(|f| f.id);
                rows.extend(page.into_iter().map(|f| (f.owner, f.id)));
                if done {
                    break;
                }
            }
        }
        let prefix = BlobKey::new("files").map_err(confab_blob::BlobError::from)?;
        let blobs = self.blobs.list(Some(&prefix)).await?;
        let cutoff = confab_core::now_ms()
            .saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let mut report = Reconciliation {
            at_ms: confab_core::now_ms(),
            blobs_checked: blobs.len() as u64,
            ..Reconciliation::default()
        };
        let mut with_content = HashSet::new();
        for blob in &blobs {
            let Some((owner, id, variant)) = parse_key(&blob.key) else {
                continue;
            };
            if !variant {
                with_content.insert((owner, id));
            }
            if rows.contains(&(owner, id)) || blob.modified_ms > cutoff {
                continue;
            }
            // Checked again: the file may have been stored since the rows were read.
            if self.store.get_any(id).await?.is_some() {
                continue;
            }
            if let Ok(key) = BlobKey::new(blob.key.clone()) {
                self.remove_blob(&key).await;
                report.orphans_removed += 1;
            }
        }
        report.missing = rows
            .iter()
            .filter(|key| !with_content.contains(key))
            .map(|(_, id)| *id)
            .collect();
        report.missing.sort();
        if !report.missing.is_empty() {
            tracing::error!(
                files = report.missing.len(),
                first = %report.missing[0],
                "files whose content is missing from the blob store"
            );
        }
        if report.orphans_removed > 0 {
            tracing::info!(
                blobs = report.orphans_removed,
                "blobs without a file removed"
            );
        }
        *self.reconciliation.lock() = Some(report.clone());
        Ok(report)
    }

    /// The last reconciliation's findings in this process.
    pub fn last_reconciliation(&self) -> Option<Reconciliation> {
        self.reconciliation.lock().clone()
    }
}

/// `files/<owner>/<id>` or `files/<owner>/<id>.<suffix>` (a variant, a PDF's text): the owner,
/// the id and whether it is such a derived blob.
fn parse_key(key: &str) -> Option<(Uuid, Uuid, bool)> {
    let mut parts = key.strip_prefix("files/")?.split('/');
    let owner = Uuid::try_parse(parts.next()?).ok()?;
    let last = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (id, variant) = match last.split_once('.') {
        Some((id, _)) => (id, true),
        None => (last, false),
    };
    Some((owner, Uuid::try_parse(id).ok()?, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_back_to_owner_and_id() {
        let (owner, id) = (Uuid::now_v7(), Uuid::now_v7());
        let key = crate::domain::blob_key(owner, id);
        assert_eq!(parse_key(&key), Some((owner, id, false)));
        assert_eq!(parse_key(&format!("{key}.thumb")), Some((owner, id, true)));
        // A PDF's extracted text is beside its file like a variant.
        assert_eq!(parse_key(&format!("{key}.text")), Some((owner, id, true)));
        assert_eq!(parse_key("files/x/y"), None);
        assert_eq!(parse_key("uploads/a/b/0"), None);
        assert_eq!(parse_key(&format!("{key}/extra")), None);
    }
}
