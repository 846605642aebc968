//! A report's parameters as the API gives them: grouping, UTC days `YYYY-MM-DD` and ranges of
//! them, each refusal with a stable code. Pure.

use time::{Date, Month};
use uuid::Uuid;

/// The longest range a query may span, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_RANGE_DAYS: i64 = 30;

/// Why a query was refused; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("group_by must be user, model or day, not `{0}`")]
    InvalidGroupBy(String),
    #[error("{0}")]
    InvalidDate(String),
    #[error("{0}")]
    InvalidRange(String),
    #[error("user must be a user id, not `{0}`")]
    InvalidUser(String),
    #[error("format must be csv, not `{0}`")]
    InvalidFormat(String),
}

impl QueryError {
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidGroupBy(_) => "invalid_group_by",
            QueryError::InvalidDate(_) => "invalid_date",
            QueryError::InvalidRange(_) => "invalid_range",
            QueryError::InvalidUser(_) => "invalid_user",
            QueryError::InvalidFormat(_) => "invalid_format",
        }
    }
}

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    User,
    Model,
    Day,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(GroupBy::User),
            "model" => Ok(GroupBy::Model),
            "day" => Ok(GroupBy::Day),
            other => Err(QueryError::InvalidGroupBy(other.into())),
        }
    }
}

/// A UTC date as `YYYY-MM-DD`.
pub fn format_day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses `YYYY-MM-DD` strictly.
pub fn parse_day(text: &str) -> Result<Date, QueryError> {
    let invalid = || QueryError::InvalidDate(format!("`{text}` is not a date (YYYY-MM-DD)"));
    let bytes = text.as_bytes();
    if bytes.len() != 10
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !text
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let year: i32 = text[..4].parse().map_err(|_| invalid())?;
    let month: u8 = text[5..7].parse().map_err(|_| invalid())?;
    let day: u8 = text[8..].parse().map_err(|_| invalid())?;
    let month = Month::try_from(month).map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

/// The UTC day of a millisecond instant.
pub fn day_of(ms: i64) -> String {
    format_day(confab_core::id::ms_to_datetime(ms).date())
}

/// Days from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: Date,
    pub to: Date,
}

impl DateRange {
    /// From optional `YYYY-MM-DD` bounds: `to` defaults to `today`, `from` to 30 days
    /// ending at `to`. At most [`MAX_RANGE_DAYS`] days; `from` not after `to`.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Self, QueryError> {
        let to = match to {
            Some(text) => parse_day(text)?,
            None => today,
        };
        let from = match from {
            Some(text) => parse_day(text)?,
            None => to
                .checked_sub(time::Duration::days(DEFAULT_RANGE_DAYS - 1))
                .unwrap_or(to),
        };
        if from > to {
            return Err(QueryError::InvalidRange(format!(
                "from ({}) is after to ({})",
                format_day(from),
                format_day(to)
            )));
        }
        let days = (to - from).whole_days() + 1;
        if days > MAX_RANGE_DAYS {
            return Err(QueryError::InvalidRange(format!(
                "the range spans {days} days; at most {MAX_RANGE_DAYS}"
            )));
        }
        Ok(Self { from, to })
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + use<> {
        let to = self.to;
        std::iter::successors(Some(self.from), move |d| {
            d.next_day().filter(|next| *next <= to)
        })
    }
}

/// Today in UTC.
pub fn today() -> Date {
    confab_core::id::ms_to_datetime(confab_core::now_ms()).date()
}

/// A report's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub group_by: GroupBy,
    pub range: DateRange,
    /// Only this user's usage.
    pub user: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ranges_are_checked() {
        let today = parse_day("2026-03-10").unwrap();
        let range = DateRange::parse(None, None, today).unwrap();
        assert_eq!(format_day(range.from), "2026-02-09");
        assert_eq!(range.days().count(), 30);
        let one = DateRange::parse(Some("2026-01-01"), Some("2026-01-01"), today).unwrap();
        assert_eq!(
            one.days().map(format_day).collect::<Vec<_>>(),
            ["2026-01-01"]
        );
        for bad in [
            "2026-1-01",
            "2026-02-30",
            "20260101",
            "2026-01-01x",
            "yesterday",
            "+026-01-01",
        ] {
            assert_eq!(
                DateRange::parse(Some(bad), None, today).unwrap_err().code(),
                "invalid_date",
                "{bad}"
            );
        }
        assert_eq!(
            DateRange::parse(Some("2026-03-02"), Some("2026-03-01"), today)
                .unwrap_err()
                .code(),
            "invalid_range"
        );
        assert!(DateRange::parse(Some("2025-01-01"), Some("2025-12-31"), today).is_ok());
        assert_eq!(
            DateRange::parse(Some("2024-01-01"), Some("2025-01-01"), today)
                .unwrap_err()
                .code(),
            "invalid_range"
        );
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(
            "week".parse::<GroupBy>().unwrap_err().code(),
            "invalid_group_by"
        );
    }
}
