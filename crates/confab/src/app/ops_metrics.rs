//! The metrics a process exports besides its services' own (docs: ARCHITECTURE.md, "Metrics"):
//! `confab_build_info` and the data directory's space ([`common`]; the `process_*` metrics
//! and `confab_sse_streams_active` come with every `MetricsBuilder`), `confab_nats_up`
//! ([`nats`]), `confab_websockets_active` ([`sockets`]), `confab_job_runs_total`
//! ([`job_runs`]), and the gauges read from the database every few seconds ([`Refresher`]):
//! `confab_jobs`, `confab_job_queue_age_seconds`, `confab_audit_chain_length`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use confab_admin::SqlAuditLog;
use confab_bus::{JobQueue, KindStats, RunOutcome, Workers};
use confab_core::config::Config;
use confab_core::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the database-read gauges are refreshed: cheap queries (an index over unfinished
/// jobs, one row for the audit head), never at every scrape.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The metrics of every process: what the binary is, and (`data_dir`: processes that keep
/// data) the data directory's disk space.
pub(super) fn common(metrics: &mut MetricsBuilder, config: &Config, data_dir: bool) {
    metrics.build_info(crate::build_info::VERSION, crate::build_info::COMMIT);
    if data_dir {
        metrics.data_dir(&config.data_dir);
    }
}

/// `confab_nats_up`: 1 while the process's NATS connection is up, read at every scrape.
pub(super) fn nats(metrics: &mut MetricsBuilder, bus: confab_bus::NatsBus) {
    let up = Gauge::<i64>::default();
    metrics.registry().register(
        "nats_up",
        "1 while the connection to NATS is up, 0 while it is down",
        up.clone(),
    );
    metrics.on_scrape(move || {
        up.set(i64::from(bus.is_connected()));
    });
}

/// `confab_websockets_active`: the chat service's real-time connections in this process.
pub(super) fn sockets(metrics: &mut MetricsBuilder, chat: Arc<confab_chat::ChatService>) {
    let open = Gauge::<i64>::default();
    metrics.registry().register(
        "websockets_active",
        "WebSocket connections open now",
        open.clone(),
    );
    metrics.on_scrape(move || {
        open.set(i64::try_from(chat.sockets_open_here()).unwrap_or(i64::MAX));
    });
}

/// The files service's reconciliation: `confab_files_missing_blobs` (files whose content is
/// missing from the blob store) and `confab_files_orphans_removed` (blobs without a file
/// removed by the last run), both as of the last reconciliation in this process.
pub(super) fn files(metrics: &mut MetricsBuilder, files: Arc<confab_files::FilesService>) {
    let missing = Gauge::<i64>::default();
    let orphans = Gauge::<i64>::default();
    metrics.registry().register(
        "files_missing_blobs",
        "Files whose content was missing from the blob store at the last reconciliation",
        missing.clone(),
    );
    metrics.registry().register(
        "files_orphans_removed",
        "Blobs without a file removed by the last reconciliation",
        orphans.clone(),
    );
    metrics.on_scrape(move || {
        if let Some(last) = files.last_reconciliation() {
            missing.set(i64::try_from(last.missing.len()).unwrap_or(i64::MAX));
            orphans.set(i64::try_from(last.orphans_removed).unwrap_or(i64::MAX));
        }
    });
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: &'static str,
    outcome: &'static str,
}

/// `confab_job_runs_total{kind,outcome}`: how the runs of this process's workers ended. The
/// kinds are those the workers registered ([`crate::jobs::KINDS`]).
pub(super) fn job_runs(metrics: &mut MetricsBuilder, workers: &mut Workers, kinds: &[&str]) {
    let runs = Family::<RunLabels, Counter>::default();
    metrics.registry().register(
        "job_runs",
        "Job runs by kind and outcome (succeeded, failed for good, or retried)",
        runs.clone(),
    );
    // Every series from 0, so that `increase` sees the first failure too.
    for kind in kinds {
        for outcome in [
            RunOutcome::Succeeded,
            RunOutcome::Failed,
            RunOutcome::Retried,
        ] {
            let _created = runs.get_or_create(&RunLabels {
                kind: kind_label(kind),
                outcome: outcome.as_str(),
            });
        }
    }
    workers.observe_runs(Arc::new(move |kind: &str, outcome: RunOutcome| {
        runs.get_or_create(&RunLabels {
            kind: kind_label(kind),
            outcome: outcome.as_str(),
        })
        .inc();
    }));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The job queue and its gauges: `confab_jobs`, `confab_job_queue_age_seconds`.
struct JobGauges {
    queue: Arc<dyn JobQueue>,
    jobs: Family<JobLabels, Gauge>,
    age: Family<KindLabel, Gauge>,
}

/// Gauges read from the database every [`REFRESH_EVERY`] on a tracked task.
#[derive(Default)]
pub(super) struct Refresher {
    jobs: Option<JobGauges>,
    audit: Option<(Arc<SqlAuditLog>, Gauge)>,
}

impl Refresher {
    /// `confab_jobs{kind,state}` (queued, running) and `confab_job_queue_age_seconds{kind}`
    /// from `queue`, when the adapter can count them cheaply (the SQL queue).
    pub(super) fn jobs(&mut self, metrics: &mut MetricsBuilder, queue: Arc<dyn JobQueue>) {
        let jobs = Family::<JobLabels, Gauge>::default();
        let age = Family::<KindLabel, Gauge>::default();
        let r = metrics.registry();
        r.register(
            "jobs",
            "Unfinished jobs by kind and state (queued, running)",
            jobs.clone(),
        );
        r.register(
            "job_queue_age_seconds",
            "How long the longest-waiting due job of a kind has waited, in seconds",
            age.clone(),
        );
        self.jobs = Some(JobGauges { queue, jobs, age });
    }

    /// `confab_audit_chain_length`: the audit chain's head.
    pub(super) fn audit(&mut self, metrics: &mut MetricsBuilder, log: Arc<SqlAuditLog>) {
        let length = Gauge::<i64>::default();
        metrics.registry().register(
            "audit_chain_length",
            "Entries in the audit hash chain (archived ones included)",
            length.clone(),
        );
        self.audit = Some((log, length));
    }

    /// Refreshes now and then every [`REFRESH_EVERY`] until `shutdown`.
    pub(super) fn start(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        if self.jobs.is_none() && self.audit.is_none() {
            return;
        }
        tasks.spawn(async move {
            // Every known kind from 0: a fixed set of series; `other` once seen.
            let mut kinds: BTreeSet<&'static str> = crate::jobs::KINDS.into_iter().collect();
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => self.refresh(&mut kinds).await,
                }
            }
        });
    }

    /// The jobs first, then the audit chain: a reader that sees the chain's length sees the
    /// jobs of the same round.
    async fn refresh(&self, kinds: &mut BTreeSet<&'static str>) {
        if let Some(JobGauges { queue, jobs, age }) = &self.jobs {
            let now = confab_core::id::now_ms();
            match queue.stats(now).await {
                Ok(Some(stats)) => {
                    let by_label = by_label(&stats, now);
                    // Kinds known or seen before and absent now have no unfinished job: 0.
                    for gone in kinds.iter().filter(|k| !by_label.contains_key(*k)) {
                        set_kind(jobs, age, gone, (0, 0, 0));
                    }
                    for (kind, counts) in &by_label {
                        set_kind(jobs, age, kind, *counts);
                    }
                    kinds.extend(by_label.into_keys());
                }
                // The adapter cannot count cheaply: no series rather than wrong ones.
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "job counts not read"),
            }
        }
        if let Some((log, length)) = &self.audit {
            match log.chain_length().await {
                Ok(n) => {
                    length.set(n);
                }
                Err(error) => tracing::debug!(%error, "audit chain length not read"),
            }
        }
    }
}

