//! [`VersionStore`] on SQLite and PostgreSQL. Adding a version numbers it by moving the
//! project's `latest_version` in the same statement that locks the project's row, so two
//! concurrent edits get two numbers, never one twice.

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlSeoStore, corrupt, json, score, to_json, uuid};
use crate::domain::{Version, VersionSource};
use crate::ports::{NewVersion, ScorePoint, StoreResult, VersionStore};

const COLUMNS: &str = "project_id, number, source, author_id, package, score, model, created_at";

fn number(row: &AnyRow) -> StoreResult<u32> {
    let n: i64 = row.try_get("number")?;
    u32::try_from(n).map_err(|_| corrupt("number"))
}

fn source(row: &AnyRow) -> StoreResult<VersionSource> {
    let text: String = row.try_get("source")?;
    VersionSource::parse(&text).ok_or_else(|| corrupt("source"))
}

fn version(row: &AnyRow) -> StoreResult<Version> {
    Ok(Version {
        project_id: uuid(row, "project_id")?,
        number: number(row)?,
        source: source(row)?,
        author: uuid(row, "author_id")?,
        package: json(row, "package")?,
        score: score(row.try_get("score")?, "score")?,
        model: row.try_get("model")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl VersionStore for SqlSeoStore {
    async fn add_version(
        &self,
        owner: Uuid,
        project_id: Uuid,
        new: NewVersion,
        now: i64,
    ) -> StoreResult<Version> {
        if let Some(job) = new.job_id
            && let Some(done) = self.version_of_job(owner, job).await?
        {
            return Ok(done);
        }
        let mut tx = self.db.writer().begin().await?;
        let row = sqlx::query(
            "UPDATE seo_projects SET latest_version = COALESCE(latest_version, 0) + 1, \
             latest_score = $1, updated_at = $2 WHERE id = $3 AND owner_id = $4 \
             RETURNING latest_version",
        )
        .bind(i64::from(new.score))
        .bind(now)
        .bind(project_id.to_string())
        .bind(owner.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let number: i64 = row.try_get("latest_version")?;
        let inserted = sqlx::query(
            "INSERT INTO seo_versions (project_id, number, owner_id, source, author_id, package, \
             score, model, job_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(project_id.to_string())
        .bind(number)
        .bind(owner.to_string())
        .bind(new.source.as_str())
        .bind(new.author.to_string())
        .bind(to_json(&new.package)?)
        .bind(i64::from(new.score))
        .bind(&new.model)
        .bind(new.job_id.map(|j| j.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // The same job wrote its version meanwhile (a retaken lease): keep that one.
            Err(e) => match (StoreError::from(e), new.job_id) {
                (StoreError::Conflict(_), Some(job)) => {
                    drop(tx);
                    return self
                        .version_of_job(owner, job)
                        .await?
                        .ok_or(StoreError::NotFound);
                }
                (e, _) => return Err(e),
            },
        }
        tx.commit().await?;
        Ok(Version {
            project_id,
            number: u32::try_from(number).map_err(|_| corrupt("number"))?,
            source: new.source,
            author: new.author,
            package: new.package,
            score: new.score,
            model: new.model,
            created_at: now,
        })
    }

    async fn versions(&self, owner: Uuid, project_id: Uuid) -> StoreResult<Vec<Version>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM seo_versions WHERE project_id = $1 AND owner_id = $2 \
             ORDER BY number DESC"
        )))
        .bind(project_id.to_string())
        .bind(owner.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(version).collect()
    }

    async fn version(&self, owner: Uuid, project_id: Uuid, number: u32) -> StoreResult<Version> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM seo_versions WHERE project_id = $1 AND owner_id = $2 \
             AND number = $3"
        )))
        .bind(project_id.to_string())
        .bind(owner.to_string())
        .bind(i64::from(number))
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        version(&row)
    }

    async fn version_of_job(&self, owner: Uuid, job: Uuid) -> StoreResult<Option<Version>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM seo_versions WHERE job_id = $1 AND owner_id = $2"
        )))
        .bind(job.to_string())
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(version).transpose()
    }

    async fn score_history(
        &self,
        owner: Uuid,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<ScorePoint>> {
        let rows = sqlx::query(
            "SELECT project_id, number, source, score, created_at FROM seo_versions \
             WHERE owner_id = $1 AND created_at >= $2 ORDER BY created_at, project_id, number \
             LIMIT $3",
        )
        .bind(owner.to_string())
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScorePoint {
                    project_id: uuid(row, "project_id")?,
                    version: number(row)?,
                    score: score(row.try_get("score")?, "score")?,
                    source: source(row)?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
