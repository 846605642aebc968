//! The neutral error every store adapter returns; adapters map driver errors into it so that
//! services never match on sqlx types.

use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the field (or constraint) it was on.
    #[error("already exists ({0})")]
    Conflict(Cow<'static, str>),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(Cow::Owned(conflict_field(db.message(), db.constraint())))
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// SQLite says `UNIQUE constraint failed: users.email`; PostgreSQL names the constraint
/// (`users_email_key`). Either way, return the most specific name.
fn conflict_field(message: &str, constraint: Option<&str>) -> String {
    if let Some(rest) = message.strip_prefix("UNIQUE constraint failed: ") {
        return rest
            .split(',')
            .next()
            .and_then(|col| col.trim().split('.').nth(1))
            .unwrap_or(rest)
            .to_owned();
    }
    constraint.unwrap_or("unique").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_fields() {
        assert_eq!(
            conflict_field("UNIQUE constraint failed: users.email", None),
            "email"
        );
        assert_eq!(
            conflict_field("duplicate key", Some("users_email_key")),
            "users_email_key"
        );
    }
}