/// The label of a stored job kind: itself when the code knows it ([`crate::jobs::KINDS`]),
/// else `other` (a kind left by another version), so the series stay a fixed set.
fn kind_label(kind: &str) -> &'static str {
    crate::jobs::KINDS
        .into_iter()
        .find(|k| *k == kind)
        .unwrap_or("other")
}

/// Queued, running and the longest wait (seconds) by kind label at `now_ms`.
fn by_label(stats: &[KindStats], now_ms: i64) -> BTreeMap<&'static str, (u64, u64, i64)> {
    let mut out: BTreeMap<&'static str, (u64, u64, i64)> = BTreeMap::new();
    for s in stats {
        let entry = out.entry(kind_label(&s.kind)).or_default();
        let waited = s.oldest_due.map_or(0, |at| (now_ms - at).max(0) / 1000);
        entry.0 += s.queued;
        entry.1 += s.running;
        entry.2 = entry.2.max(waited);
    }
    out
}

fn set_kind(
    jobs: &Family<JobLabels, Gauge>,
    age: &Family<KindLabel, Gauge>,
    kind: &'static str,
    (queued, running, waited_secs): (u64, u64, i64),
) {
    for (state, n) in [("queued", queued), ("running", running)] {
        jobs.get_or_create(&JobLabels { kind, state })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    age.get_or_create(&KindLabel { kind }).set(waited_secs);
}
