//! Groups and their members in the SQL auth store.

use confab_store::{Db, StoreError};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::GroupView;
use crate::ports::StoreResult;

use super::uuid;

pub(super) async fn create_group(db: &Db, id: Uuid, name: &str, now: i64) -> StoreResult<()> {
    sqlx::query("INSERT INTO groups (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(name)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(super) async fn list_groups(db: &Db) -> StoreResult<Vec<GroupView>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, g.created_at, m.user_id FROM groups g \
         LEFT JOIN group_members m ON m.group_id = g.id ORDER BY g.name, m.added_at",
    )
    .fetch_all(db.pool())
    .await?;
    let mut groups: Vec<GroupView> = Vec::new();
    for row in &rows {
        let id = uuid(row, "id")?;
        if groups.last().is_none_or(|g| g.id != id) {
            groups.push(GroupView {
                id,
                name: row.try_get("name")?,
                members: Vec::new(),
                created_at: row.try_get("created_at")?,
            });
        }
        if let Some(member) = row.try_get::<Option<String>, _>("user_id")?
            && let (Some(group), Ok(member)) = (groups.last_mut(), Uuid::parse_str(&member))
        {
            group.members.push(member);
        }
    }
    Ok(groups)
}

pub(super) async fn delete_group(db: &Db, id: Uuid) -> StoreResult<bool> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM group_members WHERE group_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn add_member(
    db: &Db,
    group_id: Uuid,
    user_id: Uuid,
    now: i64,
) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO group_members (group_id, user_id, added_at) \
         SELECT g.id, u.id, $3 FROM groups g, users u WHERE g.id = $1 AND u.id = $2 \
         ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(group_id.to_string())
    .bind(user_id.to_string())
    .bind(now)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        // Either already a member (fine) or the group or user is missing.
        let exists =
            sqlx::query("SELECT 1 AS one FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group_id.to_string())
                .bind(user_id.to_string())
                .fetch_optional(db.pool())
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

pub(super) async fn remove_member(db: &Db, group_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id.to_string())
        .bind(user_id.to_string())
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn groups_of(db: &Db, user_id: Uuid) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
    )
    .bind(user_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| row.try_get("name"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
