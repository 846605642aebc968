//! A service's part in deleting a user (issue 15's `user.deleted` flow): every service that
//! holds users' data implements [`UserData`] and runs [`start_purge_participant`], a durable
//! consumer of [`UserPurgeRequested`] events named `<service>.user-purge`. For each request it
//! deletes the user's data in the service's own tables (idempotent: a second delivery deletes
//! nothing), publishes a durable [`UserPurgeAcknowledged`] with what it deleted, and only then
//! acknowledges the delivery; the auth service's `user.purge` job deletes the account when
//! every expected service has answered. The same code runs in one process (the SQL outbox)
//! and across processes (NATS JetStream).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::consumer::{DeliveryHandler, HandlerError, run_consumer};
use crate::events::{PURGE_REQUESTED_PREFIX, UserPurgeAcknowledged, UserPurgeRequested};
use crate::{DurableEvents, Envelope};

/// What one service deleted, by kind of thing (`conversations`, `projects`).
pub type PurgeCounts = BTreeMap<String, u64>;

/// Why a service could not delete a user's data now (the request comes again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PurgeError(pub String);

/// A service's users' data, as the purge sees it.
#[async_trait]
pub trait UserData: Send + Sync {
    /// Deletes everything this service holds for `user_id`; idempotent (a second call
    /// deletes nothing and succeeds). Returns what it deleted.
    async fn purge_user_data(&self, user_id: Uuid) -> Result<PurgeCounts, PurgeError>;
}

/// The durable consumer name of a service's purge handler.
pub fn purge_consumer_name(service: &str) -> String {
    format!("{service}.user-purge")
}

/// The handler of one service's purge requests.
pub struct PurgeParticipant {
    service: String,
    data: Arc<dyn UserData>,
    events: Arc<dyn DurableEvents>,
}

impl std::fmt::Debug for PurgeParticipant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeParticipant")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl PurgeParticipant {
    pub fn new(service: &str, data: Arc<dyn UserData>, events: Arc<dyn DurableEvents>) -> Self {
        Self {
            service: service.to_owned(),
            data,
            events,
        }
    }
}

#[async_trait]
impl DeliveryHandler for PurgeParticipant {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let Some(request) = event.decode::<UserPurgeRequested>() else {
            tracing::warn!(kind = %event.kind, topic = %event.topic, "not a purge request; skipped");
            return Ok(());
        };
        let counts = self
            .data
            .purge_user_data(request.user_id)
            .await
            .map_err(|e| HandlerError(e.to_string()))?;
        tracing::info!(service = %self.service, user_id = %request.user_id, ?counts, "a deleted user's data purged");
        // Answer before acknowledging: a crash in between purges again (nothing) and answers
        // again (zero counts), which the auth service adds up harmlessly.
        self.events
            .publish(Envelope::typed(&UserPurgeAcknowledged {
                id: Uuid::now_v7(),
                user_id: request.user_id,
                service: self.service.clone(),
                counts,
            }))
            .await?;
        Ok(())
    }
}

/// Runs `service`'s purge consumer (`<service>.user-purge`) on `tasks` until `shutdown`.
/// Replicas of a service may each run it.
pub fn start_purge_participant(
    service: &str,
    data: Arc<dyn UserData>,
    events: Arc<dyn DurableEvents>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let handler = Arc::new(PurgeParticipant::new(service, data, events.clone()));
    run_consumer(
        events,
        &purge_consumer_name(service),
        PURGE_REQUESTED_PREFIX,
        handler,
        tasks,
        shutdown,
    );
}
