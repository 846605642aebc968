//! The chain's rules, pure: an entry's content and hash, the checks one entry after another,
//! and the form of an archive file's line. No I/O: the store, the verification and the
//! archives apply them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
use super::GENESIS_HASH;
use super::{AuditEntry, BreakKind, BrokenEntry};

/// The hashed content of an entry, as stored: the one declaration of an entry's fields. Its
/// serde form (inside [`Stored`]) is an archive file's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub id: String,
    /// Unix milliseconds, as stored and hashed.
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The JSON text exactly as stored.
    #[serde(flatten)]
    pub details: Details,
}

/// An entry's details: the JSON text exactly as stored (and hashed). In an archive line it is
/// `details` (the JSON itself) when writing that JSON gives back the same text, else
/// `details_text` (the text), so that every line recomputes its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details(pub String);

impl Serialize for Details {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let exact = serde_json::from_str::<serde_json::Value>(&self.0)
            .ok()
            .filter(|v| serde_json::to_string(v).is_ok_and(|text| text == self.0));
        let mut map = serializer.serialize_map(Some(1))?;
        match exact {
            Some(value) => map.serialize_entry("details", &value)?,
            None => map.serialize_entry("details_text", &self.0)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Form {
            #[serde(default)]
            details: Option<serde_json::Value>,
            #[serde(default)]
            details_text: Option<String>,
        }
        let form = Form::deserialize(deserializer)?;
        Ok(Details(form.details_text.unwrap_or_else(|| {
            form.details.unwrap_or(serde_json::Value::Null).to_string()
        })))
    }
}

impl Content {
    /// The entry's hash at `seq` after `prev_hash`.
    pub fn hash(&self, seq: i64, prev_hash: &str) -> String {
        let canonical = serde_json::json!([
            "confab-audit-v1",
            seq,
            self.id,
            self.at,
            self.actor,
            self.action,
            self.target,
            self.outcome,
            self.ip,
            self.user_agent,
            self.request_id,
            self.details.0,
            prev_hash,
        ]);
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A chained entry; its serde form is one line of an archive file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub seq: i64,
    #[serde(flatten)]
    pub content: Content,
    pub prev_hash: String,
    pub hash: String,
}

impl Stored {
    /// The entry as the admin API shows it: its time as RFC 3339, its details as JSON.
    pub fn into_entry(self) -> AuditEntry {
        let c = self.content;
        AuditEntry {
            details: serde_json::from_str(&c.details.0)
                .unwrap_or(serde_json::Value::String(c.details.0)),
            id: c.id,
            seq: self.seq,
            at: c.at,
            actor: c.actor,
            action: c.action,
            target: c.target,
            outcome: c.outcome,
            ip: c.ip,
            user_agent: c.user_agent,
            request_id: c.request_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Checks entries one after another.
pub struct ChainCheck {
    pub expected_seq: i64,
    pub prev_hash: String,
}

impl ChainCheck {
    pub fn new(expected_seq: i64, prev_hash: impl Into<String>) -> Self {
        Self {
            expected_seq,
            prev_hash: prev_hash.into(),
        }
    }

    /// Checks the next entry; on success it becomes the previous one.
    pub fn next(&mut self, entry: &Stored) -> Result<(), BrokenEntry> {
        let broken = |kind, reason: String| BrokenEntry {
            seq: Some(entry.seq),
            id: Some(entry.content.id.clone()),
            kind,
            reason,
        };
        if entry.seq != self.expected_seq {
            return Err(broken(
                BreakKind::Gap,
                if entry.seq == self.expected_seq + 1 {
                    format!("entry {} is missing before it", self.expected_seq)
                } else {
                    format!(
                        "entries {} to {} are missing before it",
                        self.expected_seq,
                        entry.seq - 1
                    )
                },
            ));
        }
        if entry.prev_hash != self.prev_hash {
            return Err(broken(
                BreakKind::PrevHashMismatch,
                "its prev_hash is not the hash of the entry before it".into(),
            ));
        }
        if entry.content.hash(entry.seq, &entry.prev_hash) != entry.hash {
            return Err(broken(
                BreakKind::HashMismatch,
                "its content does not match its hash: it was changed after it was written".into(),
            ));
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn content() -> Content {
        Content {
            id: "0190a0a0-0000-7000-8000-000000000001".into(),
            at: 1_700_000_000_000,
            actor: None,
            action: "auth.login".into(),
            target: Some("ada@example.com".into()),
            outcome: "failure".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: None,
            details: Details(r#"{"reason":"wrong_password"}"#.into()),
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_documented_canonical_form() {
        let c = content();
        let canonical = r#"["confab-audit-v1",1,"0190a0a0-0000-7000-8000-000000000001",1700000000000,null,"auth.login","ada@example.com","failure","127.0.0.1",null,null,"{\"reason\":\"wrong_password\"}","0000000000000000000000000000000000000000000000000000000000000000"]"#;
        assert_eq!(
            c.hash(1, GENESIS_HASH),
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        assert_ne!(c.hash(2, GENESIS_HASH), c.hash(1, GENESIS_HASH));
    }

    #[test]
    fn archive_lines_keep_the_stored_details_text() {
        let mut c = content();
        for text in [
            r#"{"reason":"wrong_password"}"#,
            "null",
            r#"{ "spaced": 1.10 }"#,
        ] {
            c.details = Details(text.into());
            let stored = Stored {
                seq: 7,
                hash: c.hash(7, GENESIS_HASH),
                content: c.clone(),
                prev_hash: GENESIS_HASH.into(),
            };
            let line = serde_json::to_string(&stored).unwrap();
            let back: Stored = serde_json::from_str(&line).unwrap();
            assert_eq!(back.content, c, "{line}");
            assert_eq!(back.hash, stored.hash);
        }
    }

    #[test]
    fn an_archive_line_has_the_documented_form() {
        let c = content();
        let stored = Stored {
            seq: 1,
            hash: c.hash(1, GENESIS_HASH),
            content: c,
            prev_hash: GENESIS_HASH.into(),
        };
        let line = serde_json::to_string(&stored).unwrap();
        assert_eq!(
            line,
            format!(
                r#"{{"seq":1,"id":"0190a0a0-0000-7000-8000-000000000001","at":1700000000000,"actor":null,"action":"auth.login","target":"ada@example.com","outcome":"failure","ip":"127.0.0.1","user_agent":null,"request_id":null,"details":{{"reason":"wrong_password"}},"prev_hash":"{GENESIS_HASH}","hash":"{}"}}"#,
                stored.hash
            )
        );
    }

    #[test]
    fn chain_checks_name_the_problem() {
        let c = content();
        let first = Stored {
            seq: 1,
            hash: c.hash(1, GENESIS_HASH),
            content: c.clone(),
            prev_hash: GENESIS_HASH.into(),
        };
        let mut check = ChainCheck::new(1, GENESIS_HASH);
        check.next(&first).unwrap();
        let mut third = first.clone();
        third.seq = 3;
        assert_eq!(check.next(&third).unwrap_err().kind, BreakKind::Gap);
        let mut tampered = first.clone();
        tampered.seq = 2;
        tampered.prev_hash = first.hash.clone();
        assert_eq!(
            check.next(&tampered).unwrap_err().kind,
            BreakKind::HashMismatch
        );
    }
}
