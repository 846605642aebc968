//! Report assembly, free of I/O: stored rows folded into totals, groups and a per-day series
//! ([`ReportBuilder`]), and events folded into the rows they change ([`fold_events`]).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UsageEvent;
use super::histogram::{LatencyHistogram, round_ms};
use super::query::{GroupBy, UsageQuery, day_of, format_day};
/// Totals of some requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageStats {
    pub requests: i64,
    /// Requests that did not end `ok`.
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prompt and completion tokens.
    pub tokens: i64,
    pub latency_avg_ms: Option<i64>,
    /// Median latency, from the merged histogram (within about 19%).
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// One row of a report: the totals of one user, model or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    /// A user id (`group_by=user`; join with `/api/v1/auth/users` for names), a model name,
    /// or a day `YYYY-MM-DD`.
    pub key: String,
    #[serde(flatten)]
    pub stats: UsageStats,
}

/// One day of the chart series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub stats: UsageStats,
}

/// Usage over a range of days: totals, rows grouped as asked (most requests first; days in
/// order), and one point per day of the range (days without requests included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// `user`, `model` or `day`.
    pub group_by: String,
    pub from: String,
    pub to: String,
    pub totals: UsageStats,
    pub rows: Vec<UsageRow>,
    pub series: Vec<SeriesPoint>,
}

/// One stored row: a user's use of a model on a day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyUsage {
    pub day: String,
    /// Empty for requests without a user.
    pub user_id: String,
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms_sum: i64,
    pub latency: LatencyHistogram,
}

impl DailyUsage {
    /// The row's place: its day, user and model.
    pub fn key(&self) -> UsageKey {
        UsageKey {
            day: self.day.clone(),
            user_id: self.user_id.clone(),
            model: self.model.clone(),
        }
    }

    pub fn stats(&self) -> UsageStats {
        let mut totals = Totals::default();
        totals.add(self);
        totals.stats()
    }
}

/// Totals being summed: of a report's group, or of the events one stored row gains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms_sum: i64,
    pub latency: LatencyHistogram,
}

impl Totals {
    pub fn add(&mut self, row: &DailyUsage) {
        self.requests += row.requests;
        self.errors += row.errors;
        self.prompt_tokens += row.prompt_tokens;
        self.completion_tokens += row.completion_tokens;
        self.latency_ms_sum += row.latency_ms_sum;
        self.latency.merge(&row.latency);
    }

    pub fn add_event(&mut self, event: &UsageEvent) {
        self.requests += 1;
        if event.outcome != "ok" {
            self.errors += 1;
        }
        self.prompt_tokens += event.prompt_tokens.max(0);
        self.completion_tokens += event.completion_tokens.max(0);
        self.latency_ms_sum += event.latency_ms.max(0);
        self.latency.record(event.latency_ms);
    }

    pub fn stats(&self) -> UsageStats {
        UsageStats {
            requests: self.requests,
            errors: self.errors,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            tokens: self.prompt_tokens + self.completion_tokens,
            latency_avg_ms: (self.requests > 0).then(|| {
                #[expect(clippy::cast_precision_loss, reason = "sums far below 2^52")]
                round_ms(self.latency_ms_sum as f64 / self.requests as f64)
            }),
            latency_p50_ms: self.latency.percentile(0.50).map(round_ms),
            latency_p95_ms: self.latency.percentile(0.95).map(round_ms),
        }
    }
}

/// Where a stored row belongs: a user's use of a model on a day (`user_id` empty for requests
/// without a user). Ordered as the export lists rows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    pub day: String,
    pub user_id: String,
    pub model: String,
}

/// What `events` add to each stored row; an id repeated among them counts once.
pub fn fold_events<'a>(
    events: impl IntoIterator<Item = &'a UsageEvent>,
) -> BTreeMap<UsageKey, Totals> {
    let mut seen = HashSet::new();
    let mut groups: BTreeMap<UsageKey, Totals> = BTreeMap::new();
    for event in events {
        if !seen.insert(event.id.as_str()) {
            continue;
        }
        let key = UsageKey {
            day: day_of(event.at),
            user_id: event.user_id.clone().unwrap_or_default(),
            model: event.model.clone(),
        };
        groups.entry(key).or_default().add_event(event);
    }
    groups
}

/// Folds stored rows into the report of a query as they stream in, so memory follows the
/// size of the answer, not the number of stored rows. The rows are those of the query's range
/// (and user); the builder does not filter them again.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    query: UsageQuery,
    totals: Totals,
    groups: BTreeMap<String, Totals>,
    days: BTreeMap<String, Totals>,
}

