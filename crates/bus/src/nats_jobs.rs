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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::nats::{js_name, subject_for};
use crate::{Heartbeat, Job, JobError, JobFilter, JobQueue, JobState, Lease, NewJob, Progress};

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

    fn signal(&self, kind: &str) -> Arc<Notify> {
        let mut wake = self.wake.lock();
        Arc::clone(
            wake.entry(kind.to_owned())
                .or_insert_with(|| Arc::new(Notify::new())),
        )
    }

    fn wake(&self, kind: &str) {
        if let Some(notify) = self.wake.lock().get(kind) {
            notify.notify_one();
        }
    }

    /// The durable consumer of `kind`'s dispatches.
    async fn consumer(&self, kind: &str) -> Result<PullConsumer, JobError> {
        if let Some(consumer) = self.consumers.lock().get(kind) {
            return Ok(consumer.clone());
        }
        let name = js_name(kind);
        let consumer: PullConsumer = self
            .stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subject_for(&self.config.subject_root, kind),
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: DeliverPolicy::All,
                    ack_wait: self.config.ack_wait,
                    // Every job waiting for its time or running holds one unacknowledged
                    // dispatch; the server's default (1,000) would stall a busy queue.
                    max_ack_pending: 1_000_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(unavailable)?;
        self.consumers
            .lock()
            .insert(kind.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Publishes a dispatch for `job` and waits until the stream has it.
    async fn dispatch(&self, job: &Job, at: i64) -> Result<(), JobError> {
        let payload = serde_json::to_vec(&Dispatch { id: job.id, at }).map_err(unavailable)?;
        self.context
            .publish(
                subject_for(&self.config.subject_root, &job.kind),
                payload.into(),
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Acknowledges (removes) the dispatch a lease came from, best effort: if it stays, it is
    /// acknowledged when it next comes up and finds its job final or leased from another.
    async fn drop_dispatch(&self, dispatch: Option<&(String, u64)>) {
        if let Some((reply, _)) = dispatch {
            let _ = self
                .context
                .client()
                .publish(reply.clone(), "+ACK".into())
                .await;
        }
    }

    async fn load(&self, id: Uuid) -> Result<Option<Found>, JobError> {
        let entry = self.kv.entry(id.to_string()).await.map_err(unavailable)?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let record: Record = serde_json::from_slice(&entry.value)
                    .map_err(|e| JobError::Unavailable(format!("bad job record {id}: {e}")))?;
                Ok(Some(Found {
                    record,
                    revision: entry.revision,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Writes `record` if the entry is still at `revision`; `false` when it changed meanwhile.
    async fn store(&self, record: &Record, revision: u64) -> Result<bool, JobError> {
        let value = serde_json::to_vec(record).map_err(unavailable)?;
        match self
            .kv
            .update(record.job.id.to_string(), value.into(), revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Applies `change` to the record of `lease` while it still holds that lease; `None` when
    /// the lease is lost. `change` sees a fresh copy at each compare-and-set attempt.
    async fn update_leased<T>(
        &self,
        lease: &Lease,
        change: impl Fn(&mut Record) -> T,
    ) -> Result<Option<(T, Record)>, JobError> {
        for _ in 0..MAX_CAS {
            let Some(found) = self.load(lease.job.id).await? else {
                return Ok(None);
            };
            let mut record = found.record;
            if record.job.state != JobState::Running || record.token != Some(lease.token) {
                return Ok(None);
            }
            let out = change(&mut record);
            if self.store(&record, found.revision).await? {
                return Ok(Some((out, record)));
            }
        }
        Err(JobError::Unavailable(format!(
            "job {} kept changing under the update",
            lease.job.id
        )))
    }

    /// Applies `change` to a job's record for an admin: `change` answers the refusal when the
    /// job's state does not allow it.
    async fn update_admin(
        &self,
        id: Uuid,
        change: impl Fn(&mut Record) -> Result<(), JobError>,
    ) -> Result<Record, JobError> {
        for _ in 0..MAX_CAS {
            let Some(found) = self.load(id).await? else {
                return Err(JobError::NotFound);
            };
            let mut record = found.record;
            change(&mut record)?;
            if self.store(&record, found.revision).await? {
                return Ok(record);
            }
        }
        Err(JobError::Unavailable(format!(
            "job {id} kept changing under the update"
        )))
    }

    /// Up to `fetch_batch` dispatches of `kind` available now.
    async fn fetch(&self, kind: &str) -> Result<Vec<jetstream::Message>, JobError> {
        let consumer = self.consumer(kind).await?;
        let mut batch = consumer
            .fetch()
            .max_messages(self.config.fetch_batch.max(1))
            .messages()
            .await
            .map_err(unavailable)?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(unavailable)?);
        }
        Ok(messages)
    }

    /// Judges one dispatch: a candidate to lease, or settled here (put back for later,
    /// acknowledged, or its expired job finished).
    async fn judge(
        &self,
        message: jetstream::Message,
        now: i64,
    ) -> Result<Option<Candidate>, JobError> {
        let Ok(dispatch) = serde_json::from_slice::<Dispatch>(&message.payload) else {
            // Not a dispatch: nothing will ever make it one.
            settle(&message, AckKind::Term).await?;
            return Ok(None);
        };
        let young = now.saturating_sub(dispatch.at) < HOLD_FOR_MS;
        let Some(found) = self.load(dispatch.id).await? else {
            // Enqueue publishes before it writes the record.
            let verdict = if young { later(HOLD) } else { AckKind::Ack };
            settle(&message, verdict).await?;
            return Ok(None);
        };
        let job = &found.record.job;
        match job.state {
            JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
                // A retry publishes before it re-queues the record.
                let verdict = if young && job.updated_at < dispatch.at {
                    later(HOLD)
                } else {
                    AckKind::Ack
                };
                settle(&message, verdict).await?;
                Ok(None)
            }
            JobState::Queued if job.run_after > now => {
                settle(&message, later(until(now, job.run_after))).await?;
                Ok(None)
            }
            JobState::Queued => Ok(Some(Candidate {
                message,
                found,
                expired: false,
            })),
            JobState::Running => {
                let lease_until = job.lease_until.unwrap_or(0);
                if lease_until > now {
                    settle(&message, later(until(now, lease_until))).await?;
                    return Ok(None);
                }
                if job.cancel_requested || job.attempts >= job.max_attempts {
                    self.finish_expired(message, found, now).await?;
                    return Ok(None);
                }
                Ok(Some(Candidate {
                    message,
                    found,
                    expired: true,
                }))
            }
        }
    }

    /// Ends a job whose lease expired and that must not run again: cancelled when that was
    /// asked, else failed.
    async fn finish_expired(
        &self,
        message: jetstream::Message,
        found: Found,
        now: i64,
    ) -> Result<(), JobError> {
        let mut record = found.record;
        let job = &mut record.job;
        if job.cancel_requested {
            job.state = JobState::Cancelled;
        } else {
            job.state = JobState::Failed;
            job.error = Some(format!("lease expired after {} attempts", job.attempts));
        }
        job.worker = None;
        job.lease_until = None;
        job.updated_at = now;
        let old = record.dispatch.take();
        record.token = None;
        if self.store(&record, found.revision).await? {
            settle(&message, AckKind::Ack).await?;
            if old.as_ref().map(|(_, seq)| *seq) != message.info().ok().map(|i| i.stream_sequence) {
                self.drop_dispatch(old.as_ref()).await;
            }
        } else {
            // It changed meanwhile: judge it again at the next fetch.
            settle(&message, AckKind::Nak(None)).await?;
        }
        Ok(())
    }

    /// Every job id in the bucket.
    async fn ids(&self) -> Result<Vec<Uuid>, JobError> {
        let mut keys = self.kv.keys().await.map_err(unavailable)?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            if let Ok(id) = Uuid::parse_str(&key.map_err(unavailable)?) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl JobQueue for NatsJobQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Job, JobError> {
        let now = confab_core::now_ms();
        let job = job.into_job(confab_core::new_id(), now);
        // The dispatch first: a record must never be without one (see the module docs).
        self.dispatch(&job, now).await?;
        let record = Record {
            job,
            token: None,
            dispatch: None,
        };
        let value = serde_json::to_vec(&record).map_err(unavailable)?;
        self.kv
            .create(record.job.id.to_string(), value.into())
            .await
            .map_err(unavailable)?;
        self.wake(&record.job.kind);
        Ok(record.job)
    }

    async fn lease(
        &self,
        kinds: &[&str],
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError> {
        for _ in 0..MAX_ROUNDS {
            let mut messages = Vec::new();
            for kind in kinds {
                messages.extend(self.fetch(kind).await?);
            }
            if messages.is_empty() {
                return Ok(None);
            }
            let now = confab_core::now_ms();
            let mut candidates = Vec::new();
            for message in messages {
                if let Some(candidate) = self.judge(message, now).await? {
                    candidates.push(candidate);
                }
            }
            // Expired leases first (oldest first), then the most urgent due job.
            candidates.sort_by(|a, b| {
                let (a, b) = (
                    (a.expired, &a.found.record.job),
                    (b.expired, &b.found.record.job),
                );
                b.0.cmp(&a.0)
                    .then_with(|| {
                        if a.0 {
                            a.1.lease_until.cmp(&b.1.lease_until)
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    })
                    .then_with(|| b.1.priority.cmp(&a.1.priority))
                    .then_with(|| a.1.run_after.cmp(&b.1.run_after))
                    .then_with(|| a.1.id.cmp(&b.1.id))
            });
            let mut leased = None;
            let mut verdicts = Vec::new();
            for candidate in candidates {
                if leased.is_some() {
                    verdicts.push((candidate.message, AckKind::Nak(None)));
                    continue;
                }
                let Found {
                    mut record,
                    revision,
                } = candidate.found;
                let token = Uuid::now_v7();
                let now = confab_core::now_ms();
                let seq = candidate
                    .message
                    .info()
                    .map(|i| i.stream_sequence)
                    .map_err(unavailable)?;
                let reply = candidate
                    .message
                    .reply
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                let old = record.dispatch.replace((reply, seq));
                record.token = Some(token);
                let job = &mut record.job;
                job.state = JobState::Running;
                job.attempts = job.attempts.saturating_add(1);
                job.progress = None;
                job.progress_message = None;
                job.worker = Some(worker.to_owned());
                job.lease_until = Some(now.saturating_add(ms(ttl)));
                job.updated_at = now;
                if self.store(&record, revision).await? {
                    // This dispatch is the lease's timer now; a spare one can go.
                    if old.as_ref().is_some_and(|(_, old_seq)| *old_seq != seq) {
                        self.drop_dispatch(old.as_ref()).await;
                    }
                    verdicts.push((candidate.message, later(ttl.min(MAX_DELAY))));
                    leased = Some(Lease {
                        job: record.job,
                        token,
                    });
                } else {
                    // Someone changed it meanwhile: judge it again at the next fetch.
                    verdicts.push((candidate.message, AckKind::Nak(None)));
                }
            }
            let settled = futures::future::join_all(
                verdicts
                    .iter()
                    .map(|(message, kind)| settle(message, *kind)),
            )
            .await;
            for result in settled {
                result?;
            }
            if leased.is_some() {
                return Ok(leased);
            }
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        progress: Option<&Progress>,
        ttl: Duration,
    ) -> Result<Heartbeat, JobError> {
        let updated = self
            .update_leased(lease, |record| {
                let now = confab_core::now_ms();
                let job = &mut record.job;
                job.lease_until = Some(now.saturating_add(ms(ttl)));
                job.updated_at = now;
                if let Some(progress) = progress {
                    job.progress = clamp_percent(progress.percent);
                    job.progress_message = progress.message.clone();
                }
                job.cancel_requested
            })
            .await?;
        Ok(match updated {
            None => Heartbeat::Lost,
            Some((true, _)) => Heartbeat::CancelRequested,
            Some((false, _)) => Heartbeat::Extended,
        })
    }

    async fn complete(&self, lease: &Lease, result: serde_json::Value) -> Result<bool, JobError> {
        let updated = self
            .update_leased(lease, |record| {
                let job = &mut record.job;
                job.state = JobState::Succeeded;
                job.result = Some(result.clone());
                job.error = None;
                job.worker = None;
                job.lease_until = None;
                job.updated_at = confab_core::now_ms();
                record.token = None;
                record.dispatch.take()
            })
            .await?;
        match updated {
            Some((dispatch, _)) => {
                self.drop_dispatch(dispatch.as_ref()).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry: bool,
        backoff: Duration,
    ) -> Result<Option<Job>, JobError> {
        let updated = self
            .update_leased(lease, |record| {
                let now = confab_core::now_ms();
                let job = &mut record.job;
                job.state = if job.cancel_requested {
                    JobState::Cancelled
                } else if retry && job.attempts < job.max_attempts {
                    job.run_after = now.saturating_add(ms(backoff));
                    JobState::Queued
                } else {
                    JobState::Failed
                };
                job.error = Some(error.to_owned());
                job.worker = None;
                job.lease_until = None;
                job.updated_at = now;
                record.token = None;
                record.dispatch.take()
            })
            .await?;
        let Some((dispatch, record)) = updated else {
            return Ok(None);
        };
        if record.job.state == JobState::Queued {
            // A fresh dispatch, judged "not yet due" until the backoff passed. Should this
            // fail, the old one stays and brings the job back when the lease would have ended.
            self.dispatch(&record.job, confab_core::now_ms()).await?;
            self.wake(&record.job.kind);
        }
        self.drop_dispatch(dispatch.as_ref()).await;
        Ok(Some(record.job))
    }

    async fn cancelled(&self, lease: &Lease) -> Result<bool, JobError> {
        let updated = self
            .update_leased(lease, |record| {
                let job = &mut record.job;
                job.state = JobState::Cancelled;
                job.worker = None;
                job.lease_until = None;
                job.updated_at = confab_core::now_ms();
                record.token = None;
                record.dispatch.take()
            })
            .await?;
        match updated {
            Some((dispatch, _)) => {
                self.drop_dispatch(dispatch.as_ref()).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn cancel(&self, id: Uuid) -> Result<Job, JobError> {
        let record = self
            .update_admin(id, |record| {
                let job = &mut record.job;
                match job.state {
                    JobState::Queued => job.state = JobState::Cancelled,
                    JobState::Running => job.cancel_requested = true,
                    state => {
                        return Err(JobError::Conflict(format!(
                            "cannot cancel a {} job",
                            state.as_str()
                        )));
                    }
                }
                job.updated_at = confab_core::now_ms();
                Ok(())
            })
            .await?;
        Ok(record.job)
    }

    async fn retry(&self, id: Uuid) -> Result<Job, JobError> {
        let Some(found) = self.load(id).await? else {
            return Err(JobError::NotFound);
        };
        let refusal =
            |state: JobState| JobError::Conflict(format!("cannot retry a {} job", state.as_str()));
        if !matches!(
            found.record.job.state,
            JobState::Failed | JobState::Cancelled
        ) {
            return Err(refusal(found.record.job.state));
        }
        // The dispatch before the record: a crash in between leaves a dispatch that finds the
        // job final and goes, and a job still failed that the admin can retry again.
        let at = confab_core::now_ms();
        self.dispatch(&found.record.job, at).await?;
        let record = self
            .update_admin(id, |record| {
                let job = &mut record.job;
                if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
                    return Err(refusal(job.state));
                }
                let now = confab_core::now_ms().max(at);
                job.state = JobState::Queued;
                job.attempts = 0;
                job.run_after = now;
                job.cancel_requested = false;
                job.result = None;
                job.progress = None;
                job.progress_message = None;
                job.worker = None;
                job.lease_until = None;
                job.updated_at = now;
                record.token = None;
                record.dispatch = None;
                Ok(())
            })
            .await?;
        self.wake(&record.job.kind);
        Ok(record.job)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Job>, JobError> {
        Ok(self.load(id).await?.map(|found| found.record.job))
    }

    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, JobError> {
        let mut ids = self.ids().await?;
        if let Some(before) = filter.before {
            ids.retain(|id| *id < before);
        }
        // UUIDv7: newest first by id.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let limit = usize::try_from(filter.limit.clamp(1, MAX_LIST)).unwrap_or(1);
        let mut jobs = Vec::new();
        let mut records = futures::stream::iter(ids)
            .map(|id| self.load(id))
            .buffered(16);
        while let Some(found) = records.next().await {
            let Some(found) = found? else { continue };
            let job = found.record.job;
            let keep = filter.state.is_none_or(|state| job.state == state)
                && filter.kind.as_ref().is_none_or(|kind| &job.kind == kind)
                && filter
                    .created_by
                    .is_none_or(|user| job.created_by == Some(user));
            if keep {
                jobs.push(job);
                if jobs.len() >= limit {
                    break;
                }
            }
        }
        Ok(jobs)
    }

    fn wake_signal(&self, kind: &str) -> Option<Arc<Notify>> {
        Some(self.signal(kind))
    }
}
