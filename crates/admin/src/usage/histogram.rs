//! Latencies as counts in fixed log-spaced buckets: rows of any days, users and models merge
//! by adding counts, and p50/p95 come from the merged counts, accurate to within one bucket (a
//! factor of 2^(1/4), about 19%). Pure: stored as a JSON array of counts by the store.

use serde::{Deserialize, Serialize};

/// Buckets per doubling of latency.
const STEPS_PER_DOUBLING: f64 = 4.0;
/// Bucket `i` holds latencies in `(bound(i - 1), bound(i)]` ms with `bound(i) = 2^(i/4)`;
/// bucket 0 holds up to 1 ms and the last one everything above `bound(BUCKETS - 2)` (about
/// 12 minutes).
pub const BUCKETS: usize = 80;

/// Request counts per latency bucket; trailing empty buckets are not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket a latency falls in.
    pub fn bucket_of(ms: i64) -> usize {
        if ms <= 1 {
            return 0;
        }
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive latency in ms; the bucket index is small"
        )]
        let index = ((ms as f64).log2() * STEPS_PER_DOUBLING - 1e-9).ceil() as usize;
        index.min(BUCKETS - 1)
    }

    /// The upper bound of bucket `i` in ms (infinite for the last).
    pub fn upper_bound(i: usize) -> f64 {
        if i >= BUCKETS - 1 {
            return f64::INFINITY;
        }
        #[expect(clippy::cast_precision_loss, reason = "a small index")]
        (i as f64 / STEPS_PER_DOUBLING).exp2()
    }

    fn lower_bound(i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            Self::upper_bound(i - 1)
        }
    }

    pub fn record(&mut self, ms: i64) {
        self.add(Self::bucket_of(ms), 1);
    }

    fn add(&mut self, bucket: usize, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += count;
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bucket, &count) in other.counts.iter().enumerate() {
            self.add(bucket.min(BUCKETS - 1), count);
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency below which a fraction `p` (0..=1) of the requests fall, interpolated
    /// linearly inside its bucket; `None` without requests. Above the last finite bound the
    /// answer is that bound.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let rank = (p.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0.0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let count = count as f64;
            if below + count >= rank {
                let lower = Self::lower_bound(bucket);
                let upper = Self::upper_bound(bucket);
                if upper.is_infinite() {
                    return Some(lower);
                }
                return Some(lower + (upper - lower) * (rank - below) / count);
            }
            below += count;
        }
        None
    }

    /// The stored form: a JSON array of counts.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.counts).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Rounds a latency for display.
#[expect(
    clippy::cast_possible_truncation,
    reason = "latencies in ms fit an i64 by far"
)]
pub(crate) fn round_ms(ms: f64) -> i64 {
    ms.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced() {
        assert_eq!(LatencyHistogram::bucket_of(-5), 0);
        assert_eq!(LatencyHistogram::bucket_of(1), 0);
        assert_eq!(LatencyHistogram::bucket_of(2), 4);
        assert_eq!(LatencyHistogram::bucket_of(1024), 40);
        assert_eq!(LatencyHistogram::bucket_of(1025), 41);
        assert_eq!(LatencyHistogram::bucket_of(i64::MAX), BUCKETS - 1);
        for ms in [1, 2, 3, 7, 100, 999, 1000, 65_000, 700_000] {
            let bucket = LatencyHistogram::bucket_of(ms);
            #[expect(clippy::cast_precision_loss, reason = "small numbers")]
            let ms = ms as f64;
            assert!(ms <= LatencyHistogram::upper_bound(bucket) + 1e-9, "{ms}");
            assert!(
                ms > LatencyHistogram::lower_bound(bucket) || bucket == 0,
                "{ms}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.percentile(0.5), None);
        for ms in 1..=100 {
            h.record(ms);
        }
        let p50 = h.percentile(0.5).unwrap();
        let p95 = h.percentile(0.95).unwrap();
        // Within one bucket (a factor of 2^(1/4)) of the exact values 50 and 95.
        assert!((50.0 / 1.19..=50.0 * 1.19).contains(&p50), "{p50}");
        assert!((95.0 / 1.19..=95.0 * 1.19).contains(&p95), "{p95}");
        assert!(h.percentile(1.0).unwrap() <= LatencyHistogram::upper_bound(27));
        // One value: every percentile lies in its bucket.
        let mut one = LatencyHistogram::new();
        one.record(300);
        let bucket = LatencyHistogram::bucket_of(300);
        for p in [0.0, 0.5, 0.95, 1.0] {
            let v = one.percentile(p).unwrap();
            assert!(
                v > LatencyHistogram::lower_bound(bucket)
                    && v <= LatencyHistogram::upper_bound(bucket)
            );
        }
        // Beyond the last finite bound, the bound is the answer.
        let mut slow = LatencyHistogram::new();
        slow.record(i64::MAX);
        assert_eq!(
            slow.percentile(0.5),
            Some(LatencyHistogram::upper_bound(BUCKETS - 2))
        );
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_everything() {
        let mut all = LatencyHistogram::new();
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for ms in [3, 40, 40, 900] {
            a.record(ms);
            all.record(ms);
        }
        for ms in [1, 40, 20_000] {
            b.record(ms);
            all.record(ms);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        assert_eq!(merged.count(), 7);
        assert_eq!(merged.percentile(0.5), all.percentile(0.5));
        // Stored as a JSON array without trailing empty buckets, and read back the same.
        let json = merged.to_json();
        assert!(json.starts_with('[') && !json.ends_with(",0]"), "{json}");
        assert_eq!(LatencyHistogram::from_json(&json).unwrap(), merged);
        // Merging the empty histogram changes nothing.
        merged.merge(&LatencyHistogram::new());
        assert_eq!(merged, all);
    }
}
