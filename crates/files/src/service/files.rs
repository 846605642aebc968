//! Reading, listing and deleting an owner's files, and the user purge's part.

use confab_blob::{BlobError, BlobKey, BlobRead};
use uuid::Uuid;

use super::{FilesError, FilesResult, FilesService};
use crate::domain::serve::{Serving, serving};
use crate::domain::{FileRecord, FileState, Variant, range};

/// One page of an owner's files, newest first.
#[derive(Debug)]
pub struct FilePage {
    pub files: Vec<FileRecord>,
    /// The cursor of the next page, when there may be one.
    pub next: Option<Uuid>,
}

/// A file's bytes being served: how, which range, and the body.
#[derive(Debug)]
pub struct Content {
    pub file: FileRecord,
    pub serving: Serving,
    /// The byte range of a ranged read (`None`: the whole file).
    pub range: Option<std::ops::Range<u64>>,
    pub read: BlobRead,
}

impl FilesService {
    /// The owner's file.
    pub async fn file(&self, owner: Uuid, id: Uuid) -> FilesResult<FileRecord> {
        self.store
            .get(owner, id)
            .await?
            .ok_or(FilesError::NotFound("file"))
    }

    /// The owner's files, newest first.
    pub async fn list(
        &self,
        owner: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> FilesResult<FilePage> {
        let limit = limit.clamp(1, self.settings.page_max);
        let files = self.store.list(owner, before, limit).await?;
        let next = (files.len() == limit as usize)
            .then(|| files.last().map(|f| f.id))
            .flatten();
        Ok(FilePage { files, next })
    }

    /// The owner's file's bytes, or the range `range_header` asks.
    pub async fn content(
        &self,
        owner: Uuid,
        id: Uuid,
        range_header: Option<&str>,
    ) -> FilesResult<Content> {
        let file = self.file(owner, id).await?;
        self.serve(file, range_header).await
    }

    /// The bytes of a file that may be served, checked: never a pending or infected one.
    pub(super) async fn serve(
        &self,
        file: FileRecord,
        range_header: Option<&str>,
    ) -> FilesResult<Content> {
        check_servable(&file)?;
        let range = match range_header {
            Some(header) => range::parse(header, file.size)?,
            None => None,
        };
        let key = BlobKey::new(file.blob_key()).map_err(BlobError::from)?;
        let read = self.blobs.get(&key, range.clone()).await?;
        let serving = serving(&file.content_type, file.kind, &file.name);
        Ok(Content {
            file,
            serving,
            range,
            read,
        })
    }

    /// An image's thumbnail or preview, whole (they are small), with its content type.
    pub async fn variant(
        &self,
        owner: Uuid,
        id: Uuid,
        variant: Variant,
    ) -> FilesResult<(FileRecord, bytes::Bytes, &'static str)> {
        let file = self.file(owner, id).await?;
        check_servable(&file)?;
        if !file.variants {
            return Err(FilesError::NotFound(variant_name(variant)));
        }
        let key = BlobKey::new(file.variant_key(variant)).map_err(BlobError::from)?;
        let read = self.blobs.get(&key, None).await.map_err(|e| match e {
            BlobError::NotFound(_) => FilesError::NotFound(variant_name(variant)),
            other => FilesError::Blob(other),
        })?;
        let bytes = collect(read).await?;
        let content_type = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else {
            "image/jpeg"
        };
        Ok((file, bytes, content_type))
    }

    /// Deletes the owner's file: the row (with its links, its room given back) first, so it
    /// is gone at once, then its blobs.
    pub async fn delete(&self, owner: Uuid, id: Uuid) -> FilesResult<()> {
        let file = self
            .store
            .delete(owner, id)
            .await?
            .ok_or(FilesError::NotFound("file"))?;
        self.remove_blobs(&file).await;
        Ok(())
    }

    /// The content, variants and extracted text of a deleted file.
    pub(super) async fn remove_blobs(&self, file: &FileRecord) {
        let keys = [file.blob_key(), file.text_key()]
            .into_iter()
            .chain(Variant::ALL.map(|v| file.variant_key(v)));
        for key in keys {
            match BlobKey::new(key) {
                Ok(key) => self.remove_blob(&key).await,
                Err(e) => tracing::error!(error = %e, "a file's blob key is invalid"),
            }
        }
    }

    /// Deletes every file of a deleted user; answers how many.
    pub async fn purge_user(&self, owner: Uuid) -> FilesResult<u64> {
        let mut deleted = 0;
        loop {
            let batch = self.store.owned(owner, 100).await?;
            if batch.is_empty() {
                // Nothing of theirs is left; a file stored meanwhile keeps the row.
                self.store.forget_owner(owner).await?;
                return Ok(deleted);
            }
            for file in batch {
                if let Some(file) = self.store.delete(owner, file.id).await? {
                    self.remove_blobs(&file).await;
                    deleted += 1;
                }
            }
        }
    }
}

fn variant_name(variant: Variant) -> &'static str {
    match variant {
        Variant::Thumb => "thumbnail",
        Variant::Preview => "preview",
    }
}

/// Only clean and unscanned files are served.
pub(super) fn check_servable(file: &FileRecord) -> FilesResult<()> {
    match file.state {
        FileState::Clean | FileState::Unscanned => Ok(()),
        FileState::Pending => Err(FilesError::NotReady),
        FileState::Infected => Err(FilesError::Quarantined {
            threat: file.threat.clone().unwrap_or_else(|| "a virus".to_owned()),
        }),
    }
}

/// Reads a whole (small) blob.
pub(super) async fn collect(read: BlobRead) -> FilesResult<bytes::Bytes> {
    use futures::TryStreamExt;
    let mut buf = bytes::BytesMut::with_capacity(usize::try_from(read.meta.size).unwrap_or(0));
    let mut body = read.body;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| FilesError::Blob(BlobError::Unavailable(e.to_string())))?
    {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
