//! Answers when several chat replicas share one database (split mode): a replica that dies
//! leaves its streaming answers behind, and the others mark them `interrupted` once no one has
//! checkpointed them for a lease (publishing their end, so readers on any replica finish); a
//! stop asked of a replica that does not generate the answer is passed to the one that does.

use std::sync::Arc;
use std::time::Duration;

use confab_bus::{Envelope, Received, TypedEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ChatError, ChatService};
use crate::domain::Author;
use crate::events::{MessageCompleted, Typing};

/// The topic chat replicas tell each other about answers on.
pub const ANSWERS_TOPIC: &str = "chat.answers";

/// A user asked to stop an answer that another replica may be generating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequested {
    pub user_id: Uuid,
    pub message_id: Uuid,
}

impl TypedEvent for StopRequested {
    const KIND: &'static str = "answer.stop_requested";
    fn topic(&self) -> String {
        ANSWERS_TOPIC.to_owned()
    }
}

impl ChatService {
    /// Among replicas (`answer_lease` set): looks for answers dead replicas left behind every
    /// half lease, and stops the answers this replica generates when another one is asked
    /// to. Alone, there is nothing to watch.
    pub fn watch_replicas(self: &Arc<Self>) {
        let Some(lease) = self.settings.answer_lease else {
            return;
        };
        let this = self.clone();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval(lease / 2);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = this.shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(e) = this.interrupt_stale(lease).await {
                    tracing::warn!(error = %e, "cannot look for answers left by other replicas");
                }
            }
        });
        let this = self.clone();
        self.tasks.spawn(async move {
            let mut requests = this.events.subscribe(ANSWERS_TOPIC);
            loop {
                let received = tokio::select! {
                    () = this.shutdown.cancelled() => break,
                    received = requests.next() => received,
                };
                match received {
                    Some(Received::Event(envelope)) => {
                        if let Some(stop) = envelope.decode::<StopRequested>() {
                            this.stop_here(&stop);
                        }
                    }
                    // A missed request leaves that answer running: the user can ask again.
                    Some(Received::Lagged(missed)) => {
                        tracing::warn!(missed, "stop requests from other replicas were missed");
                    }
                    None => break,
                }
            }
        });
    }

    /// Stops the answer if this replica generates it for that user.
    fn stop_here(&self, stop: &StopRequested) {
        if let Some(live) = self.live.get(stop.message_id)
            && live.user == stop.user_id
        {
            live.request_stop();
        }
    }

    /// Asks the replica generating an answer to stop it.
    pub(super) async fn request_stop_elsewhere(&self, user_id: Uuid, message_id: Uuid) {
        if let Err(e) = self
            .events
            .publish(Envelope::typed(&StopRequested {
                user_id,
                message_id,
            }))
            .await
        {
            tracing::warn!(error = %e, message = %message_id, "stop request not published");
        }
    }

    /// Marks `interrupted` the answers nobody checkpointed for `lease` and tells their owners'
    /// tabs (and readers on every replica) that they ended. Returns how many.
    pub(super) async fn interrupt_stale(&self, lease: Duration) -> Result<usize, ChatError> {
        let now = confab_core::now_ms();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let stale = self
            .store
            .interrupt_stale(now.saturating_sub(lease_ms), now)
            .await?;
        for (user_id, message) in &stale {
            tracing::warn!(message = %message.id, "an answer left by a replica that stopped is interrupted");
            self.publish(&MessageCompleted {
                user_id: *user_id,
                message: message.clone(),
            })
            .await;
            self.publish(&Typing {
                user_id: *user_id,
                conversation_id: message.conversation_id,
                message_id: message.id,
                who: Author::Assistant,
                active: false,
            })
            .await;
        }
        Ok(stale.len())
    }
}
