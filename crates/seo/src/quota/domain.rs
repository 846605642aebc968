//! The YouTube quota's rules, with no I/O: the buckets a call spends from, the cost table (as
//! data, with a `legacy` and a `2026` profile and per-method overrides), and the quota day,
//! which is the calendar day in America/Los_Angeles and ends at midnight there.
//!
//! Costs change: callers name a [`Method`] and the table says what it costs, so no call site
//! carries a number.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The time zone whose midnight resets YouTube's quotas.
pub const QUOTA_TIME_ZONE: &str = "America/Los_Angeles";

/// A daily allowance that calls spend from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// The project's units (10,000 a day by default).
    DailyUnits,
    /// Calls of `search.list` (100 a day since mid-2026).
    SearchCalls,
    /// Calls of `videos.insert` (100 a day since mid-2026).
    InsertCalls,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::DailyUnits, Bucket::SearchCalls, Bucket::InsertCalls];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::DailyUnits => "daily_units",
            Bucket::SearchCalls => "search_calls",
            Bucket::InsertCalls => "insert_calls",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A YouTube Data API method that costs quota, named as Google names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "search.list")]
    SearchList,
    #[serde(rename = "videos.list")]
    VideosList,
    #[serde(rename = "videos.update")]
    VideosUpdate,
    #[serde(rename = "videos.insert")]
    VideosInsert,
    #[serde(rename = "channels.list")]
    ChannelsList,
    #[serde(rename = "videoCategories.list")]
    VideoCategoriesList,
    #[serde(rename = "thumbnails.set")]
    ThumbnailsSet,
    #[serde(rename = "captions.list")]
    CaptionsList,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::SearchList,
        Method::VideosList,
        Method::VideosUpdate,
        Method::VideosInsert,
        Method::ChannelsList,
        Method::VideoCategoriesList,
        Method::ThumbnailsSet,
        Method::CaptionsList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::SearchList => "search.list",
            Method::VideosList => "videos.list",
            Method::VideosUpdate => "videos.update",
            Method::VideosInsert => "videos.insert",
            Method::ChannelsList => "channels.list",
            Method::VideoCategoriesList => "videoCategories.list",
            Method::ThumbnailsSet => "thumbnails.set",
            Method::CaptionsList => "captions.list",
        }
    }

    /// The bucket that only this method spends from, if any: the one a `quotaExceeded` on
    /// this method is blamed on.
    pub fn own_bucket(self) -> Option<Bucket> {
        match self {
            Method::SearchList => Some(Bucket::SearchCalls),
            Method::VideosInsert => Some(Bucket::InsertCalls),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount taken from one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub bucket: Bucket,
    pub amount: u64,
}

/// A published cost table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CostProfile {
    /// Units only, as documented before mid-2026.
    #[serde(rename = "legacy")]
    Legacy,
    /// Units plus the per-call buckets of `search.list` and `videos.insert`.
    #[default]
    #[serde(rename = "2026")]
    Y2026,
}

/// Units per method in the legacy table; the 2026 profile keeps them and adds call buckets.
const LEGACY_UNITS: [(Method, u64); 8] = [
    (Method::SearchList, 100),
    (Method::VideosList, 1),
    (Method::VideosUpdate, 50),
    (Method::VideosInsert, 1600),
    (Method::ChannelsList, 1),
    (Method::VideoCategoriesList, 1),
    (Method::ThumbnailsSet, 50),
    (Method::CaptionsList, 50),
];

/// What each method costs, bucket by bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostTable {
    charges: BTreeMap<Method, Vec<Charge>>,
}

impl CostTable {
    /// The table of a published profile.
    pub fn profile(profile: CostProfile) -> Self {
        let mut charges = BTreeMap::new();
        for (method, units) in LEGACY_UNITS {
            let mut list = vec![Charge {
                bucket: Bucket::DailyUnits,
                amount: units,
            }];
            if profile == CostProfile::Y2026
                && let Some(bucket) = method.own_bucket()
            {
                list.push(Charge { bucket, amount: 1 });
            }
            charges.insert(method, list);
        }
        Self { charges }
    }

    /// The table of `settings`: its profile with its per-method overrides on top.
    pub fn from_settings(settings: &QuotaSettings) -> Self {
        let mut table = Self::profile(settings.profile);
        for (method, charges) in &settings.cost_overrides {
            table.set(*method, charges.clone());
        }
        table
    }

    /// Replaces what `method` costs.
    pub fn set(&mut self, method: Method, mut charges: Vec<Charge>) {
        charges.sort_by_key(|c| c.bucket);
        self.charges.insert(method, charges);
    }

    /// What one call of `method` costs, in bucket order (the order rows are locked in).
    pub fn charges(&self, method: Method) -> &[Charge] {
        self.charges.get(&method).map_or(&[], Vec::as_slice)
    }
}

