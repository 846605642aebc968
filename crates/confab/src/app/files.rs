//! The files service from `[files]` and `[storage]`: its store, the blob store (a directory
//! under the data directory, or S3-compatible storage), clamd when an address is configured,
//! and its limits; and chat's `FileAccess` port over it — [`LocalFileAccess`] in the same
//! process, `RemoteFiles` (`crate::remote_files`) over its internal routes in split mode.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use axum::body::Bytes;
use confab_chat::domain::Attachment;
use confab_chat::ports::{FileAccess, FileAccessError, FileInput, ImageSize, NoFiles};
use confab_core::audit::AuditLog;
use confab_core::auth::ServiceTokens;
use confab_core::config::Config;
use confab_core::service_tls::ServiceTls;
use confab_files::domain::kinds::TypeRules;
use confab_files::domain::{FileKind, FileRecord, Variant};
use confab_files::images::ImageLimits;
use confab_files::scan::{Clamd, ClamdAddress, Scanner};
use confab_files::service::{
    AttachProblem, FilesDeps, FilesError, FilesService, FilesSettings, ModelInput,
};
use confab_store::Db;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Builds the files service.
pub(super) fn files_service(
    config: &Config,
    db: &Db,
    jobs: Arc<dyn confab_bus::JobQueue>,
    audit: Arc<dyn AuditLog>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<FilesService>> {
    let files = &config.files;
    let objects = confab_blob::ObjectBlobs::from_config(&config.storage, &config.data_dir)
        .context("cannot open the blob storage of files ([storage])")?;
    let blobs: Arc<dyn confab_blob::BlobStore> = match &files.encryption_key {
        Some(key) => Arc::new(
            confab_blob::EncryptedBlobs::new(Arc::new(objects), key.expose())
                .map_err(|e| anyhow::anyhow!("files.encryption_key: {e}"))?,
        ),
        None => Arc::new(objects),
    };
    let scanner: Option<Arc<dyn Scanner>> = match &files.clamd_address {
        Some(address) => {
            let address = ClamdAddress::parse(address)
                .map_err(|e| anyhow::anyhow!("files.clamd_address: {e}"))?;
            Some(Arc::new(Clamd::new(
                address,
                std::time::Duration::from_secs(files.clamd_timeout_secs),
                files.clamd_max_bytes,
            )))
        }
        None => {
            tracing::warn!(
                "files.clamd_address is not set: uploads are stored unscanned; install clamd \
                 (Debian: clamav-daemon) and set files.clamd_address (CONFAB_FILES__CLAMD_ADDRESS) \
                 to scan them"
            );
            None
        }
    };
    let allowed = files
        .allowed_kinds
        .iter()
        .filter_map(|k| FileKind::parse(k))
        .collect::<Vec<_>>();
    let settings = FilesSettings {
        max_file_bytes: files.max_file_bytes,
        quota: confab_files::domain::Quota {
            max_bytes: files.quota_bytes,
            max_files: files.quota_files,
        },
        types: TypeRules::new(allowed),
        images: ImageLimits {
            max_pixels: files.image_max_pixels,
            max_alloc_bytes: files.image_max_alloc_bytes,
        },
        link_max_hours: files.link_max_hours,
        presigned_links: files.presigned_links,
        link_key: files
            .link_key
            .as_ref()
            .map(|k| k.expose().as_bytes().to_vec()),
        uploads_per_user: files.uploads_per_user as usize,
        page_max: 100,
        part_bytes: files.part_bytes,
        open_uploads_per_user: files.open_uploads_per_user,
        upload_expiry_ms: i64::from(files.upload_expiry_hours) * 3_600_000,
    };
    let store = Arc::new(confab_files::store::SqlFileStore::new(db.clone()));
    let service = FilesService::new(
        FilesDeps {
            store: store.clone(),
            uploads: store,
            blobs,
            scanner,
            jobs,
            audit,
        },
        settings,
    );
    // Expired resumable uploads, and blobs without a file, every ten minutes.
    service.start_maintenance(std::time::Duration::from_secs(600), tasks, shutdown.clone());
    Ok(service)
}

/// Chat's `FileAccess`: the files service in this process, another one's over its internal
/// routes (`chat.files_url`), or none (nothing can be attached).
pub(super) fn file_access(
    config: &Config,
    files: Option<&Arc<FilesService>>,
    tokens: Option<&ServiceTokens>,
) -> anyhow::Result<Arc<dyn FileAccess>> {
    Ok(match (files, &config.chat.files_url) {
        (Some(files), _) => Arc::new(LocalFileAccess(files.clone())),
        (None, Some(url)) => {
            let tokens = tokens.context("chat.files_url needs services.token")?;
            tracing::info!(url = %url, "attached files are read from a remote files service");
            Arc::new(
                crate::remote_files::RemoteFiles::with_tls(
                    url,
                    tokens.clone(),
                    &ServiceTls::from_config(&config.services)?,
                )
                .map_err(|e| anyhow::anyhow!("chat.files_url: {e}"))?,
            )
        }
        (None, None) => Arc::new(NoFiles),
    })
}

/// Chat's [`FileAccess`] over the files service in the same process.
pub struct LocalFileAccess(pub Arc<FilesService>);

/// What chat keeps of an attached file.
fn attachment(file: FileRecord) -> Attachment {
    Attachment {
        file_id: file.id,
        name: file.name,
        content_type: file.content_type,
        kind: file.kind.as_str().to_owned(),
        size: file.size,
    }
}

/// A files service error about the file `id`, as the port says it.
fn access_error(id: Uuid, e: FilesError) -> FileAccessError {
    match e {
        FilesError::NotFound(_) => FileAccessError::NotFound(id),
        FilesError::NotReady | FilesError::Preparing => FileAccessError::NotReady(id),
        FilesError::Quarantined { .. } => FileAccessError::Quarantined(id),
        other => FileAccessError::Unavailable(other.to_string()),
    }
}

fn unavailable(e: FilesError) -> FileAccessError {
    FileAccessError::Unavailable(e.to_string())
}

#[async_trait]
impl FileAccess for LocalFileAccess {
    async fn describe(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Attachment>, FileAccessError> {
        match self.0.attachable(user_id, ids).await.map_err(unavailable)? {
            Ok(files) => Ok(files.into_iter().map(attachment).collect()),
            Err(AttachProblem::NotFound(id)) => Err(FileAccessError::NotFound(id)),
            Err(AttachProblem::NotReady(id)) => Err(FileAccessError::NotReady(id)),
            Err(AttachProblem::Quarantined(id)) => Err(FileAccessError::Quarantined(id)),
        }
    }

    async fn model_input(
        &self,
        user_id: Uuid,
        id: Uuid,
        max_text_bytes: usize,
    ) -> Result<FileInput, FileAccessError> {
        let input = self
            .0
            .model_input(user_id, id, max_text_bytes)
            .await
            .map_err(|e| access_error(id, e))?;
        Ok(match input {
            ModelInput::Image {
                content_type,
                bytes,
            } => FileInput::Image {
                media_type: content_type,
                data: bytes,
            },
            ModelInput::Text { text, truncated } => FileInput::Text { text, truncated },
            ModelInput::Unreadable => FileInput::Unreadable,
        })
    }

    async fn image(
        &self,
        user_id: Uuid,
        id: Uuid,
        size: ImageSize,
    ) -> Result<(String, Bytes), FileAccessError> {
        let variant = match size {
            ImageSize::Thumbnail => Variant::Thumb,
            ImageSize::Preview => Variant::Preview,
        };
        let (_, bytes, content_type) = self
            .0
            .variant(user_id, id, variant)
            .await
            .map_err(|e| access_error(id, e))?;
        Ok((content_type.to_owned(), bytes))
    }

    async fn delete(&self, user_id: Uuid, ids: &[Uuid]) -> Result<(), FileAccessError> {
        self.0
            .delete_many(user_id, ids)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
