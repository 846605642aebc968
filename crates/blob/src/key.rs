//! Checked blob keys.

use std::fmt;

/// The longest key, in bytes (S3 allows 1024, with the store's prefix in front).
pub const MAX_KEY_BYTES: usize = 512;

/// A key: `/`-separated segments of ASCII letters, digits, `-`, `_`, `.`, `=` and `+`, none
/// empty, `.` or `..`. Callers build keys from ids they made, never from a client's file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid blob key `{key}`: {reason}")]
pub struct InvalidKey {
    pub key: String,
    pub reason: &'static str,
}

impl BlobKey {
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidKey> {
        let key = key.into();
        let refuse = |reason| {
            Err(InvalidKey {
                key: key.chars().take(80).collect(),
                reason,
            })
        };
        if key.is_empty() {
            return refuse("it is empty");
        }
        if key.len() > MAX_KEY_BYTES {
            return refuse("it is longer than 512 bytes");
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return refuse("it has an empty segment (a leading, trailing or doubled `/`)");
            }
            if segment == "." || segment == ".." {
                return refuse("`.` and `..` are not segments");
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+'))
            {
                return refuse("only ASCII letters, digits and `-_.=+` may appear between `/`");
            }
        }
        Ok(Self(key))
    }

    /// `self/segment` (a checked key too).
    pub fn join(&self, rest: &str) -> Result<Self, InvalidKey> {
        Self::new(format!("{}/{rest}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for BlobKey {
    type Error = InvalidKey;

    fn try_from(key: &str) -> Result<Self, Self::Error> {
        Self::new(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_store() {
        for good in [
            "a",
            "files/01J/original",
            "backups/confab-20261203T000000.000Z/x.db",
        ] {
            assert_eq!(BlobKey::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a b",
            "a\\b",
            "é",
            "a\u{202e}b",
            "a\nb",
            "%2e%2e",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(BlobKey::new("x".repeat(513)).is_err());
        let dir = BlobKey::new("a/b").unwrap();
        assert_eq!(dir.join("c").unwrap().as_str(), "a/b/c");
        assert!(dir.join("../c").is_err());
    }
}
