//! [`ObjectBlobs`]: the [`BlobStore`] adapter over `object_store`.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use confab_core::config::{StorageBackend, StorageConfig};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};

use crate::{BlobError, BlobKey, BlobMeta, BlobRead, BlobStore, ByteStream};

/// The size of one part of a streamed write to S3 (whose smallest part is 5 MiB), and the
/// largest part of any backend. A body shorter than one part is sent in one request.
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// The size of one part of a streamed write to a local directory, where a part is only a
/// write at an offset of the staged file: small parts keep a write's memory small, and its
/// buffers are freed (and reused) soon after they arrive instead of piling up to 8 MiB.
const LOCAL_PART_BYTES: usize = 512 * 1024;
/// Parts of one write in flight at once: a write holds at most this many parts in memory,
/// plus the one it is gathering.
const PARTS_IN_FLIGHT: usize = 2;

/// Blobs in an `object_store` backend, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    /// The S3 client again, as the signer of presigned URLs.
    signer: Option<SignerRef>,
    /// Prepended to every key (`a/b`), or empty.
    prefix: String,
    location: String,
    /// The directory of the local backend, whose staged files `sweep_incomplete` removes.
    local_dir: Option<std::path::PathBuf>,
    /// The size of one part of a streamed write.
    part_bytes: usize,
}

#[cfg(feature = "s3")]
type SignerRef = Arc<dyn object_store::signer::Signer>;
/// Without S3 nothing signs.
#[cfg(not(feature = "s3"))]
type SignerRef = std::convert::Infallible;

/// An S3-compatible bucket to connect to.
#[derive(Debug, Clone)]
pub struct S3Target<'a> {
    pub bucket: &'a str,
    /// Keys go under it (`a/b`, no slashes at the ends), or empty.
    pub prefix: &'a str,
}

