//! The auth service's audited actions.

use confab_core::audit::AuditAction;

/// Every action the auth service writes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthAction {
    /// An account was registered (or a registration refused).
    Register,
    /// A sign-in, successful or not.
    Login,
    /// Sign-ins from an address or for an account were slowed down.
    LoginThrottled,
    /// A refresh token was used twice; the session was ended.
    RefreshReuse,
    /// A session was ended by its user.
    Logout,
    /// A user changed their own profile.
    ProfileUpdated,
    /// A user changed their own password.
    PasswordChange,
    /// An admin issued a password reset.
    PasswordReset,
    /// A reset token was used to set a new password.
    PasswordResetCompleted,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An operator created a user at the command line.
    UserCreated,
    /// An admin changed a user's role.
    RoleChanged,
    /// A pending account was approved.
    UserApproved,
    /// An account was disabled.
    UserDisabled,
    /// An account's status changed in another way.
    UserStatusChanged,
    /// An admin locked an account.
    UserLocked,
    /// An admin unlocked an account.
    UserUnlocked,
    /// An account was deleted.
    UserDeleted,
    /// A group was created.
    GroupCreated,
    /// A group was deleted.
    GroupDeleted,
    /// A user joined a group.
    GroupMemberAdded,
    /// A user left a group.
    GroupMemberRemoved,
    /// An operator rotated the token signing key.
    SigningKeyRotated,
}

impl AuthAction {
    /// All of them, for listings and tests.
    pub const ALL: &'static [AuthAction] = &[
        AuthAction::Register,
        AuthAction::Login,
        AuthAction::LoginThrottled,
        AuthAction::RefreshReuse,
        AuthAction::Logout,
        AuthAction::ProfileUpdated,
        AuthAction::PasswordChange,
        AuthAction::PasswordReset,
        AuthAction::PasswordResetCompleted,
        AuthAction::ApiKeyCreated,
        AuthAction::ApiKeyRevoked,
        AuthAction::UserCreated,
        AuthAction::RoleChanged,
        AuthAction::UserApproved,
        AuthAction::UserDisabled,
        AuthAction::UserStatusChanged,
        AuthAction::UserLocked,
        AuthAction::UserUnlocked,
        AuthAction::UserDeleted,
        AuthAction::GroupCreated,
        AuthAction::GroupDeleted,
        AuthAction::GroupMemberAdded,
        AuthAction::GroupMemberRemoved,
        AuthAction::SigningKeyRotated,
    ];
}

impl AuditAction for AuthAction {
    fn name(self) -> &'static str {
        match self {
            AuthAction::Register => "auth.register",
            AuthAction::Login => "auth.login",
            AuthAction::LoginThrottled => "auth.login_throttled",
            AuthAction::RefreshReuse => "auth.refresh_reuse",
            AuthAction::Logout => "auth.logout",
            AuthAction::ProfileUpdated => "auth.profile_updated",
            AuthAction::PasswordChange => "auth.password_change",
            AuthAction::PasswordReset => "auth.password_reset",
            AuthAction::PasswordResetCompleted => "auth.password_reset_completed",
            AuthAction::ApiKeyCreated => "auth.api_key_created",
            AuthAction::ApiKeyRevoked => "auth.api_key_revoked",
            AuthAction::UserCreated => "auth.user_created",
            AuthAction::RoleChanged => "auth.role_changed",
            AuthAction::UserApproved => "auth.user_approved",
            AuthAction::UserDisabled => "auth.user_disabled",
            AuthAction::UserStatusChanged => "auth.user_status_changed",
            AuthAction::UserLocked => "auth.user_locked",
            AuthAction::UserUnlocked => "auth.user_unlocked",
            AuthAction::UserDeleted => "auth.user_deleted",
            AuthAction::GroupCreated => "auth.group_created",
            AuthAction::GroupDeleted => "auth.group_deleted",
            AuthAction::GroupMemberAdded => "auth.group_member_added",
            AuthAction::GroupMemberRemoved => "auth.group_member_removed",
            AuthAction::SigningKeyRotated => "auth.signing_key_rotated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_unique_and_listed() {
        confab_core::audit::check_action_names("auth", AuthAction::ALL).unwrap();
        assert_eq!(AuthAction::ALL.len(), 24);
    }
}
