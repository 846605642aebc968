//! The admin service's audited actions (the audit log's own export is [`AuditLogAction`]).

use confab_core::audit::AuditAction;

/// Every action the admin service writes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminAction {
    /// An admin changed runtime settings.
    ConfigChanged,
    /// An admin cancelled a background job.
    JobCancelled,
    /// An admin retried a failed background job.
    JobRetried,
}

impl AdminAction {
    /// All of them, for listings and tests.
    pub const ALL: &'static [AdminAction] = &[
        AdminAction::ConfigChanged,
        AdminAction::JobCancelled,
        AdminAction::JobRetried,
    ];
}

impl AuditAction for AdminAction {
    fn name(self) -> &'static str {
        match self {
            AdminAction::ConfigChanged => "admin.config_changed",
            AdminAction::JobCancelled => "admin.job_cancelled",
            AdminAction::JobRetried => "admin.job_retried",
        }
    }
}

/// What the audit log records about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditLogAction {
    /// An admin exported entries of the log.
    Exported,
}

impl AuditLogAction {
    /// All of them, for listings and tests.
    pub const ALL: &'static [AuditLogAction] = &[AuditLogAction::Exported];
}

impl AuditAction for AuditLogAction {
    fn name(self) -> &'static str {
        match self {
            AuditLogAction::Exported => "audit.exported",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_unique_and_listed() {
        confab_core::audit::check_action_names("admin", AdminAction::ALL).unwrap();
        assert_eq!(AdminAction::ALL.len(), 3);
        confab_core::audit::check_action_names("audit", AuditLogAction::ALL).unwrap();
    }
}
