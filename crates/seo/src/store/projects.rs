//! [`ProjectStore`] on SQLite and PostgreSQL.

use async_trait::async_trait;
use confab_store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{SqlSeoStore, corrupt, json, opt_u32, score, to_json, uuid};
use crate::domain::{Project, Tone, Transcript, TranscriptFormat};
use crate::ports::{ProjectFilter, ProjectStore, StoreResult};

const COLUMNS: &str = "p.id, p.owner_id, p.topic, p.primary_keyword, p.secondary_keywords, \
     p.language, p.tone, p.audience, p.channel_name, p.links, p.call_to_action, \
     p.duration_secs, p.category_id, p.archived, p.latest_version, p.latest_score, \
     p.generation_job, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM seo_transcripts t WHERE t.project_id = p.id) AS transcripts";

/// The most words a search may have; more are ignored.
const MAX_QUERY_WORDS: usize = 8;

fn project(row: &AnyRow) -> StoreResult<Project> {
    let tone: String = row.try_get("tone")?;
    let latest_score: Option<i64> = row.try_get("latest_score")?;
    Ok(Project {
        id: uuid(row, "id")?,
        owner: uuid(row, "owner_id")?,
        topic: row.try_get("topic")?,
        primary_keyword: row.try_get("primary_keyword")?,
        secondary_keywords: json(row, "secondary_keywords")?,
        language: row.try_get("language")?,
        tone: Tone::parse(&tone).ok_or_else(|| corrupt("tone"))?,
        audience: row.try_get("audience")?,
        channel_name: row.try_get("channel_name")?,
        links: json(row, "links")?,
        call_to_action: row.try_get("call_to_action")?,
        duration_secs: opt_u32(row, "duration_secs")?,
        category_id: row.try_get("category_id")?,
        has_transcript: row.try_get::<i64, _>("transcripts")? > 0,
        archived: row.try_get::<i64, _>("archived")? != 0,
        latest_version: opt_u32(row, "latest_version")?,
        latest_score: latest_score.map(|n| score(n, "latest_score")).transpose()?,
        generation_job: super::opt_uuid(row, "generation_job")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What the owner's search looks in: the topic and every keyword, lower-case.
fn search_text(project: &Project) -> String {
    let mut text = project.topic.to_lowercase();
    for keyword in std::iter::once(&project.primary_keyword).chain(&project.secondary_keywords) {
        text.push('\n');
        text.push_str(&keyword.to_lowercase());
    }
    text
}

/// `word` as a LIKE pattern matching it anywhere, its wildcards escaped.
fn contains_pattern(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() + 2);
    pattern.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

async fn write_transcript(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project: &Project,
    raw: &str,
    transcript: &Transcript,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM seo_transcripts WHERE project_id = $1 AND owner_id = $2")
        .bind(project.id.to_string())
        .bind(project.owner.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO seo_transcripts (project_id, owner_id, format, raw, segments, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(project.id.to_string())
    .bind(project.owner.to_string())
    .bind(transcript.format.as_str())
    .bind(raw)
    .bind(to_json(&transcript.segments)?)
    .bind(project.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl ProjectStore for SqlSeoStore {
    async fn create_project(
        &self,
        p: &Project,
        transcript: Option<(&str, &Transcript)>,
    ) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(
            "INSERT INTO seo_projects (id, owner_id, topic, primary_keyword, secondary_keywords, \
             language, tone, audience, channel_name, links, call_to_action, duration_secs, \
             category_id, archived, search_text, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(p.id.to_string())
        .bind(p.owner.to_string())
        .bind(&p.topic)
        .bind(&p.primary_keyword)
        .bind(to_json(&p.secondary_keywords)?)
        .bind(&p.language)
        .bind(p.tone.as_str())
        .bind(&p.audience)
        .bind(&p.channel_name)
        .bind(to_json(&p.links)?)
        .bind(&p.call_to_action)
        .bind(p.duration_secs.map(i64::from))
        .bind(&p.category_id)
        .bind(i64::from(p.archived))
        .bind(search_text(p))
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some((raw, transcript)) = transcript {
            write_transcript(&mut tx, p, raw, transcript).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn project(&self, owner: Uuid, id: Uuid) -> StoreResult<Project> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM seo_projects p WHERE p.id = $1 AND p.owner_id = $2"
        )))
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        project(&row)
    }

    async fn projects(&self, owner: Uuid, filter: &ProjectFilter) -> StoreResult<Vec<Project>> {
        let words: Vec<String> = filter
            .query
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .take(MAX_QUERY_WORDS)
            .map(|w| contains_pattern(&w.to_lowercase()))
            .collect();
        let mut sql = format!("SELECT {COLUMNS} FROM seo_projects p WHERE p.owner_id = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.archived.is_some() {
            sql.push_str(&format!(" AND p.archived = ${}", next()));
        }
        if filter.after.is_some() {
            let (a, b, c) = (next(), next(), next());
            sql.push_str(&format!(
                " AND (p.updated_at < ${a} OR (p.updated_at = ${b} AND p.id < ${c}))"
            ));
        }
        for _ in &words {
            sql.push_str(&format!(" AND p.search_text LIKE ${} ESCAPE '\\'", next()));
        }
        sql.push_str(&format!(
            " ORDER BY p.updated_at DESC, p.id DESC LIMIT ${}",
            next()
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner.to_string());
        if let Some(archived) = filter.archived {
            query = query.bind(i64::from(archived));
        }
        if let Some((at, id)) = filter.after {
            query = query.bind(at).bind(at).bind(id.to_string());
        }
        for word in &words {
            query = query.bind(word.clone());
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(project).collect()
    }

    async fn update_project(
        &self,
        p: &Project,
        transcript: Option<Option<(&str, &Transcript)>>,
    ) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        let result = sqlx::query(
            "UPDATE seo_projects SET topic = $1, primary_keyword = $2, secondary_keywords = $3, \
             language = $4, tone = $5, audience = $6, channel_name = $7, links = $8, \
             call_to_action = $9, duration_secs = $10, category_id = $11, archived = $12, \
             search_text = $13, updated_at = $14 WHERE id = $15 AND owner_id = $16",
        )
        .bind(&p.topic)
        .bind(&p.primary_keyword)
        .bind(to_json(&p.secondary_keywords)?)
        .bind(&p.language)
        .bind(p.tone.as_str())
        .bind(&p.audience)
        .bind(&p.channel_name)
        .bind(to_json(&p.links)?)
        .bind(&p.call_to_action)
        .bind(p.duration_secs.map(i64::from))
        .bind(&p.category_id)
        .bind(i64::from(p.archived))
        .bind(search_text(p))
        .bind(p.updated_at)
        .bind(p.id.to_string())
        .bind(p.owner.to_string())
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        match transcript {
            None => {}
            Some(None) => {
                sqlx::query("DELETE FROM seo_transcripts WHERE project_id = $1 AND owner_id = $2")
                    .bind(p.id.to_string())
                    .bind(p.owner.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            Some(Some((raw, transcript))) => write_transcript(&mut tx, p, raw, transcript).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_project(&self, owner: Uuid, id: Uuid) -> StoreResult<()> {
        let mut tx = self.db.writer().begin().await?;
        for table in ["seo_versions", "seo_transcripts"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE project_id = $1 AND owner_id = $2"
            )))
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let result = sqlx::query("DELETE FROM seo_projects WHERE id = $1 AND owner_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn transcript(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<Transcript>> {
        let row = sqlx::query(
            "SELECT format, segments FROM seo_transcripts WHERE project_id = $1 AND owner_id = $2",
        )
        .bind(id.to_string())
        .bind(owner.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            let format: String = row.try_get("format")?;
            Ok(Transcript {
                format: TranscriptFormat::parse(&format).ok_or_else(|| corrupt("format"))?,
                segments: json(&row, "segments")?,
            })
        })
        .transpose()
    }

    async fn transcript_text(&self, owner: Uuid, id: Uuid) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT raw FROM seo_transcripts WHERE project_id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|row| row.try_get("raw")).transpose()?)
    }

    async fn set_generation_job(&self, owner: Uuid, id: Uuid, job: Uuid) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE seo_projects SET generation_job = $1 WHERE id = $2 AND owner_id = $3",
        )
        .bind(job.to_string())
        .bind(id.to_string())
        .bind(owner.to_string())
        .execute(self.db.writer())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn purge_owner(&self, owner: Uuid) -> StoreResult<u64> {
        let mut tx = self.db.writer().begin().await?;
        for table in [
            "seo_versions",
            "seo_transcripts",
            "seo_channels",
            "seo_oauth_states",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE owner_id = $1"
            )))
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let result = sqlx::query("DELETE FROM seo_projects WHERE owner_id = $1")
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_searches_are_literal() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
