//! The YouTube quota ledger: every call to the YouTube Data API reserves its cost here first,
//! because Google charges failed calls too. The port is [`QuotaLedger`]; its one adapter is
//! [`SqlQuotaLedger`] (SQLite and PostgreSQL), whose reservations are atomic across every
//! bucket a method spends from, so concurrent callers never overspend.

use async_trait::async_trait;
use confab_store::StoreError;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

pub mod domain;
pub mod store;

pub use domain::{
    Bucket, BucketLimits, Charge, Clock, CostProfile, CostTable, ManualClock, Method,
    QuotaSettings, SystemClock, next_reset, quota_day,
};
pub use store::SqlQuotaLedger;

/// Why a reservation was refused.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The bucket is spent (or Google said so) until `resets_at`.
    #[error("the YouTube quota bucket {bucket} is spent until {resets_at}")]
    Exhausted {
        bucket: Bucket,
        resets_at: Timestamp,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a successful reservation took. It is never given back: Google charges failed calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub method: Method,
    /// The quota day it was charged to.
    pub day: Date,
    pub charges: Vec<Charge>,
}

/// One bucket on one quota day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BucketUsage {
    /// `YYYY-MM-DD`, the day in America/Los_Angeles.
    pub day: String,
    pub bucket: Bucket,
    pub used: u64,
    pub limit: u64,
    /// Google answered `quotaExceeded`: nothing more is spent from it that day.
    pub exhausted: bool,
}

/// The ledger of quota spent per bucket per quota day.
#[async_trait]
pub trait QuotaLedger: Send + Sync {
    /// Takes one call's cost of `method` from every bucket it spends from, all or none.
    async fn reserve(&self, method: Method) -> Result<Reservation, QuotaError>;

    /// Marks `bucket` spent for the rest of the quota day, after Google said `quotaExceeded`.
    async fn mark_exhausted(&self, bucket: Bucket) -> Result<(), QuotaError>;

    /// Every bucket on each of the last `days` quota days (today included), oldest first.
    async fn usage(&self, days: u32) -> Result<Vec<BucketUsage>, QuotaError>;

    /// When the current quota day ends.
    fn next_reset(&self) -> Timestamp;
}
