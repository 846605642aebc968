//! Typed platform events: each is a struct that knows its kind and topic, so publishers and
//! consumers agree on the shape through the type rather than through string keys.
//! [`Envelope::typed`] wraps one for the bus; [`Envelope::decode`] reads it back (`None` for
//! another kind).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Envelope, user_topic};

/// An event with a fixed kind and a topic derived from its content.
pub trait TypedEvent: Serialize + DeserializeOwned {
    /// The envelope's `kind`, e.g. `user.registered`.
    const KIND: &'static str;
    /// The topic it is published on.
    fn topic(&self) -> String;
}

impl Envelope {
    /// The envelope of a typed event.
    pub fn typed<E: TypedEvent>(event: &E) -> Self {
        Envelope::new(
            event.topic(),
            E::KIND,
            serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The typed event this envelope carries, if it is of kind `E::KIND` and well formed.
    pub fn decode<E: TypedEvent>(&self) -> Option<E> {
        if self.kind != E::KIND {
            return None;
        }
        serde_json::from_value(self.data.clone()).ok()
    }
}

/// The topic of account events (admins' views, other services' caches).
pub const USERS_TOPIC: &str = "users";
/// The topic of model lifecycle events.
pub const MODELS_TOPIC: &str = "models";
/// The topic of runtime settings changes.
pub const CONFIG_TOPIC: &str = "config";
/// The topic every replica's authenticators follow to drop cached credentials
/// ([`AuthRevocation`]).
pub const AUTH_REVOCATIONS_TOPIC: &str = "auth.revocations";

/// An account was created (by registration, an admin or the command line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    /// `active` or `pending` (waiting for an admin's approval).
    pub status: String,
}

impl TypedEvent for UserRegistered {
    const KIND: &'static str = "user.registered";
    fn topic(&self) -> String {
        USERS_TOPIC.to_owned()
    }
}

/// An account and all its data are gone (the end of a `user.purge` job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub user_id: Uuid,
}

impl TypedEvent for UserDeleted {
    const KIND: &'static str = "user.deleted";
    fn topic(&self) -> String {
        USERS_TOPIC.to_owned()
    }
}

/// The topic prefix of purge requests: each is published on `purge.requested.<user id>`.
pub const PURGE_REQUESTED_PREFIX: &str = "purge.requested.";
/// The topic prefix of the services' answers: `purge.acknowledged.<user id>`.
pub const PURGE_ACKNOWLEDGED_PREFIX: &str = "purge.acknowledged.";

/// Durable: an admin deleted this account, so every service that holds users' data deletes
/// this user's (each through its own durable consumer, idempotently) and answers with
/// [`UserPurgeAcknowledged`]. Published once by the `user.purge` job of the auth service; the
/// account itself goes when every expected service has answered, then [`UserDeleted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPurgeRequested {
    pub user_id: Uuid,
    /// When the deletion was asked for (Unix ms).
    pub requested_at: i64,
}

impl TypedEvent for UserPurgeRequested {
    const KIND: &'static str = "user.purge_requested";
    fn topic(&self) -> String {
        format!("{PURGE_REQUESTED_PREFIX}{}", self.user_id)
    }
}

/// Durable: one service deleted a user's data (one handling of a [`UserPurgeRequested`];
/// a repeated delivery answers again with zero counts, so the counts of all the answers of a
/// service, each `id` once, add up to what it deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPurgeAcknowledged {
    /// This answer's id (UUIDv7), so a redelivered answer is counted once.
    pub id: Uuid,
    pub user_id: Uuid,
    /// The answering service, e.g. `chat`.
    pub service: String,
    /// What it deleted, by kind of thing (`conversations`, `projects`).
    pub counts: BTreeMap<String, u64>,
}

impl TypedEvent for UserPurgeAcknowledged {
    const KIND: &'static str = "user.purge_acknowledged";
    fn topic(&self) -> String {
        format!("{PURGE_ACKNOWLEDGED_PREFIX}{}", self.user_id)
    }
}

/// A model pull ended well: the model can be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPulled {
    pub pull_id: Uuid,
    pub model: String,
    pub bytes: u64,
}

impl TypedEvent for ModelPulled {
    const KIND: &'static str = "model.pulled";
    fn topic(&self) -> String {
        MODELS_TOPIC.to_owned()
    }
}

/// An admin changed the runtime settings; replicas re-read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigChanged {
    pub version: i64,
}

impl TypedEvent for ConfigChanged {
    const KIND: &'static str = "config.changed";
    fn topic(&self) -> String {
        CONFIG_TOPIC.to_owned()
    }
}

