//! What other services need of a user's files to attach them to something (chat messages):
//! whether files may be attached (`attachable`: theirs, scanned, not quarantined), what a
//! model is given for one (`model_input`: an image, text — a text or Markdown file's first
//! bytes, a PDF's extracted text —, or nothing readable), and deleting several at once.
//!
//! A PDF's text is extracted once, on a blocking thread, at most [`PDF_READERS`] at a time in
//! the process, and kept beside the file in the blob store (`<key>.text`: one flag byte —
//! `1` when the text was cut at [`PDF_TEXT_MAX_BYTES`] — then the UTF-8 text); it goes with
//! the file. A PDF that cannot be read is kept as an empty text, so it is not parsed again.

use std::collections::HashMap;

use bytes::Bytes;
use confab_blob::{BlobError, BlobKey};
use uuid::Uuid;

use super::files::{check_servable, collect};
use super::{FilesError, FilesResult, FilesService};
use crate::domain::{FileKind, FileRecord, FileState, Variant};

/// The largest original image given to a model when it has no preview yet.
pub const MODEL_IMAGE_MAX_BYTES: u64 = 5 * 1024 * 1024;

/// The image types models read as they are.
pub const MODEL_IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/// The largest PDF whose text is read; a larger one is unreadable to models.
pub const PDF_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The most text kept of one PDF.
pub const PDF_TEXT_MAX_BYTES: usize = 1024 * 1024;

/// The most text given to a model for one file, whatever is asked.
pub const MODEL_TEXT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// PDFs read at once in one process (each holds its file in memory while it is read).
pub const PDF_READERS: usize = 2;

/// Why one of the files asked for cannot be attached: the first such file, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachProblem {
    /// No such file of the owner's (another user's file is this too).
    NotFound(Uuid),
    /// Still waiting for its virus scan.
    NotReady(Uuid),
    /// Infected: never given to anyone.
    Quarantined(Uuid),
}

impl AttachProblem {
    /// The file the problem is with.
    pub fn file_id(self) -> Uuid {
        match self {
            AttachProblem::NotFound(id)
            | AttachProblem::NotReady(id)
            | AttachProblem::Quarantined(id) => id,
        }
    }
}

/// What a model is given for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelInput {
    /// JPEG, PNG, WebP or GIF bytes: the image's preview, or the original while it is small.
    Image { content_type: String, bytes: Bytes },
    /// A text or Markdown file's text, or a PDF's; `truncated` when it was cut.
    Text { text: String, truncated: bool },
    /// Nothing a model can read.
    Unreadable,
}

