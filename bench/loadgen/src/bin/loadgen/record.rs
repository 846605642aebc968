//! What loadgen records: each request's outcome, the histograms of a run or of one side, and
//! the figures of the JSON line.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// What happened to one request.
pub(crate) struct Outcome {
    pub(crate) latency: Duration,
    pub(crate) ttfb: Option<Duration>,
    pub(crate) error: Option<String>,
}

/// Recorded results of one worker or of the whole run.
pub(crate) struct Record {
    pub(crate) latency: Histogram<u64>,
    pub(crate) ttfb: Histogram<u64>,
    pub(crate) lag: Histogram<u64>,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) ok: u64,
    pub(crate) dropped: u64,
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Record {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: histogram()?,
            ttfb: histogram()?,
            lag: histogram()?,
            errors: BTreeMap::new(),
            ok: 0,
            dropped: 0,
        })
    }

    pub(crate) fn add(&mut self, outcome: Outcome) {
        self.latency.saturating_record(micros(outcome.latency));
        match outcome.error {
            None => {
                self.ok += 1;
                if let Some(ttfb) = outcome.ttfb {
                    self.ttfb.saturating_record(micros(ttfb));
                }
            }
            Some(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub(crate) fn merge(&mut self, other: &Record) -> anyhow::Result<()> {
        self.latency.add(&other.latency).context("merge")?;
        self.ttfb.add(&other.ttfb).context("merge")?;
        self.lag.add(&other.lag).context("merge")?;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.ok += other.ok;
        self.dropped += other.dropped;
        Ok(())
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.dropped
    }
}

pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub(crate) fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean()).round() / 1000.0,
    })
}

/// The figures of one record over `seconds` of load.
pub(crate) fn figures(record: &Record, seconds: f64, stream: bool) -> Value {
    json!({
        "requests": record.ok + record.errors(),
        "ok": record.ok,
        "errors": record.errors(),
        "error_kinds": {
            "dropped": record.dropped,
            "other": record.errors,
        },
        "rps": (record.ok as f64 / seconds.max(1e-9) * 10.0).round() / 10.0,
        "latency_ms": summary(&record.latency),
        "ttfb_ms": if stream { summary(&record.ttfb) } else { Value::Null },
        "send_lag_ms": summary(&record.lag),
    })
}