/// Something that authorised a user's requests stopped doing so: a logout (one session), or
/// for every session of the account a lock, a disable, a deletion, a role change or a password
/// change. Published on the user's own topic, so whatever holds a long-lived connection for
/// them (the chat service's WebSockets) re-checks its credential at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRevoked {
    pub user_id: Uuid,
    /// The one session that ended (a logout); `None`: every session and key of the account
    /// must be checked again.
    pub session_id: Option<Uuid>,
    /// Why, for logs: `logout`, `locked`, `disabled`, `deleted`, `role_changed`,
    /// `password_changed`, `key_revoked`.
    pub reason: String,
}

impl TypedEvent for AccessRevoked {
    const KIND: &'static str = "access.revoked";
    fn topic(&self) -> String {
        user_topic(self.user_id)
    }
}

/// What an authenticator may have cached about a user is stale: a session ended, a key was
/// revoked, or the account's role or status or password changed. Published by the auth
/// service on [`AUTH_REVOCATIONS_TOPIC`] (one topic every replica follows, unlike
/// [`AccessRevoked`], which goes to the user's own topic) after its own caches were cleared
/// and before [`AccessRevoked`]; every authenticator that caches lookups (the auth service's
/// other replicas, `RemoteAuthenticator`s) drops the user's entries when it arrives, and
/// everything after missing events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthRevocation {
    pub user_id: Uuid,
    /// The one session that ended, when only one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The one API key revoked, when only one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// Why, for logs: the reasons of [`AccessRevoked`], and `role_changed` or
    /// `status_changed` for changes that revoke nothing (a promotion, an unlock).
    pub reason: String,
}

impl TypedEvent for AuthRevocation {
    const KIND: &'static str = "auth.revocation";
    fn topic(&self) -> String {
        AUTH_REVOCATIONS_TOPIC.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_events_round_trip_and_other_kinds_do_not_decode() {
        let event = UserRegistered {
            user_id: Uuid::now_v7(),
            email: "a@example.com".into(),
            status: "active".into(),
        };
        let envelope = Envelope::typed(&event);
        assert_eq!(envelope.topic, "users");
        assert_eq!(envelope.kind, "user.registered");
        assert_eq!(envelope.decode::<UserRegistered>(), Some(event));
        assert_eq!(envelope.decode::<UserDeleted>(), None);
        let changed = Envelope::typed(&ConfigChanged { version: 3 });
        assert_eq!(
            changed.decode::<ConfigChanged>(),
            Some(ConfigChanged { version: 3 })
        );
    }

    /// The purge events' JSON is a contract between services of possibly different versions.
    #[test]
    fn purge_events_have_pinned_json_and_per_user_topics() {
        let user_id = Uuid::parse_str("0192f0c1-0000-7000-8000-000000000001").unwrap();
        let requested = Envelope::typed(&UserPurgeRequested {
            user_id,
            requested_at: 1_700_000_000_000,
        });
        assert_eq!(requested.kind, "user.purge_requested");
        assert_eq!(
            requested.topic,
            "purge.requested.0192f0c1-0000-7000-8000-000000000001"
        );
        assert!(requested.topic.starts_with(PURGE_REQUESTED_PREFIX));
        assert_eq!(
            requested.data,
            serde_json::json!({
                "user_id": "0192f0c1-0000-7000-8000-000000000001",
                "requested_at": 1_700_000_000_000_i64,
            })
        );
        let id = Uuid::parse_str("0192f0c1-0000-7000-8000-0000000000aa").unwrap();
        let answer = UserPurgeAcknowledged {
            id,
            user_id,
            service: "chat".into(),
            counts: BTreeMap::from([("conversations".to_owned(), 3)]),
        };
        let acknowledged = Envelope::typed(&answer);
        assert_eq!(acknowledged.kind, "user.purge_acknowledged");
        assert_eq!(
            acknowledged.topic,
            "purge.acknowledged.0192f0c1-0000-7000-8000-000000000001"
        );
        assert_eq!(
            acknowledged.data,
            serde_json::json!({
                "id": "0192f0c1-0000-7000-8000-0000000000aa",
                "user_id": "0192f0c1-0000-7000-8000-000000000001",
                "service": "chat",
                "counts": {"conversations": 3},
            })
        );
        assert_eq!(acknowledged.decode::<UserPurgeAcknowledged>(), Some(answer));
        assert_eq!(acknowledged.decode::<UserPurgeRequested>(), None);
        // The account's end keeps its shape.
        assert_eq!(
            Envelope::typed(&UserDeleted { user_id }).data,
            serde_json::json!({"user_id": "0192f0c1-0000-7000-8000-000000000001"})
        );
    }
}
