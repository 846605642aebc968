//! The auth service's rules, free of I/O: what a valid email, name, password and API key
//! request look like, and the shapes of users, sessions and keys.

use confab_core::auth::{Role, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_KEYS_PER_USER: i64 = 100;

/// Whether an account may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    /// Registered under the approval policy; waits for an admin.
    Pending,
    /// Switched off by an admin.
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "pending" => Some(UserStatus::Pending),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A stored user, with the fields only the service sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    /// Names of the groups the user belongs to.
    pub groups: Vec<String>,
    /// The user must change the password before anything else (set by an admin reset).
    pub must_change_password: bool,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

impl UserView {
    pub fn new(user: &User, groups: Vec<String>) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            status: user.status,
            groups,
            must_change_password: user.must_change_password,
            created_at: user.created_at,
        }
    }
}

/// A stored API key (without its secret, which is never stored).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    #[serde(with = "confab_core::id::rfc3339_ms::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
}

/// A group of users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct GroupView {
    pub id: Uuid,
    pub name: String,
    pub members: Vec<Uuid>,
    #[serde(with = "confab_core::id::rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Lower-cases and trims an email, and checks its shape.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("email is required".into());
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(format!("email is longer than {MAX_EMAIL_BYTES} characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("email must look like name@example.com".into());
    };
    let domain_ok = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("email must look like name@example.com".into());
    }
    Ok(email)
}

/// Trims a display name and checks its length.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("name is required".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name may not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// Every rule `password` breaks; empty when it is acceptable.
pub fn password_problems(password: &str, email: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        problems.push(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters (it has {chars})"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        problems.push(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    let lowered = password.to_lowercase();
    let email = email.trim().to_lowercase();
    if !email.is_empty() && (lowered == email || email.split('@').next() == Some(lowered.as_str()))
    {
        problems.push("password must not be the email address".into());
    }
    if COMMON_PASSWORDS.contains(&lowered.as_str()) {
        problems.push("password is on the list of commonly used passwords; choose another".into());
    }
    if chars > 0 && password.chars().all(|c| password.starts_with(c)) {
        problems.push("password must not be one character repeated".into());
    }
    problems
}

/// Checks the scopes requested for a new API key.
pub fn validate_scopes(scopes: &[Scope], role: Role) -> Result<Vec<Scope>, String> {
    if scopes.is_empty() {
        return Err(
            "scopes must name at least one of chat, inference, knowledge, files, seo, admin".into(),
        );
    }
    if scopes.contains(&Scope::Admin) && role != Role::Admin {
        return Err("only admins may create keys with the admin scope".into());
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(|s| s.parse().ok()).collect()
}

/// Commonly used passwords of policy length (a small built-in list; lower case).
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "0123456789",
    "0987654321",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "qwertyuiop",
    "qwerty1234",
    "qwerty12345",
    "qwerty123456",
    "1234qwer",
    "password1!",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "p@ssw0rd123",
    "iloveyou123",
    "abcdefghij",
    "abc1234567",
    "abcd123456",
    "asdfghjkl1",
    "asdfghjkl;",
    "zxcvbnm123",
    "letmein123",
    "welcome123",
    "welcome1234",
    "administrator",
    "admin12345",
    "admin123456",
    "changeme123",
    "trustno1234",
    "football123",
    "baseball123",
    "superman123",
    "princess123",
    "dragon1234",
    "sunshine123",
    "starwars123",
    "monkey1234",
    "michael123",
    "1111111111",
    "0000000000",
    "9876543210",
    "1122334455",
    "1234512345",
    "123123123123",
    "aaaaaaaaaa",
    "qazwsxedcrfv",
    "1q2w3e4r5t6y",
    "zaq12wsxcde3",
    "q1w2e3r4t5",
    "passwordpassword",
    "confab12345",
    "letmeinnow",
    "secret1234",
    "mypassword",
    "mypassword1",
    "password!!",
];

/// Whether an account in this standing counts as an active admin.
pub fn is_active_admin(role: Role, status: UserStatus) -> bool {
    role == Role::Admin && status == UserStatus::Active
}

/// The last-admin rule: an operation that leaves an account `after` (its role and status;
/// `None`: the account goes) may not take away the last active admin. `active_admins` counts
/// the active admins before the operation (the caller need only count them when the account
/// is one and stops being one).
pub fn leaves_no_active_admin(
    before: (Role, UserStatus),
    after: Option<(Role, UserStatus)>,
    active_admins: i64,
) -> bool {
    is_active_admin(before.0, before.1)
        && !after.is_some_and(|(role, status)| is_active_admin(role, status))
        && active_admins <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_active_admin_cannot_be_taken_away() {
        let admin = (Role::Admin, UserStatus::Active);
        // Demoted, disabled or deleted: refused while they are the only one.
        for after in [
            Some((Role::User, UserStatus::Active)),
            Some((Role::Admin, UserStatus::Disabled)),
            None,
        ] {
            assert!(leaves_no_active_admin(admin, after, 1), "{after:?}");
            assert!(!leaves_no_active_admin(admin, after, 2), "{after:?}");
        }
        // Staying an active admin, or not being one: never refused.
        assert!(!leaves_no_active_admin(admin, Some(admin), 1));
        assert!(!leaves_no_active_admin(
            (Role::User, UserStatus::Active),
            None,
            1
        ));
        assert!(!leaves_no_active_admin(
            (Role::Admin, UserStatus::Disabled),
            None,
            1
        ));
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a@.com",
            "a b@example.com",
            "a@b..c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_policy_lists_every_reason() {
        assert!(password_problems("correct horse battery", "ada@example.com").is_empty());
        let problems = password_problems("short", "ada@example.com");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            password_problems("ada@example.com", "Ada@Example.com").len(),
            1
        );
        assert_eq!(password_problems("Password123", "x@y.z").len(), 1);
        assert_eq!(password_problems("aaaaaaaaaaaa", "x@y.z").len(), 1);
        assert_eq!(password_problems("aaaaaaaaa", "x@y.z").len(), 2);
    }

    /// Architecture invariant: the domain knows neither HTTP nor SQL.
    #[test]
    fn domain_imports_no_http_or_sql() {
        let source = include_str!("domain.rs");
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        for banned in ["axum", "sqlx", "http::", "confab_store"] {
            assert!(!code.contains(banned), "domain.rs mentions {banned}");
        }
    }

    #[test]
    fn scopes() {
        assert!(validate_scopes(&[], Role::User).is_err());
        assert!(validate_scopes(&[Scope::Admin], Role::User).is_err());
        let scopes =
            validate_scopes(&[Scope::Inference, Scope::Chat, Scope::Chat], Role::User).unwrap();
        assert_eq!(scopes, vec![Scope::Chat, Scope::Inference]);
        assert_eq!(scopes_from_text(&scopes_to_text(&scopes)), scopes);
    }
}
