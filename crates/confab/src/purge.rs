//! Deleting a user across services, wired: which services must answer a purge request
//! (`services.purge_participants`, by default every data-holding service this binary has),
//! and starting the durable consumers — each data-holding service's `<service>.user-purge`
//! and the auth service's `auth.purge-answers`. One code path for all-in-one (the SQL outbox)
//! and split mode (NATS JetStream): only the `DurableEvents` adapter differs.

use std::sync::Arc;

use confab_auth::service::{PURGE_ANSWERS_CONSUMER, PURGE_ANSWERS_PREFIX, valid_participant};
use confab_auth::{AuthService, PurgeAnswers};
use confab_bus::purge::{UserData, start_purge_participant};
use confab_bus::{DurableEvents, run_consumer};
use confab_core::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The data-holding services this binary has (add `knowledge` and `video` here with their
/// `UserData`).
pub const KNOWN_PARTICIPANTS: &[&str] = &["chat", "seo", "files"];

/// The services whose answer a purge waits for: `services.purge_participants`, or every
/// service in [`KNOWN_PARTICIPANTS`]. A name this binary does not know is allowed (a service
/// of a newer version may run elsewhere) with a warning: its deletions wait for it.
pub fn participants(config: &Config) -> anyhow::Result<Vec<String>> {
    let Some(list) = &config.services.purge_participants else {
        return Ok(KNOWN_PARTICIPANTS.iter().map(|s| (*s).to_owned()).collect());
    };
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        if !valid_participant(name) {
            anyhow::bail!(
                "services.purge_participants: `{name}` is not a service name \
                 (lowercase letters, digits, `-` and `_`, at most 64)"
            );
        }
        if !KNOWN_PARTICIPANTS.contains(&name.as_str()) {
            tracing::warn!(
                service = %name,
                "services.purge_participants names a service this binary does not have; \
                 user deletions wait for its answer"
            );
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

/// Starts `service`'s purge consumer (`<service>.user-purge`) in this process: it deletes
/// each deleted user's data through `data` and answers. Call once per data-holding service
/// the process runs; replicas each call it.
pub fn start_participant(
    service: &str,
    data: Arc<dyn UserData>,
    durable: Arc<dyn DurableEvents>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    start_purge_participant(service, data, durable, tasks, shutdown);
}

/// Starts the auth service's consumer of the services' answers (`auth.purge-answers`), in
/// the processes that run the auth service.
pub fn start_answers(
    auth: Arc<AuthService>,
    durable: Arc<dyn DurableEvents>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    run_consumer(
        durable,
        PURGE_ANSWERS_CONSUMER,
        PURGE_ANSWERS_PREFIX,
        Arc::new(PurgeAnswers(auth)),
        tasks,
        shutdown,
    );
}
