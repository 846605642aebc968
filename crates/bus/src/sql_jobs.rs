//! [`JobQueue`] in the database (SQLite or PostgreSQL): one `jobs` table, leased with a single
//! `UPDATE … WHERE id = (SELECT …) RETURNING` statement so that any number of workers, in any
//! number of processes, never take the same job twice. PostgreSQL skips rows other leasers
//! hold (`FOR UPDATE SKIP LOCKED`); SQLite runs each statement alone on the writer connection
//! (and takes the database's write lock before reading, so other processes wait their turn).
//!
//! A lease whose time ran out is retaken before queued jobs are (it has waited longest), and
//! counts as an attempt. When it has no attempt left, the same statement fails it ("lease
//! expired after N attempts"); when its cancellation was asked, it ends cancelled. A job
//! whose cancellation was asked never runs again: a failed attempt ends it cancelled too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_store::{Backend, Db, ServiceMigrations, StoreError};
use parking_lot::Mutex;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::jobs::{
    Heartbeat, Job, JobError, JobFilter, JobQueue, JobState, KindStats, Lease, NewJob, Progress,
};

/// The bus's migrations: the `jobs` table and the durable events outbox.
pub fn migrations() -> ServiceMigrations {
    ServiceMigrations::new(
        "bus",
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    )
}

/// The most jobs one `list` returns.
const MAX_LIST: u32 = 500;

/// How many finished rows one lease call may reap (expired leases with no attempt left, or
/// cancelled) before it gives up looking for a job this time.
const MAX_REAPED_PER_LEASE: usize = 32;

/// The columns a [`Job`] is read from.
macro_rules! job_columns {
    () => {
        "id, kind, payload, priority, state, attempts, max_attempts, run_after, progress, \
         progress_message, result, error, cancel_requested, created_by, created_at, updated_at, \
         worker, lease_token, lease_until"
    };
}

/// The lease statement. Parameters: `$1` worker, `$2` lease token, `$3` lease end, `$4` now,
/// `$5` the kind (or the kinds as a JSON array). The row chosen is an expired lease of one of
/// the kinds, else the most urgent due queued job; an expired lease that must not run again
/// is finished instead (the caller sees its final state and asks again).
macro_rules! lease_sql {
    ($kind:literal, $lock:literal) => {
        concat!(
            "UPDATE jobs SET \
             state = CASE WHEN state = 'running' AND cancel_requested = 1 THEN 'cancelled' \
                          WHEN state = 'running' AND attempts >= max_attempts THEN 'failed' \
                          ELSE 'running' END, \
             error = CASE WHEN state = 'running' AND cancel_requested = 0 AND attempts >= max_attempts \
                          THEN 'lease expired after ' || attempts || ' attempts' ELSE error END, \
             attempts = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN attempts ELSE attempts + 1 END, \
             progress = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN progress ELSE NULL END, \
             progress_message = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN progress_message ELSE NULL END, \
             worker = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN NULL ELSE $1 END, \
             lease_token = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN NULL ELSE $2 END, \
             lease_until = CASE WHEN state = 'running' AND (cancel_requested = 1 OR attempts >= max_attempts) \
                          THEN NULL ELSE $3 END, \
             updated_at = $4 \
             WHERE id = COALESCE(\
             (SELECT id FROM jobs WHERE state = 'running' AND lease_until < $4 AND ",
            $kind,
            " ORDER BY lease_until LIMIT 1",
            $lock,
            "), (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= $4 AND ",
            $kind,
            " ORDER BY priority DESC, run_after, id LIMIT 1",
            $lock,
            ")) RETURNING ",
            job_columns!()
        )
    };
}

/// The lease statements of one backend: for one kind (an equality the index answers in
/// order) and for several (a JSON array parameter; the Any driver cannot bind arrays).
struct LeaseSql {
    one: &'static str,
    many: &'static str,
}

const SQLITE_LEASE: LeaseSql = LeaseSql {
    one: lease_sql!("kind = $5", ""),
    many: lease_sql!("kind IN (SELECT value FROM json_each($5))", ""),
};

