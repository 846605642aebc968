//! The SEO studio's one storage adapter, [`SqlSeoStore`], on SQLite and PostgreSQL
//! (`sqlx::Any`, portable SQL): projects with their transcripts (`projects`) and package
//! versions (`versions`). Every statement names the owner.

pub(crate) use confab_store::rows::{corrupt, json, opt_uuid, uuid};
use confab_store::{Db, ServiceMigrations, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ports::StoreResult;

mod channels;
mod projects;
mod versions;

/// The SEO studio's migrations.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "seo",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

#[derive(Debug, Clone)]
pub struct SqlSeoStore {
    db: Db,
}

impl SqlSeoStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("cannot encode: {e}")))
}

fn opt_u32(row: &AnyRow, column: &str) -> StoreResult<Option<u32>> {
    let n: Option<i64> = row.try_get(column)?;
    n.map(|n| u32::try_from(n).map_err(|_| corrupt(column)))
        .transpose()
}

fn score(n: i64, column: &str) -> StoreResult<u8> {
    u8::try_from(n).map_err(|_| corrupt(column))
}
