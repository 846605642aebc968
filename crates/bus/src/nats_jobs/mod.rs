//! [`JobQueue`] over NATS JetStream, for split mode: job records in a key-value bucket,
//! dispatches in a work-queue stream.
//!
//! # Design
//!
//! - The record of each job (the [`Job`], the token of its current lease and which dispatch
//!   that lease came from) is the value of key `<id>` in the bucket `confab_jobs`. Every
//!   change is a compare-and-set on the entry's revision, so two workers cannot both claim a
//!   job, and an admin's cancel cannot be lost under a worker's heartbeat: a writer that lost
//!   the race reads again and decides again.
//! - A dispatch is a message `{"id", "at"}` on subject `confab.jobs.<kind>` of the work-queue
//!   stream `CONFAB_JOBS`, read through one durable pull consumer per kind (explicit acks).
//!   A dispatch only says "look at this job"; the record decides what happens, so a stale or
//!   duplicate dispatch is harmless.
//! - The dispatch is also the job's timer. `lease` fetches a batch of dispatches without
//!   waiting and judges each against its record: a due queued job (or a running one whose
//!   lease expired) is a candidate; a job not yet due, or running under a live lease, has its
//!   dispatch NAKed with the time left, so JetStream hands it out again exactly when the job
//!   may run or its lease ends; a finished job's dispatch is acknowledged, which removes it.
//!   The leased job's dispatch is NAKed with the lease's ttl: when the lease expires without a
//!   heartbeat having pushed `lease_until` further, the next `lease` sees the dispatch again
//!   and retakes the job (one more attempt), fails it ("lease expired after N attempts") or
//!   ends it cancelled when a cancellation was asked.
//! - Invariant: a job that is not final always has a dispatch in the stream. Enqueue publishes
//!   the dispatch before it creates the record; a dispatch is acknowledged only when its
//!   record is final (or missing for good); a failed attempt re-queued with a backoff
//!   publishes a fresh dispatch (judged "not yet due", NAKed with the remaining backoff) before
//!   acknowledging the one its lease came from; an admin's retry publishes before it
//!   re-queues the record. So a crash between two of these steps leaves at worst a spare
//!   dispatch, or a job that runs when its old dispatch comes back (at the end of the lease it
//!   had), never a job nobody will look at. A dispatch newer than its record's last change
//!   that finds the record missing or final (an enqueue or retry whose record write has not
//!   landed yet) is put back for a moment, for up to a minute, before it is dropped.
//! - A worker that crashes after fetching dispatches, before judging them, leaves them
//!   unacknowledged: JetStream hands them out again after the consumer's `ack_wait`.
//!
//! # Differences from the SQL queue
//!
//! - Priority: JetStream has no priorities. `lease` fetches up to `fetch_batch` available
//!   dispatches of each kind asked for and leases the most urgent of those (expired leases
//!   first, then highest priority, then oldest `run_after`); the others go back at once. With
//!   more due jobs than that, a more urgent job further down the stream may wait its turn.
//! - `list` reads every key of the bucket and then the records, newest first: fine for the
//!   admin pages' scale (thousands of jobs), not for millions. [`NatsJobQueue::prune`]
//!   deletes finished jobs, as the SQL queue's does.
//! - Timing rests on JetStream's redelivery timers (milliseconds), and `now` is each
//!   process's clock, as with the SQL queue.
//!
//! # Layout
//!
//! This module holds the types, the bucket and stream set-up and pruning; `records` the reads
//! and compare-and-set writes of records and the publishing and judging of dispatches;
//! `queue` the [`JobQueue`] operations built on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Job, JobError};

mod queue;
mod records;

/// The most jobs one `list` returns.
const MAX_LIST: u32 = 500;
/// Rounds of fetching one `lease` call makes before it answers `None`.
const MAX_ROUNDS: usize = 8;
/// Compare-and-set attempts before an update gives up.
const MAX_CAS: usize = 16;
/// How long a dispatch whose record is missing, or older than the dispatch and final, is
/// put back for the record write it may be waiting for; and for how long at most.
const HOLD: Duration = Duration::from_millis(200);
const HOLD_FOR_MS: i64 = 60_000;
/// The longest a dispatch is put aside: a job due later is looked at again by then (a
/// cancelled one's dispatch goes at the latest then).
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// Settings of [`NatsJobQueue`].
#[derive(Debug, Clone, PartialEq)]
pub struct NatsJobsConfig {
    /// The work-queue stream of dispatches.
    pub stream: String,
    /// Dispatches of kind `k` are published on `<subject_root>.<k>`.
    pub subject_root: String,
    /// The key-value bucket of job records.
    pub bucket: String,
    /// How long a fetched dispatch may wait for its verdict before JetStream hands it out
    /// again (covers a worker that crashed in the middle of `lease`).
    pub ack_wait: Duration,
    /// Dispatches fetched per kind by one `lease` round; the most urgent of them is leased.
    pub fetch_batch: usize,
}

impl Default for NatsJobsConfig {
    fn default() -> Self {
        Self {
            stream: "CONFAB_JOBS".to_owned(),
            subject_root: "confab.jobs".to_owned(),
            bucket: "confab_jobs".to_owned(),
            ack_wait: Duration::from_secs(30),
            fetch_batch: 16,
        }
    }
}