const POSTGRES_LEASE: LeaseSql = LeaseSql {
    one: lease_sql!("kind = $5", " FOR UPDATE SKIP LOCKED"),
    many: lease_sql!(
        "kind IN (SELECT jsonb_array_elements_text(CAST($5 AS jsonb)))",
        " FOR UPDATE SKIP LOCKED"
    ),
};

/// The job queue in the database.
#[derive(Clone)]
pub struct SqlJobQueue {
    db: Db,
    /// One wake signal per kind, for workers in this process.
    wake: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl std::fmt::Debug for SqlJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlJobQueue")
            .field("backend", &self.db.backend())
            .finish_non_exhaustive()
    }
}

impl SqlJobQueue {
    /// The queue over `db`, whose bus [`migrations`] must be applied.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::default(),
        }
    }

    fn signal(&self, kind: &str) -> Arc<Notify> {
        let mut wake = self.wake.lock();
        match wake.get(kind) {
            Some(notify) => Arc::clone(notify),
            None => {
                let notify = Arc::new(Notify::new());
                wake.insert(kind.to_owned(), Arc::clone(&notify));
                notify
            }
        }
    }

    fn wake(&self, kind: &str) {
        if let Some(notify) = self.wake.lock().get(kind) {
            notify.notify_one();
        }
    }

    /// Deletes finished jobs (succeeded, failed, cancelled) last updated before `before_ms`;
    /// returns how many went.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, JobError> {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') AND updated_at < $1",
        )
        .bind(before_ms)
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    /// The state of a job that a conditional update did not touch: `NotFound`, or `Conflict`
    /// naming its state.
    async fn refusal(&self, id: Uuid, what: &str) -> JobError {
        match self.get(id).await {
            Ok(Some(job)) => {
                JobError::Conflict(format!("cannot {what} a {} job", job.state.as_str()))
            }
            Ok(None) => JobError::NotFound,
            Err(e) => e,
        }
    }
}