impl ReportBuilder {
    pub fn new(query: &UsageQuery) -> Self {
        Self {
            query: query.clone(),
            totals: Totals::default(),
            groups: BTreeMap::new(),
            days: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, row: &DailyUsage) {
        self.totals.add(row);
        self.days.entry(row.day.clone()).or_default().add(row);
        let key = match self.query.group_by {
            GroupBy::User => &row.user_id,
            GroupBy::Model => &row.model,
            GroupBy::Day => &row.day,
        };
        match self.groups.get_mut(key) {
            Some(group) => group.add(row),
            None => self.groups.entry(key.clone()).or_default().add(row),
        }
    }

    /// Rows grouped as asked (most requests first; days in order) and one point per day of
    /// the range, days without requests included.
    pub fn finish(self) -> UsageReport {
        let mut rows: Vec<UsageRow> = self
            .groups
            .into_iter()
            .map(|(key, totals)| UsageRow {
                key,
                stats: totals.stats(),
            })
            .collect();
        if self.query.group_by != GroupBy::Day {
            // Most used first; the sort is stable, so ties keep the key order.
            rows.sort_by_key(|row| std::cmp::Reverse(row.stats.requests));
        }
        let series = self
            .query
            .range
            .days()
            .map(|date| {
                let day = format_day(date);
                let stats = self.days.get(&day).map(Totals::stats).unwrap_or_default();
                SeriesPoint { day, stats }
            })
            .collect();
        UsageReport {
            group_by: self.query.group_by.as_str().into(),
            from: format_day(self.query.range.from),
            to: format_day(self.query.range.to),
            totals: self.totals.stats(),
            rows,
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::query::{DateRange, parse_day};

    fn event(
        id: &str,
        at: i64,
        user: Option<&str>,
        model: &str,
        latency_ms: i64,
        ok: bool,
    ) -> UsageEvent {
        UsageEvent {
            id: id.into(),
            at,
            user_id: user.map(Into::into),
            api_key_id: None,
            model: model.into(),
            backend: "b".into(),
            prompt_tokens: 3,
            completion_tokens: 5,
            latency_ms,
            ttft_ms: None,
            status: if ok { "ok" } else { "upstream_error" }.into(),
            outcome: if ok { "ok" } else { "error" }.into(),
            cached: false,
        }
    }

    #[test]
    fn events_fold_into_their_rows_once_per_id() {
        let day = 1_795_308_378_000; // 2026-11-22
        let next = day + 86_400_000;
        let events = [
            event("a", day, Some("u"), "m", 10, true),
            event("b", day, Some("u"), "m", 100, false),
            event("a", day, Some("u"), "m", 10, true),
            event("c", next, Some("u"), "m", 1, true),
            event("d", day, None, "m", 1, true),
        ];
        let groups = fold_events(&events);
        let keys: Vec<(&str, &str)> = groups
            .keys()
            .map(|k| (k.day.as_str(), k.user_id.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("2026-11-22", ""), ("2026-11-22", "u"), ("2026-11-23", "u")]
        );
        let first = &groups[&UsageKey {
            day: "2026-11-22".into(),
            user_id: "u".into(),
            model: "m".into(),
        }];
        assert_eq!((first.requests, first.errors), (2, 1));
        assert_eq!((first.prompt_tokens, first.completion_tokens), (6, 10));
        assert_eq!(first.latency_ms_sum, 110);
        assert_eq!(first.latency.count(), 2);
    }

    fn row(day: &str, user: &str, model: &str, requests: i64) -> DailyUsage {
        let mut latency = LatencyHistogram::new();
        for _ in 0..requests {
            latency.record(20);
        }
        DailyUsage {
            day: day.into(),
            user_id: user.into(),
            model: model.into(),
            requests,
            errors: 0,
            prompt_tokens: requests,
            completion_tokens: 2 * requests,
            latency_ms_sum: 20 * requests,
            latency,
        }
    }

    #[test]
    fn a_report_groups_sorts_and_fills_every_day() {
        let today = parse_day("2026-03-10").unwrap();
        let range = DateRange::parse(Some("2026-03-08"), Some("2026-03-10"), today).unwrap();
        let mut builder = ReportBuilder::new(&UsageQuery {
            group_by: GroupBy::Model,
            range,
            user: None,
        });
        for r in [
            row("2026-03-08", "u1", "small", 1),
            row("2026-03-10", "u1", "big", 5),
            row("2026-03-10", "u2", "small", 2),
        ] {
            builder.add(&r);
        }
        let report = builder.finish();
        assert_eq!(
            (report.from.as_str(), report.to.as_str()),
            ("2026-03-08", "2026-03-10")
        );
        assert_eq!(report.group_by, "model");
        assert_eq!(report.totals.requests, 8);
        assert_eq!(report.totals.tokens, 24);
        assert_eq!(report.totals.latency_avg_ms, Some(20));
        let rows: Vec<(&str, i64)> = report
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.stats.requests))
            .collect();
        assert_eq!(rows, [("big", 5), ("small", 3)]);
        let series: Vec<(&str, i64)> = report
            .series
            .iter()
            .map(|p| (p.day.as_str(), p.stats.requests))
            .collect();
        assert_eq!(
            series,
            [("2026-03-08", 1), ("2026-03-09", 0), ("2026-03-10", 7)]
        );
        assert_eq!(report.series[1].stats.latency_p50_ms, None);
    }
}
