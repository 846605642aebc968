//! Package versions: list, read, hand edits (validated and scored before they are stored;
//! never stored invalid), restores, diffs and exports.

use confab_core::auth::Principal;
use uuid::Uuid;

use super::{SeoError, SeoResult, SeoService};
use crate::domain::diff::{self, PackageDiff};
use crate::domain::rules::Severity;
use crate::domain::score::{self, ScoreContext};
use crate::domain::{Package, Project, Version, VersionSource, export};
use crate::ports::NewVersion;

/// How a package is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The version as JSON.
    Json,
    /// Plain text ready to paste into YouTube Studio.
    Text,
}

impl SeoService {
    /// What the scorer knows of a project beside the package itself.
    pub(super) fn score_context(project: &Project, package: &Package) -> ScoreContext {
        ScoreContext {
            primary_keyword: project.primary_keyword.clone(),
            secondary_keywords: project.secondary_keywords.clone(),
            duration_secs: project.duration_secs,
            thumbnail_texts: package.thumbnail_texts.clone(),
        }
    }

    /// Validates `package` for `project` and scores it (one pass): its score, or every
    /// violation when one is an error. Warnings do not stop a package. The title candidates
    /// get their own scores.
    pub(super) fn check_package(&self, project: &Project, package: &mut Package) -> SeoResult<u8> {
        let ctx = Self::score_context(project, package);
        let (violations, score) = score::evaluate(package, &ctx, &self.settings.weights);
        if violations.iter().any(|v| v.severity == Severity::Error) {
            return Err(SeoError::InvalidPackage(violations));
        }
        for candidate in &mut package.titles {
            candidate.score = score::score_title(&candidate.text, &ctx);
        }
        Ok(score.total)
    }

    pub async fn versions(
        &self,
        principal: &Principal,
        project_id: Uuid,
    ) -> SeoResult<Vec<Version>> {
        self.store.project(principal.user_id, project_id).await?;
        Ok(self.store.versions(principal.user_id, project_id).await?)
    }

    pub async fn version(
        &self,
        principal: &Principal,
        project_id: Uuid,
        number: u32,
    ) -> SeoResult<Version> {
        self.store.project(principal.user_id, project_id).await?;
        self.store
            .version(principal.user_id, project_id, number)
            .await
            .map_err(|_| SeoError::NotFound("version"))
    }

    /// Stores a hand-edited package as a new version: 422 with every violation when it
    /// breaks a rule (nothing is stored then).
    pub async fn save_edit(
        &self,
        principal: &Principal,
        project_id: Uuid,
        mut package: Package,
    ) -> SeoResult<Version> {
        let project = self.store.project(principal.user_id, project_id).await?;
        let score = self.check_package(&project, &mut package)?;
        let version = NewVersion {
            source: VersionSource::Edited,
            author: principal.user_id,
            package,
            score,
            model: None,
            job_id: None,
        };
        Ok(self
            .store
            .add_version(
                principal.user_id,
                project_id,
                version,
                confab_core::now_ms(),
            )
            .await?)
    }

    /// Makes an earlier version the newest again, as a copy.
    pub async fn restore(
        &self,
        principal: &Principal,
        project_id: Uuid,
        number: u32,
    ) -> SeoResult<Version> {
        let old = self.version(principal, project_id, number).await?;
        let version = NewVersion {
            source: VersionSource::Restored,
            author: principal.user_id,
            package: old.package,
            score: old.score,
            model: old.model,
            job_id: None,
        };
        Ok(self
            .store
            .add_version(
                principal.user_id,
                project_id,
                version,
                confab_core::now_ms(),
            )
            .await?)
    }

    /// What changed from version `from` to version `to`.
    pub async fn diff(
        &self,
        principal: &Principal,
        project_id: Uuid,
        from: u32,
        to: u32,
    ) -> SeoResult<PackageDiff> {
        let a = self.version(principal, project_id, from).await?;
        let b = self.version(principal, project_id, to).await?;
        Ok(diff::diff(&a.package, &b.package))
    }

    /// A version (the newest when `number` is `None`) in an export format: the body and its
    /// content type.
    pub async fn export(
        &self,
        principal: &Principal,
        project_id: Uuid,
        number: Option<u32>,
        format: ExportFormat,
    ) -> SeoResult<(String, &'static str)> {
        let project = self.store.project(principal.user_id, project_id).await?;
        let number = number
            .or(project.latest_version)
            .ok_or(SeoError::NotFound("version"))?;
        let version = self.version(principal, project_id, number).await?;
        Ok(match format {
            ExportFormat::Json => (
                serde_json::to_string_pretty(&version).unwrap_or_default(),
                "application/json",
            ),
            ExportFormat::Text => (
                export::plain_text(&version.package),
                "text/plain; charset=utf-8",
            ),
        })
    }

    /// The scores of the owner's versions of the last `days` days, oldest first (at most
    /// 5,000 points).
    pub async fn score_history(
        &self,
        principal: &Principal,
        days: u32,
    ) -> SeoResult<Vec<crate::ports::ScorePoint>> {
        let since = confab_core::now_ms() - i64::from(days) * 86_400_000;
        Ok(self
            .store
            .score_history(principal.user_id, since, 5_000)
            .await?)
    }

    /// The newest package of each of `ids` (the owner's; others are skipped as missing) as
    /// CSV, one row a project.
    pub async fn export_csv(&self, principal: &Principal, ids: &[Uuid]) -> SeoResult<String> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(project) = self.store.project(principal.user_id, *id).await else {
                continue;
            };
            let version = match project.latest_version {
                Some(n) => self.store.version(principal.user_id, *id, n).await.ok(),
                None => None,
            };
            rows.push((project, version));
        }
        let rows: Vec<export::ExportRow<'_>> = rows
            .iter()
            .map(|(project, version)| export::ExportRow {
                project,
                version: version.as_ref().map(|v| v.number),
                package: version.as_ref().map(|v| &v.package),
                score: version.as_ref().map(|v| v.score),
            })
            .collect();
        Ok(export::csv_rows(&rows))
    }
}