fn db_error(error: sqlx::Error) -> JobError {
    JobError::Unavailable(StoreError::from(error).to_string())
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

fn parse_uuid(text: &str) -> Result<Uuid, JobError> {
    Uuid::parse_str(text).map_err(|e| JobError::Unavailable(format!("bad id in jobs: {e}")))
}

fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A progress percentage as stored: within 0–100, and `None` for NaN.
fn clamp_percent(percent: Option<f64>) -> Option<f64> {
    percent.filter(|p| !p.is_nan()).map(|p| p.clamp(0.0, 100.0))
}

fn job_from_row(row: &AnyRow) -> Result<Job, JobError> {
    let get = |e: sqlx::Error| db_error(e);
    let id: String = row.try_get("id").map_err(get)?;
    let state: String = row.try_get("state").map_err(get)?;
    let payload: String = row.try_get("payload").map_err(get)?;
    let result: Option<String> = row.try_get("result").map_err(get)?;
    let created_by: Option<String> = row.try_get("created_by").map_err(get)?;
    let priority: i64 = row.try_get("priority").map_err(get)?;
    let cancel_requested: i64 = row.try_get("cancel_requested").map_err(get)?;
    Ok(Job {
        id: parse_uuid(&id)?,
        kind: row.try_get("kind").map_err(get)?,
        payload: parse_json(&payload),
        priority: i32::try_from(priority).unwrap_or(0),
        state: JobState::parse(&state)
            .ok_or_else(|| JobError::Unavailable(format!("unknown job state {state:?}")))?,
        attempts: to_u32(row.try_get("attempts").map_err(get)?),
        max_attempts: to_u32(row.try_get("max_attempts").map_err(get)?),
        run_after: row.try_get("run_after").map_err(get)?,
        progress: row.try_get("progress").map_err(get)?,
        progress_message: row.try_get("progress_message").map_err(get)?,
        result: result.as_deref().map(parse_json),
        error: row.try_get("error").map_err(get)?,
        cancel_requested: cancel_requested != 0,
        created_by: created_by.as_deref().map(parse_uuid).transpose()?,
        created_at: row.try_get("created_at").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
        worker: row.try_get("worker").map_err(get)?,
        lease_until: row.try_get("lease_until").map_err(get)?,
    })
}

#[async_trait]
impl JobQueue for SqlJobQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Job, JobError> {
        let now = confab_core::now_ms();
        let job = job.into_job(confab_core::new_id(), now);
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, priority, state, attempts, max_attempts, \
             run_after, cancel_requested, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, 0, $7, $8, $8)",
        )
        .bind(job.id.to_string())
        .bind(job.kind.as_str())
        .bind(job.payload.to_string())
        .bind(i64::from(job.priority))
        .bind(i64::from(job.max_attempts))
        .bind(job.run_after)
        .bind(job.created_by.map(|u| u.to_string()))
        .bind(now)
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        self.wake(&job.kind);
        Ok(job)
    }

    async fn lease(
        &self,
        kinds: &[&str],
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, JobError> {
        let statements = match self.db.backend() {
            Backend::Sqlite => &SQLITE_LEASE,
            Backend::Postgres => &POSTGRES_LEASE,
        };
        let (sql, kind) = match kinds {
            [] => return Ok(None),
            [one] => (statements.one, (*one).to_owned()),
            many => (
                statements.many,
                serde_json::to_string(many).map_err(|e| JobError::Unavailable(e.to_string()))?,
            ),
        };
        // Each pass either leases a job or finishes an expired one that may not run again.
        for _ in 0..MAX_REAPED_PER_LEASE {
            let token = Uuid::now_v7();
            let now = confab_core::now_ms();
            let row = sqlx::query(sql)
                .bind(worker)
                .bind(token.to_string())
                .bind(now.saturating_add(ms(ttl)))
                .bind(now)
                .bind(kind.as_str())
                .fetch_optional(self.db.writer())
                .await
                .map_err(db_error)?;
            let Some(row) = row else { return Ok(None) };
            let job = job_from_row(&row)?;
            if job.state == JobState::Running {
                return Ok(Some(Lease { job, token }));
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
        let now = confab_core::now_ms();
        let until = now.saturating_add(ms(ttl));
        let query = match progress {
            Some(progress) => sqlx::query(
                "UPDATE jobs SET lease_until = $1, updated_at = $2, progress = $3, \
                 progress_message = $4 WHERE id = $5 AND lease_token = $6 AND state = 'running' \
                 RETURNING cancel_requested",
            )
            .bind(until)
            .bind(now)
            .bind(clamp_percent(progress.percent))
            .bind(progress.message.clone()),
            None => sqlx::query(
                "UPDATE jobs SET lease_until = $1, updated_at = $2 \
                 WHERE id = $3 AND lease_token = $4 AND state = 'running' \
                 RETURNING cancel_requested",
            )
            .bind(until)
            .bind(now),
        };
        let row = query
            .bind(lease.job.id.to_string())
            .bind(lease.token.to_string())
            .fetch_optional(self.db.writer())
            .await
            .map_err(db_error)?;
        Ok(match row {
            None => Heartbeat::Lost,
            Some(row) => {
                let cancel: i64 = row.try_get("cancel_requested").map_err(db_error)?;
                if cancel != 0 {
                    Heartbeat::CancelRequested
                } else {
                    Heartbeat::Extended
                }
            }
        })
    }

    async fn complete(&self, lease: &Lease, result: serde_json::Value) -> Result<bool, JobError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'succeeded', result = $1, error = NULL, worker = NULL, \
             lease_token = NULL, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND state = 'running'",
        )
        .bind(result.to_string())
        .bind(confab_core::now_ms())
        .bind(lease.job.id.to_string())
        .bind(lease.token.to_string())
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry: bool,
        backoff: Duration,
    ) -> Result<Option<Job>, JobError> {
        let now = confab_core::now_ms();
        let row = sqlx::query(concat!(
            "UPDATE jobs SET \
             state = CASE WHEN cancel_requested = 1 THEN 'cancelled' \
                          WHEN $1 = 1 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
             run_after = CASE WHEN cancel_requested = 0 AND $1 = 1 AND attempts < max_attempts \
                          THEN $2 ELSE run_after END, \
             error = $3, worker = NULL, lease_token = NULL, lease_until = NULL, updated_at = $4 \
             WHERE id = $5 AND lease_token = $6 AND state = 'running' RETURNING ",
            job_columns!()
        ))
        .bind(i64::from(retry))
        .bind(now.saturating_add(ms(backoff)))
        .bind(error)
        .bind(now)
        .bind(lease.job.id.to_string())
        .bind(lease.token.to_string())
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn cancelled(&self, lease: &Lease) -> Result<bool, JobError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', worker = NULL, lease_token = NULL, \
             lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND state = 'running'",
        )
        .bind(confab_core::now_ms())
        .bind(lease.job.id.to_string())
        .bind(lease.token.to_string())
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn cancel(&self, id: Uuid) -> Result<Job, JobError> {
        let row = sqlx::query(concat!(
            "UPDATE jobs SET \
             state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, \
             cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END, \
             updated_at = $1 WHERE id = $2 AND state IN ('queued', 'running') RETURNING ",
            job_columns!()
        ))
        .bind(confab_core::now_ms())
        .bind(id.to_string())
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(self.refusal(id, "cancel").await),
        }
    }

    async fn retry(&self, id: Uuid) -> Result<Job, JobError> {
        let row = sqlx::query(concat!(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $1, cancel_requested = 0, \
             result = NULL, progress = NULL, progress_message = NULL, worker = NULL, \
             lease_token = NULL, lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND state IN ('failed', 'cancelled') RETURNING ",
            job_columns!()
        ))
        .bind(confab_core::now_ms())
        .bind(id.to_string())
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => {
                let job = job_from_row(&row)?;
                self.wake(&job.kind);
                Ok(job)
            }
            None => Err(self.refusal(id, "retry").await),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<Job>, JobError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, JobError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR created_by = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        ))
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.kind.as_deref())
        .bind(filter.created_by.map(|u| u.to_string()))
        .bind(filter.before.map(|u| u.to_string()))
        .bind(i64::from(filter.limit.clamp(1, MAX_LIST)))
        .fetch_all(self.db.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(job_from_row).collect()
    }

    fn wake_signal(&self, kind: &str) -> Option<Arc<Notify>> {
        Some(self.signal(kind))
    }

    async fn stats(&self, now_ms: i64) -> Result<Option<Vec<KindStats>>, JobError> {
        // `jobs_state` (state, id) answers the filter: the cost grows with the unfinished
        // jobs, not with the finished ones kept until pruning.
        let rows = sqlx::query(
            "SELECT kind, state, COUNT(*) AS n, \
             MIN(CASE WHEN state = 'queued' AND run_after <= $1 THEN run_after END) AS oldest \
             FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind, state",
        )
        .bind(now_ms)
        .fetch_all(self.db.pool())
        .await
        .map_err(db_error)?;
        let mut by_kind: std::collections::BTreeMap<String, KindStats> = Default::default();
        for row in &rows {
            let kind: String = row.try_get("kind").map_err(db_error)?;
            let state: String = row.try_get("state").map_err(db_error)?;
            let n: i64 = row.try_get("n").map_err(db_error)?;
            let oldest: Option<i64> = row.try_get("oldest").map_err(db_error)?;
            let entry = by_kind.entry(kind.clone()).or_insert_with(|| KindStats {
                kind,
                ..KindStats::default()
            });
            let n = u64::try_from(n).unwrap_or(0);
            if state == "queued" {
                entry.queued = n;
                entry.oldest_due = oldest;
            } else {
                entry.running = n;
            }
        }
        Ok(Some(by_kind.into_values().collect()))
    }
}
