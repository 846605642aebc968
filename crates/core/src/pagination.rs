//! Cursor pagination: opaque cursors that encode the position after the last item returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Query parameters of a paginated list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1 to 200, default 50).
    pub limit: Option<u32>,
}

impl PageParams {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}, got {n}"),
            )),
        }
    }

    /// Decodes the cursor into the position type the list uses.
    pub fn position<P: DeserializeOwned>(&self) -> Result<Option<P>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let bad = || {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is malformed; use a next_cursor value as given",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// Encodes a position as an opaque cursor.
pub fn encode_cursor<P: Serialize>(position: &P) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only signals that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, position_of: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(position_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_bad_input() {
        let cursor = encode_cursor(&(42_i64, "abc".to_string()));
        let params = PageParams {
            cursor: Some(cursor),
            limit: None,
        };
        assert_eq!(
            params.position::<(i64, String)>().unwrap(),
            Some((42, "abc".to_string()))
        );
        let bad = PageParams {
            cursor: Some("!!".into()),
            limit: Some(0),
        };
        assert_eq!(
            bad.position::<(i64, String)>().unwrap_err().code,
            "invalid_cursor"
        );
        assert_eq!(bad.limit().unwrap_err().code, "invalid_limit");
    }

    #[test]
    fn page_from_extra_row() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let page = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert!(page.next_cursor.is_none());
    }
}
