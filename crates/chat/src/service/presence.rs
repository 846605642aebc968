//! Real-time connections: at most `sockets_per_user` per user, each a member (the socket's
//! id) of the user's set in the [`Membership`](confab_cache::Membership) port, kept alive by
//! its socket task and removed when it ends; and the `presence` event telling a user's tabs
//! how many are open. With the shared adapter (Redis, split mode) the cap and the count span
//! every replica, and a replica killed with sockets open stops counting them after
//! [`SOCKET_TTL`]; all-in-one keeps the set in this process.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{ChatError, ChatService};
use crate::events::Presence;

/// How long an open socket counts without being refreshed.
pub const SOCKET_TTL: Duration = Duration::from_secs(60);
/// How often an open socket's task refreshes it: well within [`SOCKET_TTL`].
pub const SOCKET_REFRESH: Duration = Duration::from_secs(20);

/// The set of `user`'s open sockets.
fn sockets_set(user: Uuid) -> String {
    format!("chat:sockets:{}", user.simple())
}

/// One open real-time connection of a user (see [`ChatService::reserve_socket`]). Give it
/// back with [`SocketSlot::release`]; dropped without that, it is given back on a tracked
/// task.
pub struct SocketSlot {
    service: Arc<ChatService>,
    user: Uuid,
    id: String,
    released: bool,
}

impl std::fmt::Debug for SocketSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSlot")
            .field("user", &self.user)
            .field("id", &self.id)
            .finish()
    }
}

impl SocketSlot {
    /// Keeps the socket counted for another [`SOCKET_TTL`]; call every [`SOCKET_REFRESH`].
    pub async fn refresh(&self) {
        let set = sockets_set(self.user);
        if let Err(error) = self
            .service
            .sockets
            .refresh(&set, &self.id, SOCKET_TTL)
            .await
        {
            tracing::warn!(%error, "open socket not refreshed");
        }
    }

    /// Stops counting the socket.
    pub async fn release(mut self) {
        self.released = true;
        leave(&self.service, self.user, &self.id).await;
    }
}

async fn leave(service: &ChatService, user: Uuid, id: &str) {
    if let Err(error) = service.sockets.leave(&sockets_set(user), id).await {
        // It leaves by itself after its time to live.
        tracing::warn!(%error, "closed socket not removed; it expires by itself");
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.service
            .sockets_here
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if self.released {
            return;
        }
        // Dropped unreleased (the upgrade failed): give the place back on a tracked task;
        // outside a runtime it expires by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let service = self.service.clone();
            let (user, id) = (self.user, std::mem::take(&mut self.id));
            self.service
                .tasks
                .spawn_on(async move { leave(&service, user, &id).await }, &runtime);
        }
    }
}

impl ChatService {
    /// Reserves one of `user`'s real-time connections, before the socket is opened: at most
    /// `sockets_per_user` at once (each holds a subscription and a task) across every
    /// replica that shares the membership port.
    pub async fn reserve_socket(self: &Arc<Self>, user: Uuid) -> Result<SocketSlot, ChatError> {
        let id = Uuid::now_v7().simple().to_string();
        let max = self.settings.sockets_per_user;
        match self
            .sockets
            .join(&sockets_set(user), &id, max, SOCKET_TTL)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(ChatError::TooMany {
                    code: "too_many_sockets",
                    message: format!(
                        "at most {max} real-time connections per user are open at once; close \
                         a tab or another client"
                    ),
                });
            }
            Err(error) => {
                tracing::warn!(%error, "open sockets cannot be counted; the cap is not checked");
            }
        }
        // Counted while the slot lives; its `Drop` takes it off again.
        self.sockets_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SocketSlot {
            service: self.clone(),
            user,
            id,
            released: false,
        })
    }

    /// `user`'s open sockets now (on every replica sharing the membership port).
    pub async fn open_sockets(&self, user: Uuid) -> Option<usize> {
        match self.sockets.count(&sockets_set(user)).await {
            Ok(tabs) => Some(tabs),
            Err(error) => {
                tracing::warn!(%error, "open sockets cannot be counted");
                None
            }
        }
    }

    /// Tells `user`'s tabs how many of them are connected now.
    pub async fn announce_presence(&self, user: Uuid) {
        let Some(tabs) = self.open_sockets(user).await else {
            return;
        };
        self.publish(&Presence {
            user_id: user,
            online: tabs > 0,
            tabs,
        })
        .await;
    }
}
