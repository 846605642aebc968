//! The admin views: files by state across users, and storage per user with the scanner's
//! status.

use axum::extract::{Query, State};
use confab_core::ApiError;
use confab_core::auth::AdminUser;
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::FilesState;
use super::views::{
    AdminFileList, AdminFileView, ReconciliationView, ScannerView, StateCounts, StorageTotals,
    StorageView, UserStorage,
};
use crate::domain::FileState;

pub(super) fn routes() -> OpenApiRouter<FilesState> {
    OpenApiRouter::new()
        .routes(routes!(admin_files))
        .routes(routes!(admin_storage))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminQuery {
    /// Which files: `infected` (quarantined; the default), `pending`, `clean` or `unscanned`.
    pub state: Option<FileState>,
    pub before: Option<Uuid>,
    /// 1 to 100, default 50.
    pub limit: Option<u32>,
}

/// Files across users in one state, newest first: quarantined ones by default.
#[utoipa::path(get, path = "/api/v1/admin/files", tag = "files", params(AdminQuery),
    responses(Authenticated, AdminOnly, BadQuery, (status = 200, body = AdminFileList)),
    security(("bearer" = [])))]
async fn admin_files(
    State(state): State<FilesState>,
    _admin: AdminUser,
    Query(query): Query<AdminQuery>,
) -> Result<axum::Json<AdminFileList>, ApiError> {
    let (files, next) = state
        .service
        .admin_files(
            query.state.unwrap_or(FileState::Infected),
            query.before,
            query.limit.unwrap_or(50),
        )
        .await?;
    Ok(axum::Json(AdminFileList {
        files: files
            .into_iter()
            .map(|f| AdminFileView {
                owner: f.owner,
                file: f.into(),
            })
            .collect(),
        next,
    }))
}

/// Storage per user (largest first, up to 200), totals by state, and the virus scanner's
/// status (a warning belongs on the console when it is not configured or not answering).
#[utoipa::path(get, path = "/api/v1/admin/files/storage", tag = "files",
    responses(Authenticated, AdminOnly, (status = 200, body = StorageView)),
    security(("bearer" = [])))]
async fn admin_storage(
    State(state): State<FilesState>,
    _admin: AdminUser,
) -> Result<axum::Json<StorageView>, ApiError> {
    let report = state.service.storage_report(200).await?;
    let mut by_state = StateCounts::default();
    for (s, n) in report.by_state {
        match s {
            FileState::Pending => by_state.pending = n,
            FileState::Clean => by_state.clean = n,
            FileState::Infected => by_state.infected = n,
            FileState::Unscanned => by_state.unscanned = n,
        }
    }
    Ok(axum::Json(StorageView {
        users: report
            .users
            .into_iter()
            .map(|(owner, usage)| UserStorage {
                owner,
                bytes: usage.bytes,
                files: usage.files,
            })
            .collect(),
        totals: StorageTotals {
            bytes: report.total_bytes,
            by_state,
        },
        scanner: ScannerView {
            configured: report.scanner.configured,
            address: report.scanner.address,
            reachable: report.scanner.reachable,
        },
        reconciliation: report.reconciliation.map(|r| ReconciliationView {
            at: super::views::rfc3339(r.at_ms),
            blobs_checked: r.blobs_checked,
            orphans_removed: r.orphans_removed,
            missing_count: r.missing.len() as u64,
            missing: r.missing.into_iter().take(100).collect(),
        }),
    }))
}
