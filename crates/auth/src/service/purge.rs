//! Deleting a user across services, the auth service's side (the `user.purge` job): the
//! purge request is recorded and published once as a durable [`UserPurgeRequested`]; every
//! service that holds users' data deletes the user's and answers with a durable
//! [`UserPurgeAcknowledged`], which [`PurgeAnswers`] (the consumer `auth.purge-answers`)
//! records; the account goes only when every expected participant has answered.
//!
//! Which services must answer is the list the composition root gives ([`PurgeDeps`]).
//! [`AuthService::run_purge`] waits for them within one job attempt, woken by answers this
//! process records and looking again every second for those another replica recorded; at the
//! end of its wait the job is retried (see `confab::jobs`), so a service that is down delays
//! the deletion but does not fail it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_bus::events::{PURGE_ACKNOWLEDGED_PREFIX, UserPurgeAcknowledged, UserPurgeRequested};
use confab_bus::purge::PurgeCounts;
use confab_bus::{DeliveryHandler, DurableEvents, Envelope, HandlerError};
use confab_core::now_ms;
use tokio::time::Instant;
use uuid::Uuid;

use super::{AuthError, AuthResult, AuthService};
use crate::ports::PurgeAnswer;

/// The durable consumer of the services' answers.
pub const PURGE_ANSWERS_CONSUMER: &str = "auth.purge-answers";
/// The topics it reads.
pub const PURGE_ANSWERS_PREFIX: &str = PURGE_ACKNOWLEDGED_PREFIX;

/// How often a waiting purge looks for answers recorded by another replica.
const POLL: Duration = Duration::from_secs(1);
/// Bounds on an answer (they come from our own services, but the table should not take
/// anything).
const MAX_SERVICE_NAME: usize = 64;
const MAX_COUNTS: usize = 32;

/// What user deletion needs besides the store: where the purge request is published and
/// which services must answer it.
#[derive(Clone)]
pub struct PurgeDeps {
    pub events: Arc<dyn DurableEvents>,
    /// Every data-holding service of the deployment (`chat`, `seo`, …).
    pub participants: Vec<String>,
}

impl std::fmt::Debug for PurgeDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeDeps")
            .field("participants", &self.participants)
            .finish_non_exhaustive()
    }
}

/// Where one run of a purge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeRun {
    /// Every participant answered and the account is gone (or was already).
    Done {
        account_deleted: bool,
        /// Each service's counts, its answers added up.
        services: BTreeMap<String, PurgeCounts>,
    },
    /// The wait ended with these participants still silent.
    Waiting { missing: Vec<String> },
}

