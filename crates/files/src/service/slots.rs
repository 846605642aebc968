//! Per-user caps on work in progress in this process (uploads at once): a slot is taken
//! before the work starts and given back when its guard drops, however the work ends.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

#[derive(Debug)]
pub(super) struct UserSlots {
    max: usize,
    held: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// One slot; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Slot {
    user: Uuid,
    held: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl UserSlots {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            held: Arc::default(),
        }
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// A slot for `user`, or `None` when they hold `max` already.
    pub(super) fn take(&self, user: Uuid) -> Option<Slot> {
        let mut held = self.held.lock();
        let n = held.entry(user).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            user,
            held: self.held.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        if let Some(n) = held.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_user_and_given_back_on_drop() {
        let slots = UserSlots::new(2);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        assert!(slots.take(a).is_none());
        assert!(slots.take(b).is_some(), "another user is not affected");
        drop(first);
        assert!(slots.take(a).is_some());
    }
}