/// A job as stored in the bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    job: Job,
    /// The current lease's token, while running.
    #[serde(default)]
    token: Option<Uuid>,
    /// Where to acknowledge the dispatch the current lease came from (its reply subject) and
    /// its stream sequence.
    #[serde(default)]
    dispatch: Option<(String, u64)>,
}

/// What a dispatch message carries.
#[derive(Debug, Serialize, Deserialize)]
struct Dispatch {
    id: Uuid,
    /// Unix ms when it was published.
    at: i64,
}

/// A record with the revision it was read at.
struct Found {
    record: Record,
    revision: u64,
}

/// A dispatch whose job may be leased now.
struct Candidate {
    message: jetstream::Message,
    found: Found,
    /// The job is running under an expired lease (retaken before queued jobs, as the SQL
    /// queue does).
    expired: bool,
}

/// The [`JobQueue`] of split mode; see the module documentation for how it works.
#[derive(Clone)]
pub struct NatsJobQueue {
    context: jetstream::Context,
    stream: jetstream::stream::Stream,
    kv: kv::Store,
    config: NatsJobsConfig,
    /// The durable consumer of each kind, once looked up.
    consumers: Arc<Mutex<HashMap<String, PullConsumer>>>,
    /// One wake signal per kind, for workers in this process.
    wake: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl std::fmt::Debug for NatsJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsJobQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> JobError {
    JobError::Unavailable(error.to_string())
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The time from `now` until `at`, at most [`MAX_DELAY`].
fn until(now: i64, at: i64) -> Duration {
    let ms = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
    Duration::from_millis(ms).min(MAX_DELAY)
}

/// A progress percentage as stored: within 0–100, and `None` for NaN (as the SQL queue).
fn clamp_percent(percent: Option<f64>) -> Option<f64> {
    percent.filter(|p| !p.is_nan()).map(|p| p.clamp(0.0, 100.0))
}

/// The verdict on a dispatch, sent as a confirmed acknowledgement so that the next fetch
/// (this process's or another's) already sees it.
async fn settle(message: &jetstream::Message, kind: AckKind) -> Result<(), JobError> {
    message.double_ack_with(kind).await.map_err(unavailable)
}

/// NAK that hands the dispatch out again after `delay` (at once for zero).
fn later(delay: Duration) -> AckKind {
    if delay.is_zero() {
        AckKind::Nak(None)
    } else {
        AckKind::Nak(Some(delay))
    }
}

/// The key-value bucket `name`, created when missing. The stream is made here with the
/// settings `create_key_value` would use, because that call first asks for the account's
/// information, which async-nats cannot parse from NATS 2.9 servers.
async fn bucket(context: &jetstream::Context, name: &str) -> Result<kv::Store, JobError> {
    if let Ok(store) = context.get_key_value(name).await {
        return Ok(store);
    }
    let stream_config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some("Confab jobs".to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        ..Default::default()
    };
    context
        .create_or_update_stream(stream_config)
        .await
        .map_err(|e| JobError::Unavailable(format!("JetStream bucket {name}: {e}")))?;
    context
        .get_key_value(name)
        .await
        .map_err(|e| JobError::Unavailable(format!("JetStream bucket {name}: {e}")))
}

impl NatsJobQueue {
    /// Connects to NATS at `url` and sets up the stream and bucket with default settings.
    pub async fn connect(url: &str) -> Result<Self, JobError> {
        let client = async_nats::ConnectOptions::new()
            .name("confab")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| JobError::Unavailable(format!("connecting to NATS at {url}: {e}")))?;
        Self::new(client, NatsJobsConfig::default()).await
    }

    /// Sets up the work-queue stream and the bucket on an existing connection (creating
    /// them when missing).
    pub async fn new(client: Client, config: NatsJobsConfig) -> Result<Self, JobError> {
        let context = jetstream::new(client);
        let stream_config = jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_root)],
            storage: StorageType::File,
            retention: RetentionPolicy::WorkQueue,
            description: Some("Confab job dispatches".to_owned()),
            ..Default::default()
        };
        context
            .create_or_update_stream(stream_config)
            .await
            .map_err(|e| {
                JobError::Unavailable(format!("JetStream stream {}: {e}", config.stream))
            })?;
        let stream = context
            .get_stream(&config.stream)
            .await
            .map_err(unavailable)?;
        let kv = bucket(&context, &config.bucket).await?;
        Ok(Self {
            context,
            stream,
            kv,
            config,
            consumers: Arc::default(),
            wake: Arc::default(),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &NatsJobsConfig {
        &self.config
    }

    /// The JetStream context, for tests and tools.
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// Deletes finished jobs (succeeded, failed, cancelled) last updated before `before_ms`;
    /// returns how many went.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, JobError> {
        let mut pruned = 0;
        for id in self.ids().await? {
            let Some(found) = self.load(id).await? else {
                continue;
            };
            let job = &found.record.job;
            if job.state.is_final() && job.updated_at < before_ms {
                // Only if it did not change since it was read (a retry may have come).
                if self
                    .kv
                    .purge_expect_revision(id.to_string(), Some(found.revision))
                    .await
                    .is_ok()
                {
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }
}
