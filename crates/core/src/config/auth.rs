//! The `[auth]` section: sign-in, tokens, registration policy and throttling.

use serde::{Deserialize, Serialize};

use super::Secret;

/// Who may create an account.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone may register and use the account at once.
    Open,
    /// Anyone may register; the account waits for an admin's approval.
    Approval,
    /// Only admins create accounts (`confab users create`).
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub registration: RegistrationPolicy,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its use, while it is
    /// still the session's last used token, gets new tokens instead of ending the session
    /// (two tabs refreshing at once). Later reuse still revokes the session. 0: no grace.
    pub refresh_reuse_grace_secs: u64,
    /// Failed sign-ins for one account from one address (IPv6: one /64) before that address
    /// must wait to try that account again. Other addresses are not affected, so nobody can
    /// lock a user out; unknown emails are counted the same way.
    pub lockout_threshold: u32,
    /// The longest such wait, in seconds.
    pub lockout_duration_secs: u64,
    /// The first wait, in seconds; every further failure doubles it (up to
    /// `lockout_duration_secs`).
    pub login_delay_secs: u64,
    /// Failed sign-ins per hour for one account from all addresses together; beyond it,
    /// addresses that already failed for the account wait until the hour is over, while an
    /// address without failures may still sign in. 0: no such limit.
    pub account_failures_per_hour: u32,
    /// Sustained requests per minute one IP may make to the auth endpoints.
    pub ip_rate_limit_per_minute: u32,
    /// Requests one IP may make in a burst before the per-minute rate applies.
    pub ip_rate_limit_burst: u32,
    /// A new signing key is made when the current one is older than this (checked at start
    /// and every minute while running); retired keys verify until their tokens expire.
    pub signing_key_rotation_days: u32,
    /// The secret (at least 32 bytes) that encrypts the private signing keys stored in the
    /// database; give it as `CONFAB_AUTH__KEY_ENCRYPTION_KEY_FILE`. Keys stored in the clear
    /// are encrypted at the next start. Unset: they stay in the clear (start-up warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encryption_key: Option<Secret>,
    /// The `iss` claim of access tokens.
    pub issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            registration: RegistrationPolicy::Open,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 20,
            lockout_threshold: 5,
            lockout_duration_secs: 15 * 60,
            login_delay_secs: 30,
            account_failures_per_hour: 100,
            ip_rate_limit_per_minute: 60,
            ip_rate_limit_burst: 20,
            signing_key_rotation_days: 90,
            key_encryption_key: None,
            issuer: "confab".into(),
        }
    }
}