impl FilesService {
    /// The owner's files `ids`, in that order, if every one may be attached (`clean` or
    /// `unscanned`); else the first that may not, and why. One query, whatever the count.
    pub async fn attachable(
        &self,
        owner: Uuid,
        ids: &[Uuid],
    ) -> FilesResult<Result<Vec<FileRecord>, AttachProblem>> {
        let found: HashMap<Uuid, FileRecord> = self
            .store
            .get_many(owner, ids)
            .await?
            .into_iter()
            .map(|file| (file.id, file))
            .collect();
        let mut files = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(file) = found.get(id) else {
                return Ok(Err(AttachProblem::NotFound(*id)));
            };
            match file.state {
                FileState::Pending => return Ok(Err(AttachProblem::NotReady(*id))),
                FileState::Infected => return Ok(Err(AttachProblem::Quarantined(*id))),
                FileState::Clean | FileState::Unscanned => files.push(file.clone()),
            }
        }
        Ok(Ok(files))
    }

    /// What a model is given for the owner's file: text cut at `max_text_bytes` (on a
    /// character boundary; at most [`MODEL_TEXT_MAX_BYTES`]). `NotReady` while it is scanned, `Quarantined` if infected,
    /// `Preparing` for an image too large to give as it is whose preview is not made yet.
    pub async fn model_input(
        &self,
        owner: Uuid,
        id: Uuid,
        max_text_bytes: usize,
    ) -> FilesResult<ModelInput> {
        let file = self.file(owner, id).await?;
        check_servable(&file)?;
        let max_text_bytes = max_text_bytes.min(MODEL_TEXT_MAX_BYTES);
        match file.kind {
            FileKind::Image => self.image_input(&file).await,
            FileKind::Text | FileKind::Markdown => self.text_input(&file, max_text_bytes).await,
            FileKind::Pdf => self.pdf_input(&file, max_text_bytes).await,
            FileKind::Document | FileKind::Audio | FileKind::Video | FileKind::Archive => {
                Ok(ModelInput::Unreadable)
            }
        }
    }

    /// Deletes the owner's files `ids`, skipping those already gone; answers how many went.
    pub async fn delete_many(&self, owner: Uuid, ids: &[Uuid]) -> FilesResult<u64> {
        let mut deleted = 0;
        for id in ids {
            if let Some(file) = self.store.delete(owner, *id).await? {
                self.remove_blobs(&file).await;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn image_input(&self, file: &FileRecord) -> FilesResult<ModelInput> {
        if file.variants {
            let (_, bytes, content_type) =
                self.variant(file.owner, file.id, Variant::Preview).await?;
            return Ok(ModelInput::Image {
                content_type: content_type.to_owned(),
                bytes,
            });
        }
        // Types the variants job cannot decode never get a preview.
        if !MODEL_IMAGE_TYPES.contains(&file.content_type.as_str()) {
            return Ok(ModelInput::Unreadable);
        }
        if file.size > MODEL_IMAGE_MAX_BYTES {
            return Err(FilesError::Preparing);
        }
        let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
        let bytes = collect(self.blobs.get(&key, None).await?).await?;
        Ok(ModelInput::Image {
            content_type: file.content_type.clone(),
            bytes,
        })
    }

    /// The first `max` bytes, read as a range (3 more, so a character the limit cuts is
    /// seen whole and dropped rather than mangled).
    async fn text_input(&self, file: &FileRecord, max: usize) -> FilesResult<ModelInput> {
        let want = u64::try_from(max)
            .unwrap_or(u64::MAX)
            .saturating_add(3)
            .min(file.size);
        let bytes = if want == 0 {
            Bytes::new()
        } else {
            let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
            collect(self.blobs.get(&key, Some(0..want)).await?).await?
        };
        let more = file.size > bytes.len() as u64;
        let (text, truncated) = cut_text(&bytes, max, more);
        Ok(ModelInput::Text { text, truncated })
    }

    async fn pdf_input(&self, file: &FileRecord, max: usize) -> FilesResult<ModelInput> {
        let (text, cut) = match self.cached_text(file).await? {
            Some(cached) => cached,
            None => self.extract_pdf(file).await?,
        };
        if text.trim().is_empty() {
            return Ok(ModelInput::Unreadable);
        }
        let (text, truncated) = cut_text(text.as_bytes(), max, cut);
        Ok(ModelInput::Text { text, truncated })
    }

    /// The PDF's text kept from an earlier read, and whether it was cut.
    async fn cached_text(&self, file: &FileRecord) -> FilesResult<Option<(String, bool)>> {
        let key = BlobKey::new(file.text_key()).map_err(BlobError::from)?;
        let read = match self.blobs.get(&key, None).await {
            Ok(read) => read,
            Err(BlobError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = collect(read).await?;
        let Some((flag, text)) = bytes.split_first() else {
            return Ok(None);
        };
        Ok(Some((
            String::from_utf8_lossy(text).into_owned(),
            *flag == b'1',
        )))
    }

    /// Reads the PDF's text on a blocking thread (one of [`PDF_READERS`]) and keeps it.
    async fn extract_pdf(&self, file: &FileRecord) -> FilesResult<(String, bool)> {
        if file.size > PDF_MAX_BYTES {
            tracing::info!(file = %file.id, size = file.size, "a PDF too large to read for a model");
            return Ok((String::new(), false));
        }
        let Ok(_permit) = self.pdf_readers.acquire().await else {
            return Ok((String::new(), false));
        };
        // Another request may have read it while this one waited.
        if let Some(cached) = self.cached_text(file).await? {
            return Ok(cached);
        }
        let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
        let bytes = collect(self.blobs.get(&key, None).await?).await?;
        let read = tokio::task::spawn_blocking(move || {
            crate::pdf::extract_text(&bytes, PDF_TEXT_MAX_BYTES)
        })
        .await;
        let (text, cut) = match read {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                tracing::info!(file = %file.id, error = %e, "a PDF's text cannot be read");
                (String::new(), false)
            }
            // The runtime is stopping: nothing is kept, the next ask reads it again.
            Err(e) => {
                tracing::warn!(file = %file.id, error = %e, "the PDF reader stopped");
                return Ok((String::new(), false));
            }
        };
        self.keep_text(file, &text, cut).await;
        Ok((text, cut))
    }

    /// Keeps a PDF's text beside it; a failure costs a later read, not this answer.
    async fn keep_text(&self, file: &FileRecord, text: &str, cut: bool) {
        let Ok(key) = BlobKey::new(file.text_key()) else {
            return;
        };
        let mut kept = Vec::with_capacity(text.len() + 1);
        kept.push(if cut { b'1' } else { b'0' });
        kept.extend_from_slice(text.as_bytes());
        if let Err(e) = self.blobs.put(&key, kept.into()).await {
            tracing::warn!(file = %file.id, error = %e, "cannot keep a PDF's text");
            return;
        }
        // Deleted while it was read: the text must not stay behind.
        if matches!(self.store.get_any(file.id).await, Ok(None)) {
            self.remove_blob(&key).await;
        }
    }
}

/// `bytes` read as UTF-8 (invalid sequences replaced) and cut to at most `max` bytes on a
/// character boundary; `more`: the text goes on past `bytes`. A character cut by the end of
/// what was read is dropped whole. Answers the text and whether it was cut.
pub(crate) fn cut_text(bytes: &[u8], max: usize, more: bool) -> (String, bool) {
    let mut truncated = more || bytes.len() > max;
    let mut head = &bytes[..bytes.len().min(max)];
    if truncated
        && let Err(e) = std::str::from_utf8(head)
        && e.error_len().is_none()
    {
        head = &head[..e.valid_up_to()];
    }
    let mut text = String::from_utf8_lossy(head).into_owned();
    // A replacement character is longer than the byte it replaces.
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        truncated = true;
    }
    (text, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        let text = "héllo wörld".as_bytes();
        // "h" + "é" is 3 bytes; a limit of 2 cuts "é" in half: it goes whole.
        assert_eq!(cut_text(text, 2, false), ("h".to_owned(), true));
        assert_eq!(cut_text(text, 3, false), ("hé".to_owned(), true));
        assert_eq!(
            cut_text(text, 100, false),
            ("héllo wörld".to_owned(), false)
        );
        assert_eq!(
            cut_text(text, text.len(), false),
            ("héllo wörld".to_owned(), false)
        );
        // What was read ends where the file goes on.
        assert_eq!(cut_text(b"abc", 10, true), ("abc".to_owned(), true));
        assert_eq!(cut_text(b"abc", 0, false), (String::new(), true));
        // A four-byte character cut anywhere.
        let emoji = "a😀b".as_bytes();
        for max in 1..5 {
            assert_eq!(cut_text(emoji, max, false), ("a".to_owned(), true));
        }
        assert_eq!(cut_text(emoji, 5, false), ("a😀".to_owned(), true));
    }

    #[test]
    fn invalid_bytes_are_replaced_within_the_limit() {
        let (text, truncated) = cut_text(b"ab\xffcd", 100, false);
        assert_eq!(text, "ab\u{fffd}cd");
        assert!(!truncated);
        // The replacement character (3 bytes) does not push the text past the limit.
        let (text, truncated) = cut_text(b"ab\xff\xfe", 4, false);
        assert!(text.len() <= 4, "{text:?}");
        assert!(truncated);
        // An incomplete character at the very end of a whole file is replaced, not dropped.
        assert_eq!(
            cut_text(b"ab\xc3", 100, false),
            ("ab\u{fffd}".to_owned(), false)
        );
    }
}
