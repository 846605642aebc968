//! The records and dispatches of [`NatsJobQueue`]: loading and compare-and-set writes of job
//! records, publishing, fetching and judging dispatches, and the wake-up signal of each kind.

use std::sync::Arc;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::kv;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Candidate, Dispatch, Found, HOLD, HOLD_FOR_MS, MAX_CAS, NatsJobQueue, Record, later, settle,
    unavailable, until,
};
use crate::nats::{js_name, subject_for};
use crate::{Job, JobError, JobState, Lease};

impl NatsJobQueue {
    pub(super) fn signal(&self, kind: &str) -> Arc<Notify> {
        let mut wake = self.wake.lock();
        Arc::clone(
            wake.entry(kind.to_owned())
                .or_insert_with(|| Arc::new(Notify::new())),
        )
    }

    pub(super) fn wake(&self, kind: &str) {
        if let Some(notify) = self.wake.lock().get(kind) {
            notify.notify_one();
        }
    }

    /// The durable consumer of `kind`'s dispatches.
    pub(super) async fn consumer(&self, kind: &str) -> Result<PullConsumer, JobError> {
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
    pub(super) async fn dispatch(&self, job: &Job, at: i64) -> Result<(), JobError> {
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
    pub(super) async fn drop_dispatch(&self, dispatch: Option<&(String, u64)>) {
        if let Some((reply, _)) = dispatch {
            let _ = self
                .context
                .client()
                .publish(reply.clone(), "+ACK".into())
                .await;
        }
    }

    pub(super) async fn load(&self, id: Uuid) -> Result<Option<Found>, JobError> {
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
    pub(super) async fn store(&self, record: &Record, revision: u64) -> Result<bool, JobError> {
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
    pub(super) async fn update_leased<T>(
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
    pub(super) async fn update_admin(
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
    pub(super) async fn fetch(&self, kind: &str) -> Result<Vec<jetstream::Message>, JobError> {
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
    pub(super) async fn judge(
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
    pub(super) async fn finish_expired(
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
    pub(super) async fn ids(&self) -> Result<Vec<Uuid>, JobError> {
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
