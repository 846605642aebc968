//! The files service from `[files]` and `[storage]`: its store, the blob store (a directory
//! under the data directory, or S3-compatible storage), clamd when an address is configured,
//! and its limits.

use std::sync::Arc;

use anyhow::Context;
use confab_core::audit::AuditLog;
use confab_core::config::Config;
use confab_files::domain::FileKind;
use confab_files::domain::kinds::TypeRules;
use confab_files::images::ImageLimits;
use confab_files::scan::{Clamd, ClamdAddress, Scanner};
use confab_files::service::{FilesDeps, FilesService, FilesSettings};
use confab_store::Db;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
