//! The inference service's audited actions on models.

use confab_core::audit::AuditAction;

/// Every action the inference service writes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelAction {
    /// An admin started a model pull.
    PullStarted,
    /// A model pull finished.
    PullCompleted,
    /// A model pull was cancelled.
    PullCancelled,
    /// A model pull failed.
    PullFailed,
    /// An admin deleted a model.
    Deleted,
}

impl ModelAction {
    /// All of them, for listings and tests.
    pub const ALL: &'static [ModelAction] = &[
        ModelAction::PullStarted,
        ModelAction::PullCompleted,
        ModelAction::PullCancelled,
        ModelAction::PullFailed,
        ModelAction::Deleted,
    ];
}

impl AuditAction for ModelAction {
    fn name(self) -> &'static str {
        match self {
            ModelAction::PullStarted => "model.pull_started",
            ModelAction::PullCompleted => "model.pull_completed",
            ModelAction::PullCancelled => "model.pull_cancelled",
            ModelAction::PullFailed => "model.pull_failed",
            ModelAction::Deleted => "model.deleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_unique_and_listed() {
        confab_core::audit::check_action_names("model", ModelAction::ALL).unwrap();
        assert_eq!(ModelAction::ALL.len(), 5);
    }
}
