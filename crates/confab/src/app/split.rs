//! The adapters a split process uses for the services it does not hold: the auth service's
//! over HTTP (verifying tokens with its JWKS, asking it about accounts).

use std::sync::Arc;

use confab_bus::EventBus;
use confab_core::auth::DynAuthenticator;
use confab_core::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `Authenticator` of a process without the auth service.
pub(super) fn authenticator(
    _config: &Config,
    _events: Arc<dyn EventBus>,
    _tasks: &TaskTracker,
    _shutdown: CancellationToken,
) -> anyhow::Result<DynAuthenticator> {
    anyhow::bail!("split mode without the auth service is being built")
}

/// Chat's view of accounts in a process without the auth service.
pub(super) fn accounts(
    _config: &Config,
    _authenticator: DynAuthenticator,
) -> anyhow::Result<Arc<dyn confab_chat::ports::Accounts>> {
    anyhow::bail!("split mode without the auth service is being built")
}