/// Each bucket's daily limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketLimits {
    pub daily_units: u64,
    pub search_calls: u64,
    pub insert_calls: u64,
}

impl Default for BucketLimits {
    fn default() -> Self {
        Self {
            daily_units: 10_000,
            search_calls: 100,
            insert_calls: 100,
        }
    }
}

impl BucketLimits {
    pub fn of(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::DailyUnits => self.daily_units,
            Bucket::SearchCalls => self.search_calls,
            Bucket::InsertCalls => self.insert_calls,
        }
    }
}

/// The quota's configuration: limits, the cost profile, and overrides per method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    pub limits: BucketLimits,
    pub profile: CostProfile,
    /// Replaces a method's charges, e.g. `"search.list" = [{ bucket = "daily_units", amount = 50 }]`.
    pub cost_overrides: BTreeMap<Method, Vec<Charge>>,
}

fn pacific() -> TimeZone {
    // The bundled tz database always has this zone; the fixed offset is only a fallback.
    TimeZone::get(QUOTA_TIME_ZONE).unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(-8)))
}

/// The quota day that `now` falls in: its calendar date in America/Los_Angeles.
pub fn quota_day(now: Timestamp) -> Date {
    now.to_zoned(pacific()).date()
}

/// When the quota day of `now` ends: the next midnight in America/Los_Angeles, whether the
/// day has 23, 24 or 25 hours.
pub fn next_reset(now: Timestamp) -> Timestamp {
    let tz = pacific();
    let today = now.to_zoned(tz.clone()).date();
    today
        .tomorrow()
        .and_then(|d| d.to_zoned(tz))
        .map_or(Timestamp::MAX, |z| z.timestamp())
}

/// The quota days from `days - 1` days before `now`'s up to `now`'s, oldest first.
pub fn last_days(now: Timestamp, days: u32) -> Vec<Date> {
    let mut out = Vec::new();
    let mut day = quota_day(now);
    for _ in 0..days.max(1) {
        out.push(day);
        match day.yesterday() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    out.reverse();
    out
}

/// The time, injected so tests can cross midnight and DST changes.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told, for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock() = at;
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock();
        *now = now
            .checked_add(jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_differ_only_in_call_buckets() {
        let legacy = CostTable::profile(CostProfile::Legacy);
        let new = CostTable::profile(CostProfile::Y2026);
        assert_eq!(legacy.charges(Method::SearchList).len(), 1);
        assert_eq!(
            new.charges(Method::SearchList),
            &[
                Charge {
                    bucket: Bucket::DailyUnits,
                    amount: 100
                },
                Charge {
                    bucket: Bucket::SearchCalls,
                    amount: 1
                }
            ]
        );
        assert_eq!(
            new.charges(Method::VideosList),
            legacy.charges(Method::VideosList)
        );
    }

    #[test]
    fn overrides_come_from_settings() {
        let settings: QuotaSettings = serde_json::from_str(
            r#"{"profile":"legacy","cost_overrides":{"videos.update":[{"bucket":"daily_units","amount":7}]}}"#,
        )
        .unwrap();
        let table = CostTable::from_settings(&settings);
        assert_eq!(table.charges(Method::VideosUpdate)[0].amount, 7);
        assert_eq!(settings.limits.daily_units, 10_000);
    }

    #[test]
    fn the_day_is_pacific() {
        // 07:59 UTC on 2026-07-02 is 00:59 PDT on the 2nd; 06:59 UTC is 23:59 on the 1st.
        let t: Timestamp = "2026-07-02T07:59:00Z".parse().unwrap();
        assert_eq!(quota_day(t).to_string(), "2026-07-02");
        let t: Timestamp = "2026-07-02T06:59:00Z".parse().unwrap();
        assert_eq!(quota_day(t).to_string(), "2026-07-01");
        assert_eq!(next_reset(t).to_string(), "2026-07-02T07:00:00Z");
    }

    #[test]
    fn resets_follow_daylight_saving() {
        // 2026-03-08 has 23 hours in Los Angeles; 2026-11-01 has 25.
        let march: Timestamp = "2026-03-08T12:00:00Z".parse().unwrap();
        assert_eq!(next_reset(march).to_string(), "2026-03-09T07:00:00Z");
        let before: Timestamp = "2026-03-07T12:00:00Z".parse().unwrap();
        assert_eq!(next_reset(before).to_string(), "2026-03-08T08:00:00Z");
        let november: Timestamp = "2026-11-01T12:00:00Z".parse().unwrap();
        assert_eq!(next_reset(november).to_string(), "2026-11-02T08:00:00Z");
        assert_eq!(
            last_days(november, 3)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["2026-10-30", "2026-10-31", "2026-11-01"]
        );
    }
}
