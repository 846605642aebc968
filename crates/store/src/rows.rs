//! Reading typed values out of `sqlx::Any` rows, for every service's SQL adapter: ids stored
//! as text, JSON columns, and a column that does not hold what it should reported as a
//! `StoreError` naming it (never a panic).

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::StoreError;

/// The error for a column whose content cannot be read as what it should hold.
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("unreadable {what} in the database"))
}

/// A UUID stored as text.
pub fn uuid(row: &AnyRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|_| corrupt(column))
}

/// A nullable UUID stored as text.
pub fn opt_uuid(row: &AnyRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| Uuid::parse_str(&t).map_err(|_| corrupt(column)))
        .transpose()
}

/// A value stored as JSON text.
pub fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| corrupt(column))
}