impl ObjectBlobs {
    /// Blobs in this process's memory (tests).
    pub fn memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            signer: None,
            prefix: String::new(),
            location: "memory://".to_owned(),
            local_dir: None,
            part_bytes: PART_BYTES,
        }
    }

    /// Blobs as files under `dir` (created if missing). Writes are staged beside their target
    /// and renamed into place when complete.
    pub fn local(dir: &FsPath) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(unavailable)?
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            signer: None,
            prefix: String::new(),
            location: format!("file://{}", dir.display()),
            local_dir: Some(dir.to_path_buf()),
            part_bytes: LOCAL_PART_BYTES,
        })
    }

    /// Blobs in an S3-compatible bucket, connected with `[storage.s3]`'s endpoint, region,
    /// credentials and timeout (its bucket and prefix are replaced by `target`'s).
    #[cfg(feature = "s3")]
    pub fn s3(
        config: &confab_core::config::S3Config,
        target: S3Target<'_>,
    ) -> Result<Self, BlobError> {
        use object_store::aws::AmazonS3Builder;
        use object_store::{BackoffConfig, ClientOptions, RetryConfig};

        confab_core::config::check_bucket(target.bucket)
            .map_err(|e| BlobError::Unavailable(format!("bucket `{}`: {e}", target.bucket)))?;
        confab_core::config::check_prefix(target.prefix)
            .map_err(|e| BlobError::Unavailable(format!("prefix `{}`: {e}", target.prefix)))?;
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(target.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: timeout,
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
        }
        let store = Arc::new(builder.build().map_err(unavailable)?);
        let location = if target.prefix.is_empty() {
            format!("s3://{}", target.bucket)
        } else {
            format!("s3://{}/{}", target.bucket, target.prefix)
        };
        Ok(Self {
            store: store.clone(),
            signer: Some(store),
            prefix: target.prefix.to_owned(),
            location,
            local_dir: None,
            part_bytes: PART_BYTES,
        })
    }

    /// The store `[storage]` names: a local directory (under `data_dir` unless set) or S3.
    pub fn from_config(config: &StorageConfig, data_dir: &FsPath) -> Result<Self, BlobError> {
        match config.backend {
            StorageBackend::Local => Self::local(&config.local_dir(data_dir)),
            #[cfg(feature = "s3")]
            StorageBackend::S3 => {
                let bucket =
                    config.s3.bucket.as_deref().ok_or_else(|| {
                        BlobError::Unavailable("storage.s3.bucket is not set".into())
                    })?;
                Self::s3(
                    &config.s3,
                    S3Target {
                        bucket,
                        prefix: &config.s3.prefix,
                    },
                )
            }
            #[cfg(not(feature = "s3"))]
            StorageBackend::S3 => Err(BlobError::Unavailable(
                "this build has no S3 support (confab-blob's `s3` feature)".into(),
            )),
        }
    }

    fn path(&self, key: &BlobKey) -> Path {
        let full = if self.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.prefix, key.as_str())
        };
        // A checked key (and prefix) is always a valid path: safe segments, none empty.
        Path::parse(full).unwrap_or_default()
    }

    /// Stores a payload (one or more chunks, not copied together) in one request.
    async fn put_payload(&self, key: &BlobKey, payload: PutPayload) -> Result<BlobMeta, BlobError> {
        let size = payload.content_length() as u64;
        let result = self
            .store
            .put(&self.path(key), payload)
            .await
            .map_err(|e| Self::error(key, e))?;
        Ok(BlobMeta {
            key: key.to_string(),
            size,
            modified_ms: now_ms(),
            etag: result.e_tag,
        })
    }

    fn meta(&self, object: &ObjectMeta) -> BlobMeta {
        let location = object.location.as_ref();
        let key = if self.prefix.is_empty() {
            location
        } else {
            location
                .strip_prefix(&self.prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(location)
        };
        BlobMeta {
            key: key.to_owned(),
            size: object.size,
            modified_ms: object.last_modified.timestamp_millis(),
            etag: object.e_tag.clone(),
        }
    }

    fn error(key: &BlobKey, error: object_store::Error) -> BlobError {
        match error {
            object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_string()),
            other => unavailable(other),
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(error.to_string())
}

fn now_ms() -> i64 {
    confab_core::now_ms()
}

/// A multipart write in progress: dropped before it finished (the caller's future was
/// cancelled), it is aborted, so no part outlives it.
struct Upload(Option<WriteMultipart>);

impl Upload {
    fn put(&mut self, bytes: Bytes) {
        if let Some(writer) = self.0.as_mut() {
            writer.put(bytes);
        }
    }

    async fn wait_for_capacity(&mut self) -> object_store::Result<()> {
        match self.0.as_mut() {
            Some(writer) => writer.wait_for_capacity(PARTS_IN_FLIGHT).await,
            None => Ok(()),
        }
    }

    async fn abort(mut self) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
    }

    async fn finish(mut self) -> object_store::Result<object_store::PutResult> {
        match self.0.take() {
            Some(writer) => writer.finish().await,
            None => Err(object_store::Error::Generic {
                store: "blob",
                source: "the upload was already finished".into(),
            }),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "could not abort an abandoned multipart upload");
                }
            });
        }
    }
}

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        self.put_payload(key, PutPayload::from_bytes(bytes)).await
    }

    async fn put_stream(&self, key: &BlobKey, mut body: ByteStream) -> Result<BlobMeta, BlobError> {
        // The first part decides: a body that ends within it is one PUT. Its chunks are kept
        // as they came (no copy into one buffer), as every later part's are.
        let mut first = Vec::new();
        let mut size = 0;
        while size < self.part_bytes {
            match body.next().await {
                None => return self.put_payload(key, first.into_iter().collect()).await,
                Some(Err(e)) => return Err(BlobError::Body(e)),
                Some(Ok(chunk)) => {
                    size += chunk.len();
                    first.push(chunk);
                }
            }
        }
        let path = self.path(key);
        let multipart = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| Self::error(key, e))?;
        let mut upload = Upload(Some(WriteMultipart::new_with_chunk_size(
            multipart,
            self.part_bytes,
        )));
        let mut size = size as u64;
        for chunk in first {
            upload.put(chunk);
        }
        loop {
            if let Err(e) = upload.wait_for_capacity().await {
                upload.abort().await;
                return Err(Self::error(key, e));
            }
            match body.next().await {
                None => break,
                Some(Err(e)) => {
                    upload.abort().await;
                    return Err(BlobError::Body(e));
                }
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    upload.put(chunk);
                }
            }
        }
        let result = upload.finish().await.map_err(|e| Self::error(key, e))?;
        Ok(BlobMeta {
            key: key.to_string(),
            size,
            modified_ms: now_ms(),
            etag: result.e_tag,
        })
    }

    async fn get(&self, key: &BlobKey, range: Option<Range<u64>>) -> Result<BlobRead, BlobError> {
        if let Some(range) = &range
            && range.start >= range.end
        {
            let size = self.head(key).await?.size;
            return Err(BlobError::InvalidRange {
                start: range.start,
                end: range.end,
                size,
            });
        }
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&self.path(key), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::NotFound(key.to_string()));
            }
            Err(e) => {
                // A range past the end is refused by the store, each in its own words: judge
                // it by the size.
                if let Some(range) = range {
                    let size = self.head(key).await?.size;
                    if range.start >= size {
                        return Err(BlobError::InvalidRange {
                            start: range.start,
                            end: range.end,
                            size,
                        });
                    }
                }
                return Err(Self::error(key, e));
            }
        };
        let meta = self.meta(&result.meta);
        let served = result.range.clone();
        let body = result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        Ok(BlobRead {
            meta,
            range: served,
            body,
        })
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let object = self
            .store
            .head(&self.path(key))
            .await
            .map_err(|e| Self::error(key, e))?;
        Ok(self.meta(&object))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::error(key, e)),
        }
    }

    async fn list(&self, prefix: Option<&BlobKey>) -> Result<Vec<BlobMeta>, BlobError> {
        let root = match (prefix, self.prefix.is_empty()) {
            (Some(key), _) => Some(self.path(key)),
            (None, false) => Path::parse(&self.prefix).ok(),
            (None, true) => None,
        };
        let mut listed = Vec::new();
        let mut stream = self.store.list(root.as_ref());
        while let Some(item) = stream.next().await {
            match item {
                Ok(object) => listed.push(self.meta(&object)),
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(unavailable(e)),
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn presign_get(
        &self,
        key: &BlobKey,
        expires_in: Duration,
    ) -> Result<Option<url::Url>, BlobError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        sign(signer, &self.path(key), expires_in).await.map(Some)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn sweep_incomplete(&self, older_than: Duration) -> Result<u64, BlobError> {
        let Some(dir) = self.local_dir.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || sweep_staged(&dir, older_than))
            .await
            .map_err(|e| BlobError::Unavailable(format!("the sweep stopped: {e}")))?
    }
}

/// Removes the files a local write staged (`<target>#<n>`, renamed into place when the write
/// completes) that are older than `older_than`: what a process killed mid-write left.
fn sweep_staged(dir: &FsPath, older_than: Duration) -> Result<u64, BlobError> {
    let cutoff = std::time::SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(std::time::UNIX_EPOCH);
    let mut removed = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(current) = dirs.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(BlobError::Unavailable(format!(
                    "cannot read {}: {e}",
                    current.display()
                )));
            }
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let staged = entry.file_name().to_string_lossy().contains('#');
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if kind.is_file() && staged && old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(feature = "s3")]
async fn sign(
    signer: &SignerRef,
    path: &Path,
    expires_in: Duration,
) -> Result<url::Url, BlobError> {
    signer
        .signed_url(object_store::signer::Method::GET, path, expires_in)
        .await
        .map_err(unavailable)
}

#[cfg(not(feature = "s3"))]
async fn sign(signer: &SignerRef, _: &Path, _: Duration) -> Result<url::Url, BlobError> {
    match *signer {}
}
