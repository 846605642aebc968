//! Retention: the oldest entries move into JSONL archive files (written under a temporary
//! name, synced, renamed, recorded) before they are deleted from the database.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::chain::{ChainCheck, hex};
use super::{
    ArchiveRecord, ArchiveReport, AuditError, MAX_ARCHIVE_ENTRIES, PAGE, SqlAuditLog, io_error,
};

impl SqlAuditLog {
    /// Moves the oldest entries, as long as they are older than `cutoff_ms`, into JSONL files
    /// in `dir` (each written under a temporary name, synced, renamed), records each file in
    /// `audit_archives`, and only then deletes its entries. Refuses to archive a broken chain.
    pub async fn archive_older_than(
        &self,
        cutoff_ms: i64,
        dir: &Path,
    ) -> Result<ArchiveReport, AuditError> {
        let mut report = ArchiveReport::default();
        while let Some(record) = self.archive_one(cutoff_ms, dir).await? {
            report.entries += u64::try_from(record.entries).unwrap_or(0);
            let full = record.entries == MAX_ARCHIVE_ENTRIES;
            report.files.push(record);
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// Archives per a retention in days (0 keeps everything); see
    /// [`SqlAuditLog::archive_older_than`].
    pub async fn apply_retention(
        &self,
        retention_days: u32,
        dir: &Path,
    ) -> Result<ArchiveReport, AuditError> {
        if retention_days == 0 {
            return Ok(ArchiveReport::default());
        }
        let cutoff = confab_core::now_ms() - i64::from(retention_days) * 86_400_000;
        self.archive_older_than(cutoff, dir).await
    }

    /// Writes and records one archive file; `None` when nothing is old enough.
    async fn archive_one(
        &self,
        cutoff_ms: i64,
        dir: &Path,
    ) -> Result<Option<ArchiveRecord>, AuditError> {
        let (anchor_seq, anchor_hash) = self.anchor().await?;
        let (head_seq, _) = self.head().await?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error(dir))?;
        let temp = dir.join(format!(".audit-{}.jsonl.tmp", confab_core::new_id()));
        let written = self
            .write_archive(&temp, anchor_seq, anchor_hash, head_seq, cutoff_ms)
            .await;
        let (entries, last_hash, file_sha256) = match written {
            Ok(Some(written)) => written,
            Ok(None) | Err(_) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return written.map(|_| None);
            }
        };
        let from_seq = anchor_seq + 1;
        let to_seq = anchor_seq + entries;
        let file_name = format!("audit-{from_seq:012}-{to_seq:012}.jsonl");
        let path = dir.join(&file_name);
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(io_error(&path))?;
        sync_dir(dir).await;

        let record = ArchiveRecord {
            from_seq,
            to_seq,
            entries,
            last_hash,
            file_name,
            file_sha256,
            at: confab_core::now_ms(),
        };
        if let Err(e) = self.record_archive(&record).await {
            // The file goes unless a record names it (another run wrote the same range).
            let archives = self.archives().await?;
            if !archives.iter().any(|a| a.file_name == record.file_name) {
                let _ = tokio::fs::remove_file(&path).await;
            }
            if archives.iter().any(|a| a.from_seq == record.from_seq) {
                tracing::warn!(error = %e, "audit archive not recorded; another run got there first");
                return Ok(None);
            }
            return Err(e);
        }
        tracing::info!(
            from_seq = record.from_seq,
            to_seq = record.to_seq,
            file = %record.file_name,
            "audit entries archived"
        );
        Ok(Some(record))
    }

    /// Writes the entries after the anchor that are older than the cutoff to `temp`, checking
    /// the chain on the way; returns (entries, last hash, file sha256), or `None` if none.
    async fn write_archive(
        &self,
        temp: &Path,
        anchor_seq: i64,
        anchor_hash: String,
        head_seq: i64,
        cutoff_ms: i64,
    ) -> Result<Option<(i64, String, String)>, AuditError> {
        let mut check = ChainCheck::new(anchor_seq + 1, anchor_hash);
        let mut file: Option<tokio::io::BufWriter<tokio::fs::File>> = None;
        let mut digest = Sha256::new();
        let mut count = 0;
        let mut after = anchor_seq;
        'pages: loop {
            let page = self.chain_page(after, head_seq).await?;
            for entry in &page {
                if entry.content.at >= cutoff_ms || count == MAX_ARCHIVE_ENTRIES {
                    break 'pages;
                }
                check.next(entry).map_err(AuditError::Broken)?;
                let mut line = serde_json::to_vec(&entry)
                    .map_err(|e| io_error(temp)(std::io::Error::other(e)))?;
                line.push(b'\n');
                digest.update(&line);
                let writer = match &mut file {
                    Some(writer) => writer,
                    None => {
                        let created = tokio::fs::File::create(temp)
                            .await
                            .map_err(io_error(temp))?;
                        file.insert(tokio::io::BufWriter::new(created))
                    }
                };
                writer.write_all(&line).await.map_err(io_error(temp))?;
                count += 1;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        let Some(mut writer) = file else {
            return Ok(None);
        };
        writer.flush().await.map_err(io_error(temp))?;
        writer.get_ref().sync_all().await.map_err(io_error(temp))?;
        Ok(Some((count, check.prev_hash, hex(&digest.finalize()))))
    }
}

/// Makes a rename in `dir` durable (where the platform allows syncing a directory).
async fn sync_dir(dir: &Path) {
    if let Ok(handle) = tokio::fs::File::open(dir).await {
        let _ = handle.sync_all().await;
    }
}
