//! Resumable uploads, for files too large for one request: create an upload (name and size
//! declared), send its parts — each exactly `part_bytes` but the last, in any order, any part
//! again — then complete it. Completion streams the parts, in order, through the same checks
//! as a single upload (type by content, limits, the quota's transaction, the scan), so a file
//! sent in parts is held to the same rules. Parts wait under `uploads/…` in the blob store; an
//! upload not completed before it expires is deleted with them.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use confab_blob::{BlobError, BlobKey, BlobStore, ByteStream};
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{FilesError, FilesResult, FilesService, Upload};
use crate::domain::{FileRecord, KindError, names};
use crate::ports::UploadRecord;

/// What a client declares when it starts a resumable upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub name: String,
    pub size: u64,
    pub declared_type: Option<String>,
}

/// An upload and the parts received so far.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    pub upload: UploadRecord,
    pub received: Vec<u32>,
}

impl FilesService {
    /// Starts a resumable upload of `size` bytes.
    pub async fn create_upload(&self, owner: Uuid, input: NewUpload) -> FilesResult<UploadStatus> {
        let name = names::sanitize(&input.name)?;
        if input.size == 0 {
            return Err(KindError::Empty.into());
        }
        self.check_size(input.size)?;
        let usage = self.store.usage(owner).await?;
        let quota = self.settings.quota;
        if usage.files >= quota.max_files
            || usage.bytes.saturating_add(input.size) > quota.max_bytes
        {
            return Err(self.over_quota_error(usage));
        }
        let now = confab_core::now_ms();
        let upload = UploadRecord {
            id: confab_core::new_id(),
            owner,
            name,
            declared_type: input.declared_type,
            size: input.size,
            part_bytes: self.settings.part_bytes,
            created_ms: now,
            expires_ms: now.saturating_add(self.settings.upload_expiry_ms),
        };
        let max = self.settings.open_uploads_per_user;
        if !self.uploads_store.create_upload(&upload, max).await? {
            return Err(FilesError::TooManyOpenUploads { max });
        }
        Ok(UploadStatus {
            upload,
            received: Vec::new(),
        })
    }

    /// The owner's open upload; an expired one is gone.
    async fn open_upload(&self, owner: Uuid, id: Uuid) -> FilesResult<UploadRecord> {
        self.uploads_store
            .upload(owner, id)
            .await?
            .filter(|u| u.expires_ms > confab_core::now_ms())
            .ok_or(FilesError::NotFound("upload"))
    }

    /// An upload and the parts it has.
    pub async fn upload_status(&self, owner: Uuid, id: Uuid) -> FilesResult<UploadStatus> {
        let upload = self.open_upload(owner, id).await?;
        let received = self.uploads_store.parts(id).await?;
        Ok(UploadStatus { upload, received })
    }

    /// Stores part `n` of an upload; its length must be exactly the part's.
    pub async fn put_part(
        &self,
        owner: Uuid,
        id: Uuid,
        n: u32,
        body: ByteStream,
    ) -> FilesResult<()> {
        let upload = self.open_upload(owner, id).await?;
        let expected = upload.part_len(n).ok_or(FilesError::InvalidPart {
            parts: upload.parts(),
        })?;
        let _slot = self.uploads.take(owner).ok_or(FilesError::TooManyUploads {
            max: self.uploads.max(),
        })?;
        let received = Arc::new(Mutex::new(0u64));
        let counted = {
            let received = received.clone();
            body.map(move |chunk: io::Result<Bytes>| {
                let chunk = chunk?;
                let mut got = received.lock();
                *got += chunk.len() as u64;
                if *got > expected {
                    return Err(io::Error::other("longer than the part"));
                }
                Ok(chunk)
            })
            .boxed()
        };
        let key = BlobKey::new(upload.part_key(n)).map_err(BlobError::from)?;
        let stored = self.blobs.put_stream(&key, counted).await;
        let got = *received.lock();
        match stored {
            Ok(_) if got == expected => {}
            Ok(_) => {
                self.remove_blob(&key).await;
                return Err(FilesError::PartSize { expected, got });
            }
            Err(_) if got > expected => return Err(FilesError::PartSize { expected, got }),
            Err(BlobError::Body(e)) => return Err(FilesError::Incomplete(e.to_string())),
            Err(e) => return Err(e.into()),
        }
        self.uploads_store.add_part(id, n).await?;
        Ok(())
    }

    /// Completes an upload whose parts are all in: the file is made from them through the
    /// single upload's checks, then the parts go.
    pub async fn complete_upload(&self, owner: Uuid, id: Uuid) -> FilesResult<FileRecord> {
        let upload = self.open_upload(owner, id).await?;
        let received = self.uploads_store.parts(id).await?;
        let missing: Vec<u32> = (0..upload.parts())
            .filter(|n| received.binary_search(n).is_err())
            .collect();
        if !missing.is_empty() {
            return Err(FilesError::PartsMissing(missing));
        }
        let body = parts_stream(self.blobs.clone(), &upload)?;
        let file = self
            .upload(
                owner,
                Upload {
                    name: upload.name.clone(),
                    declared_type: upload.declared_type.clone(),
                    body,
                },
            )
            .await?;
        self.discard_upload(&upload).await?;
        Ok(file)
    }

    /// Cancels an upload: it and its parts are deleted.
    pub async fn cancel_upload(&self, owner: Uuid, id: Uuid) -> FilesResult<()> {
        let upload = self
            .uploads_store
            .upload(owner, id)
            .await?
            .ok_or(FilesError::NotFound("upload"))?;
        self.discard_upload(&upload).await
    }

    async fn discard_upload(&self, upload: &UploadRecord) -> FilesResult<()> {
        self.uploads_store.delete_upload(upload.id).await?;
        for n in 0..upload.parts() {
            if let Ok(key) = BlobKey::new(upload.part_key(n)) {
                self.remove_blob(&key).await;
            }
        }
        Ok(())
    }

    /// Deletes uploads that expired; answers how many.
    pub async fn expire_uploads(&self) -> FilesResult<u64> {
        let mut removed = 0;
        loop {
            let expired = self
                .uploads_store
                .expired_uploads(confab_core::now_ms(), 100)
                .await?;
            if expired.is_empty() {
                return Ok(removed);
            }
            for upload in &expired {
                self.discard_upload(upload).await?;
                removed += 1;
            }
        }
    }

    /// Deletes every upload of a deleted user.
    pub(super) async fn purge_uploads(&self, owner: Uuid) -> FilesResult<u64> {
        let uploads = self.uploads_store.owned_uploads(owner).await?;
        for upload in &uploads {
            self.discard_upload(upload).await?;
        }
        Ok(uploads.len() as u64)
    }
}

/// The parts' bytes, in order, read one part at a time.
fn parts_stream(blobs: Arc<dyn BlobStore>, upload: &UploadRecord) -> FilesResult<ByteStream> {
    let keys = (0..upload.parts())
        .map(|n| BlobKey::new(upload.part_key(n)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BlobError::from)?;
    Ok(futures::stream::iter(keys)
        .then(move |key| {
            let blobs = blobs.clone();
            async move {
                blobs
                    .get(&key, None)
                    .await
                    .map(|read| read.body)
                    .map_err(io::Error::other)
            }
        })
        .try_flatten()
        .boxed())
}
