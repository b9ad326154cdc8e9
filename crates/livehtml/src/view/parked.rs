//! Views kept while their page is away: a connection that drops leaves its view here for the
//! grace period, under the page's identity (the random `page` of its signed token), and a
//! reconnect of the same page takes it back, state and all. Only the holder of that token can:
//! the identity is random per render and signed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::DynView;
use super::durable::Saved;
use crate::render::Fingerprints;

/// How long a reconnect waits for the connection it replaces to let go of its view: a page
/// whose network dropped may come back before the server has noticed the old socket is gone.
const HANDOVER: Duration = Duration::from_secs(2);

/// A view whose connection dropped, as it was: what its page was last sent, and its URL.
pub(crate) struct Parked {
    pub(crate) view: Box<dyn DynView>,
    pub(crate) shown: Fingerprints,
    pub(crate) url: String,
    /// Its last write to the cluster's broker (a view that opted in to outliving its process).
    pub(crate) saved: Saved,
}

enum Slot {
    /// A connection runs the page's view.
    Active,
    /// Kept until the instant.
    Kept(Parked, Instant),
}

/// The pages whose view runs on a connection, and the views kept for pages that are away.
pub(crate) struct Parking {
    grace: Duration,
    pages: Arc<Mutex<HashMap<u64, Slot>>>,
    /// Told whenever a page's connection lets go of its view.
    released: Notify,
}

impl Parking {
    pub(crate) fn new(grace: Duration) -> Self {
        Self { grace, pages: Arc::default(), released: Notify::new() }
    }

    pub(crate) fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// How long a dropped page's view is kept.
    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection joins as `page`: the view kept for it, if its grace period has not ended.
    /// If another connection still runs the page's view (the old socket of a page that came
    /// back before the server saw it go), waits a moment for it to let go.
    pub(crate) async fn claim(&self, page: u64) -> Option<Parked> {
        let deadline = Instant::now() + HANDOVER;
        loop {
            let released = self.released.notified();
            {
                let mut pages = self.pages();
                match pages.insert(page, Slot::Active) {
                    Some(Slot::Kept(parked, until)) => return (Instant::now() < until).then_some(parked),
                    None => return None,
                    // Still running elsewhere (left marked active): wait for it.
                    Some(Slot::Active) => {}
                }
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                // A second tab with the same page (a duplicated tab): it gets a view of its own.
                return None;
            }
        }
    }

    /// A connection that ran `page` lets go of it: its view is kept for the grace period (not at
    /// all with a zero grace, or without a view).
    pub(crate) fn release(&self, page: u64, parked: Option<Parked>) {
        let Some(parked) = parked.filter(|_| !self.grace.is_zero()) else {
            self.pages().remove(&page);
            self.released.notify_waiters();
            return;
        };
        let until = Instant::now() + self.grace;
        self.pages().insert(page, Slot::Kept(parked, until));
        self.released.notify_waiters();
        // Dropped when the grace period ends, unless taken back (or kept again) by then.
        let pages = Arc::downgrade(&self.pages);
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            let Some(pages) = pages.upgrade() else { return };
            let mut pages = pages.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(pages.get(&page), Some(Slot::Kept(_, at)) if *at <= Instant::now()) {
                pages.remove(&page);
            }
        });
    }

    /// A connection now runs `page` (a navigation gave it a new one).
    pub(crate) fn activate(&self, page: u64) {
        self.pages().insert(page, Slot::Active);
    }
}
