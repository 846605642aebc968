//! Real-time connections: at most `sockets_per_user` per user in this process, each holding a
//! slot until it ends, and the `presence` event telling a user's tabs how many are open.

use std::sync::Arc;

use uuid::Uuid;

use super::{ChatError, ChatService};
use crate::events::Presence;

/// One open real-time connection of a user (see [`ChatService::reserve_socket`]).
pub struct SocketSlot {
    service: Arc<ChatService>,
    user: Uuid,
}

impl std::fmt::Debug for SocketSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSlot")
            .field("user", &self.user)
            .finish()
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut presence = self.service.presence.lock();
        if let Some(count) = presence.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                presence.remove(&self.user);
            }
        }
    }
}

impl ChatService {
    /// Reserves one of `user`'s real-time connections in this process, before the socket is
    /// opened: at most `sockets_per_user` at once (each holds a subscription and a task). The
    /// slot is given back when the returned value is dropped, however the connection ends.
    pub fn reserve_socket(self: &Arc<Self>, user: Uuid) -> Result<SocketSlot, ChatError> {
        let mut presence = self.presence.lock();
        let count = presence.entry(user).or_insert(0);
        if *count >= self.settings.sockets_per_user {
            return Err(ChatError::TooMany {
                code: "too_many_sockets",
                message: format!(
                    "at most {} real-time connections per user are open at once; close a tab \
                     or another client",
                    self.settings.sockets_per_user
                ),
            });
        }
        *count += 1;
        Ok(SocketSlot {
            service: self.clone(),
            user,
        })
    }

    /// Tells `user`'s tabs how many of them are connected now.
    pub async fn announce_presence(&self, user: Uuid) {
        let tabs = self.presence.lock().get(&user).copied().unwrap_or(0);
        self.publish(&Presence {
            user_id: user,
            online: tabs > 0,
            tabs,
        })
        .await;
    }
}
