//! The chat service's audited actions.

use confab_core::audit::AuditAction;

/// Every action the chat service writes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatAction {
    /// A conversation was shared by link.
    ShareCreated,
    /// A share link was revoked.
    ShareRevoked,
}

impl ChatAction {
    /// All of them, for listings and tests.
    pub const ALL: &'static [ChatAction] = &[ChatAction::ShareCreated, ChatAction::ShareRevoked];
}

impl AuditAction for ChatAction {
    fn name(self) -> &'static str {
        match self {
            ChatAction::ShareCreated => "chat.share_created",
            ChatAction::ShareRevoked => "chat.share_revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_unique_and_listed() {
        confab_core::audit::check_action_names("chat", ChatAction::ALL).unwrap();
        assert_eq!(ChatAction::ALL.len(), 2);
    }
}
