//! Where a pull stands, free of I/O: its states and which are final, the status clients see,
//! the record the [`PullStore`](crate::ports::PullStore) keeps, and what the end of one run
//! means for the pull and its job (`Ended::next`).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a pull stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl PullState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PullState::Queued => "queued",
            PullState::Running => "running",
            PullState::Completed => "completed",
            PullState::Failed => "failed",
            PullState::Cancelled => "cancelled",
        }
    }

    /// A stored name; one this version does not know reads as failed, so it is never
    /// resumed.
    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => PullState::Queued,
            "running" => PullState::Running,
            "completed" => PullState::Completed,
            "cancelled" => PullState::Cancelled,
            _ => PullState::Failed,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            PullState::Completed | PullState::Failed | PullState::Cancelled
        )
    }
}

/// A pull as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PullStatus {
    pub id: Uuid,
    pub source: String,
    pub model: String,
    pub state: PullState,
    pub bytes: u64,
    pub total: Option<u64>,
    pub percent: Option<f64>,
    /// Bytes per second.
    pub rate: f64,
    pub error: Option<String>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// The percentage `bytes` are of `total`, when the total is known and not zero.
pub fn percent(bytes: u64, total: Option<u64>) -> Option<f64> {
    total
        .filter(|t| *t > 0)
        .map(|t| bytes as f64 * 100.0 / t as f64)
}

/// A pull being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPull {
    pub id: Uuid,
    /// What was asked for, as given.
    pub source: String,
    pub sha256: Option<String>,
    /// The model's name once pulled.
    pub model: String,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
}

/// Where a pull stands, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub state: PullState,
    pub bytes: u64,
    pub total: Option<u64>,
    pub error: Option<String>,
}

/// A recorded pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRecord {
    pub id: Uuid,
    pub source: String,
    pub sha256: Option<String>,
    pub model: String,
    pub state: PullState,
    pub bytes: u64,
    pub total: Option<u64>,
    pub error: Option<String>,
    /// The job that runs it, once queued as one.
    pub job_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PullRecord {
    /// The status clients see of a pull not running in this process (no rate).
    pub fn status(&self) -> PullStatus {
        PullStatus {
            id: self.id,
            source: self.source.clone(),
            model: self.model.clone(),
            state: self.state,
            bytes: self.bytes,
            total: self.total,
            percent: percent(self.bytes, self.total),
            rate: 0.0,
            error: self.error.clone(),
            created_at: self.created_at,
        }
    }
}

/// How one run of a pull ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// Recorded `completed` by the run itself.
    Completed,
    /// Why, and whether another attempt cannot help (a refused source, a file too large).
    Failed(String, bool),
    Cancelled,
    /// The process is stopping: the pull stays running for the next start.
    Shutdown,
}

/// What a run's end means for a pull run as a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// Completed: nothing more to record.
    Done,
    /// The process is stopping: the row stays `running` and the job is retried by whoever
    /// takes it next (resuming from the partial file).
    Interrupted,
    /// The pull ends in this final state, with this error; the job is not retried.
    End(PullState, Option<String>),
    /// Another attempt may help: the pull goes back to `queued`, keeping its bytes, with the
    /// error as the reason meanwhile; the job is retried.
    Requeue(String),
}

impl Ended {
    /// The transition after a run: a failure is final when it is permanent or the job has
    /// no attempt left; a cancellation always is.
    pub(super) fn next(self, last_attempt: bool) -> Next {
        match self {
            Ended::Completed => Next::Done,
            Ended::Shutdown => Next::Interrupted,
            Ended::Cancelled => Next::End(PullState::Cancelled, None),
            Ended::Failed(error, permanent) if permanent || last_attempt => {
                Next::End(PullState::Failed, Some(error))
            }
            Ended::Failed(error, _) => Next::Requeue(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_unknown_ones_are_final() {
        for state in [
            PullState::Queued,
            PullState::Running,
            PullState::Completed,
            PullState::Failed,
            PullState::Cancelled,
        ] {
            assert_eq!(PullState::parse(state.as_str()), state);
        }
        assert_eq!(PullState::parse("paused"), PullState::Failed);
        assert!(!PullState::Queued.is_final() && !PullState::Running.is_final());
        assert!(PullState::Cancelled.is_final());
    }

    #[test]
    fn a_run_ends_as_its_outcome_and_the_attempts_left_say() {
        let failed = |permanent| Ended::Failed("boom".into(), permanent);
        assert_eq!(failed(false).next(false), Next::Requeue("boom".into()));
        for (permanent, last) in [(true, false), (false, true), (true, true)] {
            assert_eq!(
                failed(permanent).next(last),
                Next::End(PullState::Failed, Some("boom".into()))
            );
        }
        assert_eq!(
            Ended::Cancelled.next(false),
            Next::End(PullState::Cancelled, None)
        );
        assert_eq!(Ended::Shutdown.next(true), Next::Interrupted);
        assert_eq!(Ended::Completed.next(true), Next::Done);
    }

    #[test]
    fn a_record_shows_its_percentage() {
        let record = PullRecord {
            id: Uuid::nil(),
            source: "s".into(),
            sha256: None,
            model: "m".into(),
            state: PullState::Queued,
            bytes: 250,
            total: Some(1000),
            error: Some("reset".into()),
            job_id: None,
            created_by: None,
            created_at: 5,
            updated_at: 6,
        };
        let status = record.status();
        assert_eq!(status.percent, Some(25.0));
        assert_eq!(
            (status.bytes, status.total, status.rate),
            (250, Some(1000), 0.0)
        );
        assert_eq!(percent(1, Some(0)), None);
        assert_eq!(percent(1, None), None);
    }
}
