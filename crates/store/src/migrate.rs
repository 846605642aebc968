//! Per-service migrations. Each service crate embeds its SQLite and PostgreSQL migrations with
//! `sqlx::migrate!` and keeps them in its own table (`_<service>_migrations`), so services can
//! share one database or each have their own.

use sqlx::migrate::{Migrate, Migrator};

use crate::{Backend, Db, StoreError};

/// One service's migrations for both backends.
#[derive(Debug)]
pub struct ServiceMigrations {
    pub service: &'static str,
    sqlite: Migrator,
    postgres: Migrator,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub service: &'static str,
    pub applied_before: usize,
    pub applied_now: usize,
}

impl ServiceMigrations {
    pub fn new(service: &'static str, mut sqlite: Migrator, mut postgres: Migrator) -> Self {
        let table = format!("_{service}_migrations");
        sqlite.dangerous_set_table_name(table.clone());
        postgres.dangerous_set_table_name(table);
        Self {
            service,
            sqlite,
            postgres,
        }
    }

    fn migrator(&self, backend: Backend) -> &Migrator {
        match backend {
            Backend::Sqlite => &self.sqlite,
            Backend::Postgres => &self.postgres,
        }
    }

    fn table(&self) -> String {
        format!("_{}_migrations", self.service)
    }

    /// Versions recorded as applied (none if the table does not exist yet).
    async fn applied_versions(&self, db: &Db) -> Result<Vec<i64>, StoreError> {
        let mut conn = db.pool().acquire().await?;
        conn.ensure_migrations_table(&self.table())
            .await
            .map_err(|e| StoreError::Migration(format!("{}: {e}", self.service)))?;
        let applied = conn
            .list_applied_migrations(&self.table())
            .await
            .map_err(|e| StoreError::Migration(format!("{}: {e}", self.service)))?;
        Ok(applied.into_iter().map(|m| m.version).collect())
    }

    /// Applies pending migrations; refuses if an applied migration was edited.
    pub async fn run(&self, db: &Db) -> Result<MigrationReport, StoreError> {
        let before = self.applied_versions(db).await?.len();
        self.migrator(db.backend())
            .run(db.pool())
            .await
            .map_err(|e| StoreError::Migration(format!("{}: {e}", self.service)))?;
        let after = self.applied_versions(db).await?.len();
        Ok(MigrationReport {
            service: self.service,
            applied_before: before,
            applied_now: after.saturating_sub(before),
        })
    }

    /// Checks that every migration is applied, for processes that must not migrate themselves.
    pub async fn verify(&self, db: &Db) -> Result<(), StoreError> {
        let applied = self.applied_versions(db).await?;
        let pending: Vec<String> = self
            .migrator(db.backend())
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Migration(format!(
                "{} has pending migrations ({}); run `confab migrate`",
                self.service,
                pending.join(", ")
            )))
        }
    }
}
