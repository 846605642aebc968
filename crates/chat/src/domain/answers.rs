//! How an answer ended: the status saved with it, decided from what the task generating it saw.

use super::MessageStatus;

/// The error an answer carries when the model's stream ended without its final event.
pub const UNFINISHED_ANSWER: &str = "the model's answer ended without finishing";

/// What a generation saw by the time it stopped reading the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generation {
    /// The user asked to stop it.
    pub stop_requested: bool,
    /// It was cancelled without the user asking: the process is shutting down.
    pub cancelled: bool,
    /// Why the model failed, as the user may read it.
    pub failure: Option<String>,
    /// The model's final event (with the usage) arrived.
    pub finished: bool,
}

impl Generation {
    /// The status to save and the error to show with it. The user's stop comes first (it also
    /// cancels the generation, which would otherwise read as a shutdown); then a shutdown,
    /// which cuts the answer off like a crash but with its text saved; then a failure; and a
    /// stream that ended without its final event is a failure too, never `complete`.
    pub fn ending(self) -> (MessageStatus, Option<String>) {
        if self.stop_requested {
            return (MessageStatus::Stopped, self.failure);
        }
        if self.cancelled {
            return (MessageStatus::Interrupted, self.failure);
        }
        match self.failure {
            Some(failure) => (MessageStatus::Error, Some(failure)),
            None if !self.finished => (MessageStatus::Error, Some(UNFINISHED_ANSWER.to_owned())),
            None => (MessageStatus::Complete, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_ends_by_what_happened_first_in_importance() {
        let finished = Generation {
            finished: true,
            ..Generation::default()
        };
        assert_eq!(finished.clone().ending(), (MessageStatus::Complete, None));
        // A stop cancels too: it is a stop, not a shutdown.
        let stopped = Generation {
            stop_requested: true,
            cancelled: true,
            ..Generation::default()
        };
        assert_eq!(stopped.ending(), (MessageStatus::Stopped, None));
        let shut_down = Generation {
            cancelled: true,
            ..finished.clone()
        };
        assert_eq!(shut_down.ending(), (MessageStatus::Interrupted, None));
        let failed = Generation {
            failure: Some("the model is unavailable".into()),
            ..Generation::default()
        };
        assert_eq!(
            failed.clone().ending(),
            (
                MessageStatus::Error,
                Some("the model is unavailable".to_owned())
            )
        );
        // A failure seen before the stop is kept with the stopped answer.
        let failed_then_stopped = Generation {
            stop_requested: true,
            cancelled: true,
            ..failed
        };
        assert_eq!(
            failed_then_stopped.ending(),
            (
                MessageStatus::Stopped,
                Some("the model is unavailable".to_owned())
            )
        );
        // The stream ended without its final event: never complete.
        assert_eq!(
            Generation::default().ending(),
            (MessageStatus::Error, Some(UNFINISHED_ANSWER.to_owned()))
        );
    }
}
