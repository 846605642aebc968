//! Verification: walking the chain in the database, from the newest archive on, and each
//! archive file against its record and its own chain.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use super::chain::{ChainCheck, Stored, hex};
use super::{
    ArchiveRecord, AuditError, BreakKind, BrokenEntry, GENESIS_HASH, PAGE, SqlAuditLog,
    VerifyReport, io_error,
};

impl SqlAuditLog {
    /// Walks the chain in the database (from the newest archive on) and checks every entry.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        self.verify_with_archives(None).await
    }

    /// Like [`SqlAuditLog::verify`]; with a directory, also checks each archive file found
    /// there against its record and its own chain (missing files are skipped).
    pub async fn verify_with_archives(
        &self,
        archive_dir: Option<&Path>,
    ) -> Result<VerifyReport, AuditError> {
        // Archiving at the same time moves entries out from under the walk: when the walk
        // meets a hole and a newer archive now covers it, walk again.
        let mut attempts = 0;
        loop {
            let anchor = self.anchor().await?;
            let report = self.verify_once(archive_dir).await?;
            attempts += 1;
            let moved = matches!(
                report.first_broken,
                Some(BrokenEntry {
                    kind: BreakKind::Gap | BreakKind::MissingTail,
                    ..
                })
            ) && self.anchor().await? != anchor;
            if !moved || attempts >= 3 {
                return Ok(report);
            }
        }
    }

    async fn verify_once(&self, archive_dir: Option<&Path>) -> Result<VerifyReport, AuditError> {
        // The head first: every entry up to it is committed.
        let (head_seq, head_hash) = self.head().await?;
        let mut report = VerifyReport {
            entries: 0,
            archived_entries: 0,
            archive_files_checked: 0,
            head_seq,
            first_broken: None,
        };
        let mut check = ChainCheck::new(1, GENESIS_HASH);
        for archive in self.archives().await? {
            if archive.from_seq != check.expected_seq {
                report.first_broken = Some(BrokenEntry {
                    seq: Some(check.expected_seq),
                    id: None,
                    kind: BreakKind::ArchiveGap,
                    reason: format!(
                        "the archive records jump from seq {} to the archive {}",
                        check.expected_seq, archive.file_name
                    ),
                });
                return Ok(report);
            }
            if let Some(dir) = archive_dir {
                let path = dir.join(&archive.file_name);
                if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    report.archive_files_checked += 1;
                    if let Some(broken) = check_archive_file(
                        &path,
                        &archive,
                        ChainCheck::new(check.expected_seq, check.prev_hash.clone()),
                    )
                    .await?
                    {
                        report.first_broken = Some(broken);
                        return Ok(report);
                    }
                }
            }
            report.archived_entries += u64::try_from(archive.entries).unwrap_or(0);
            check = ChainCheck::new(archive.to_seq + 1, archive.last_hash);
        }

        let mut after = check.expected_seq - 1;
        loop {
            let page = self.chain_page(after, head_seq).await?;
            for entry in &page {
                if let Err(broken) = check.next(entry) {
                    report.first_broken = Some(broken);
                    return Ok(report);
                }
                report.entries += 1;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        if check.expected_seq <= head_seq {
            report.first_broken = Some(BrokenEntry {
                seq: Some(check.expected_seq),
                id: None,
                kind: BreakKind::MissingTail,
                reason: format!(
                    "entries {} to {head_seq} are missing (the newest entries)",
                    check.expected_seq
                ),
            });
            return Ok(report);
        }
        if check.prev_hash != head_hash {
            report.first_broken = Some(BrokenEntry {
                seq: Some(head_seq),
                id: None,
                kind: BreakKind::HeadMismatch,
                reason: "the newest entry's hash is not the one the head records".into(),
            });
            return Ok(report);
        }
        if let Some(id) = self.first_unchained().await? {
            report.first_broken = Some(BrokenEntry {
                seq: None,
                id: Some(id),
                kind: BreakKind::Unchained,
                reason: "the row has no place in the chain (written without a hash); \
                         restarting the server chains it"
                    .into(),
            });
        }
        Ok(report)
    }
}

/// Checks an archive file line by line against its record; `Some` names what is wrong.
pub(super) async fn check_archive_file(
    path: &Path,
    record: &ArchiveRecord,
    mut check: ChainCheck,
) -> Result<Option<BrokenEntry>, AuditError> {
    let file_broken = |seq: i64, id: Option<String>, reason: String| {
        Some(BrokenEntry {
            seq: Some(seq),
            id,
            kind: BreakKind::ArchiveFile,
            reason: format!("archive {}: {reason}", record.file_name),
        })
    };
    let file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let mut reader = tokio::io::BufReader::new(file);
    let mut digest = Sha256::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        digest.update(&line);
        let entry: Stored = match serde_json::from_slice(&line) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Ok(file_broken(
                    check.expected_seq,
                    None,
                    format!("unreadable line: {e}"),
                ));
            }
        };
        if let Err(broken) = check.next(&entry) {
            return Ok(file_broken(
                broken.seq.unwrap_or(entry.seq),
                broken.id,
                broken.reason,
            ));
        }
    }
    if check.expected_seq != record.to_seq + 1 || check.prev_hash != record.last_hash {
        return Ok(file_broken(
            check.expected_seq,
            None,
            "the file ends elsewhere than its record says".into(),
        ));
    }
    if hex(&digest.finalize()) != record.file_sha256 {
        return Ok(file_broken(
            record.from_seq,
            None,
            "the file's sha256 differs from the recorded one".into(),
        ));
    }
    Ok(None)
}
