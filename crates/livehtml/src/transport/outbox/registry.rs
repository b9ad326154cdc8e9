//! One heartbeat timer and one shutdown switch for many connections.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{Inbox, Shared};

/// Every connection of one heartbeat period: one timer pings them all, and a shutdown closes
/// them all, so a connection holds no timer and no cancellation future of its own.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    connections: Mutex<Vec<Weak<Shared>>>,
}

impl Registry {
    pub(crate) fn add(&self, inbox: &Inbox) {
        self.list().push(Arc::downgrade(&inbox.shared));
    }

    fn list(&self) -> MutexGuard<'_, Vec<Weak<Shared>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every open connection to ping its client, forgetting those that ended.
    pub(crate) fn tick(&self) {
        let mut list = self.list();
        list.retain(|weak| match weak.upgrade() {
            Some(shared) if !shared.out().closed => {
                shared.ping_due.store(true, Ordering::Release);
                shared.waker.wake();
                true
            }
            _ => false,
        });
    }

    /// Asks every open connection to close with `code`.
    pub(crate) fn close_all(&self, code: u16) {
        for shared in self.list().iter().filter_map(Weak::upgrade) {
            shared.request_close(code);
        }
    }
}