/// A service name as participants are named: short lowercase ASCII.
pub fn valid_participant(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl AuthService {
    fn purge_deps(&self) -> AuthResult<&PurgeDeps> {
        self.purge
            .as_ref()
            .ok_or_else(|| AuthError::Internal("user purges need durable events".into()))
    }

    /// The services that must answer before an account is deleted.
    pub fn purge_participants(&self) -> &[String] {
        self.purge
            .as_ref()
            .map_or(&[], |p| p.participants.as_slice())
    }

    /// Records and publishes the purge request for `user_id`, once: a retried job finds it
    /// published. (A crash between publishing and marking publishes it twice, which the
    /// services' idempotence absorbs.)
    pub async fn request_purge(&self, user_id: Uuid) -> AuthResult<()> {
        let deps = self.purge_deps()?;
        let record = self.store.open_purge(user_id, now_ms()).await?;
        if record.published_at.is_some() {
            return Ok(());
        }
        deps.events
            .publish(Envelope::typed(&UserPurgeRequested {
                user_id,
                requested_at: record.requested_at,
            }))
            .await
            .map_err(|e| AuthError::Internal(format!("cannot publish the purge request: {e}")))?;
        self.store.mark_purge_published(user_id, now_ms()).await?;
        Ok(())
    }

    /// Records one service's answer (each answer id once) and wakes the purges waiting in
    /// this process. `false`: a repeat, or an answer about no purge this service recorded.
    pub async fn record_purge_answer(&self, answer: &UserPurgeAcknowledged) -> AuthResult<bool> {
        let recorded = self
            .store
            .record_purge_answer(&PurgeAnswer {
                id: answer.id,
                user_id: answer.user_id,
                service: answer.service.clone(),
                counts: answer.counts.clone(),
                at: now_ms(),
            })
            .await?;
        if recorded {
            self.purge_answered.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(recorded)
    }

    /// The answers recorded for `user_id`, added up per service.
    pub async fn purge_answers(&self, user_id: Uuid) -> AuthResult<BTreeMap<String, PurgeCounts>> {
        let mut services: BTreeMap<String, PurgeCounts> = BTreeMap::new();
        for answer in self.store.purge_answers(user_id).await? {
            let counts = services.entry(answer.service).or_default();
            for (kind, n) in answer.counts {
                let total = counts.entry(kind).or_default();
                *total = total.saturating_add(n);
            }
        }
        Ok(services)
    }

    /// One run of a user's purge: publishes the request (once), waits up to `wait` for
    /// every participant's answer, reporting who answered and who is missing through
    /// `progress` (percent, message), then deletes the account (last: while its row exists
    /// the purge is not finished). Idempotent; dropping the future mid-wait is harmless.
    pub async fn run_purge(
        &self,
        user_id: Uuid,
        wait: Duration,
        progress: &(dyn Fn(f64, &str) + Send + Sync),
    ) -> AuthResult<PurgeRun> {
        let participants = self.purge_deps()?.participants.clone();
        self.request_purge(user_id).await?;
        let deadline = Instant::now() + wait;
        let mut answered = self.purge_answered.subscribe();
        let services = loop {
            answered.borrow_and_update();
            let services = self.purge_answers(user_id).await?;
            let missing: Vec<String> = participants
                .iter()
                .filter(|p| !services.contains_key(*p))
                .cloned()
                .collect();
            if missing.is_empty() {
                break services;
            }
            let done = participants.len() - missing.len();
            let heard: Vec<&str> = participants
                .iter()
                .filter(|p| services.contains_key(*p))
                .map(String::as_str)
                .collect();
            progress(
                90.0 * done as f64 / participants.len() as f64,
                &format!(
                    "waiting for {} (answered: {})",
                    missing.join(", "),
                    if heard.is_empty() {
                        "none".to_owned()
                    } else {
                        heard.join(", ")
                    }
                ),
            );
            let now = Instant::now();
            if now >= deadline {
                return Ok(PurgeRun::Waiting { missing });
            }
            // An answer recorded here wakes at once; another replica's is seen by polling.
            let _ = tokio::time::timeout(POLL.min(deadline - now), answered.changed()).await;
        };
        progress(95.0, "deleting the account, its keys and sessions");
        let account_deleted = self.purge_account(user_id).await?;
        self.store.finish_purge(user_id, now_ms()).await?;
        progress(100.0, "done");
        Ok(PurgeRun::Done {
            account_deleted,
            services,
        })
    }
}

/// The durable consumer of the services' answers ([`PURGE_ANSWERS_CONSUMER`] over
/// [`PURGE_ANSWERS_PREFIX`]): records each into the auth service's table.
pub struct PurgeAnswers(pub Arc<AuthService>);

#[async_trait]
impl DeliveryHandler for PurgeAnswers {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let Some(answer) = event.decode::<UserPurgeAcknowledged>() else {
            tracing::warn!(kind = %event.kind, "not a purge answer; skipped");
            return Ok(());
        };
        if !valid_participant(&answer.service)
            || answer.counts.len() > MAX_COUNTS
            || answer.counts.keys().any(|k| k.len() > MAX_SERVICE_NAME)
        {
            tracing::warn!(user_id = %answer.user_id, "a malformed purge answer is skipped");
            return Ok(());
        }
        self.0
            .record_purge_answer(&answer)
            .await
            .map_err(|e| HandlerError(e.to_string()))?;
        Ok(())
    }
}
