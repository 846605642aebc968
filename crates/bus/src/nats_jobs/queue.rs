//! The [`JobQueue`] operations of [`NatsJobQueue`]: enqueue, lease, heartbeat, the ends of an
//! attempt, an admin's cancel and retry, and the listings.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Found, MAX_DELAY, MAX_LIST, MAX_ROUNDS, NatsJobQueue, Record, clamp_percent, later, ms, settle,
    unavailable,
};
use crate::{Heartbeat, Job, JobError, JobFilter, JobQueue, JobState, Lease, NewJob, Progress};

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
