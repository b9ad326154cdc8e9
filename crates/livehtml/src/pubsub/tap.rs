//! A subscription held by server code rather than a page: what a topic delivers, taken one
//! item at a time (to bridge a topic elsewhere, to test a back end, to watch a topic).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{Info, Offer, PubSub, Recovery, Subscriber, Subscription};
use crate::protocol::{Frame, Since};

/// What a [`Tap`] takes from its topic.
#[derive(Debug, Clone)]
pub enum Tapped {
    /// A message, with its position ([`Frame::position`]).
    Frame(Frame),
    /// An info ([`PubSub::publish_info`], presence).
    Info(Info),
    /// The topic lost messages this tap cannot be given (a cluster's broker lost them): a
    /// page would be resynced. The tap ends.
    Resync,
    /// The tap fell more than its capacity behind and was dropped, as a slow page is. It ends.
    Overflowed,
}

/// A subscription held by server code ([`PubSub::tap`]); dropping it unsubscribes.
#[derive(Debug)]
pub struct Tap {
    queue: Arc<Queue>,
    _subscription: Subscription,
}

#[derive(Debug)]
struct Queue {
    capacity: usize,
    items: Mutex<(VecDeque<Tapped>, bool)>,
    ready: Notify,
}

impl Queue {
    fn put(&self, item: Tapped) -> Offer {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.1 {
            return Offer::Closed;
        }
        let offer = match item {
            Tapped::Frame(_) | Tapped::Info(_) if items.0.len() >= self.capacity => {
                items.0.push_back(Tapped::Overflowed);
                items.1 = true;
                Offer::Overflowed
            }
            Tapped::Resync | Tapped::Overflowed => {
                items.0.push_back(item);
                items.1 = true;
                Offer::Closed
            }
            item => {
                items.0.push_back(item);
                Offer::Queued
            }
        };
        drop(items);
        self.ready.notify_one();
        offer
    }
}

impl Subscriber for Queue {
    fn offer(&self, frame: Frame) -> Offer {
        if frame.is_mark() {
            return Offer::Queued;
        }
        self.put(Tapped::Frame(frame))
    }

    fn offer_info(&self, info: Info) -> Offer {
        self.put(Tapped::Info(info))
    }

    fn is_closed(&self) -> bool {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn resync(&self) {
        self.put(Tapped::Resync);
    }
}

impl Tap {
    /// The next item, waiting for it; `None` once the tap has ended (after its `Resync` or
    /// `Overflowed`).
    pub async fn next(&mut self) -> Option<Tapped> {
        loop {
            let ready = self.queue.ready.notified();
            {
                let mut items = self.queue.items.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(item) = items.0.pop_front() {
                    return Some(item);
                }
                if items.1 {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// The next item if one is waiting.
    pub fn try_next(&mut self) -> Option<Tapped> {
        self.queue.items.lock().unwrap_or_else(|e| e.into_inner()).0.pop_front()
    }
}

impl PubSub {
    /// Subscribes server code to `topic`, keeping at most `capacity` items it has not taken.
    /// `since`: where a previous tap was (as a page's reconnect says it); it is replayed what
    /// it missed, as a page is, or told [`Recovery::Lost`].
    ///
    /// ```
    /// use livehtml::pubsub::{Recovery, Tapped};
    /// use livehtml::{Frame, PubSub};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let pubsub = PubSub::default();
    /// let (mut tap, recovery) = pubsub.tap("news", None, 100);
    /// assert_eq!(recovery, Recovery::New);
    /// pubsub.publish("news", Frame::text("<p>hi</p>"));
    /// let Some(Tapped::Frame(frame)) = tap.next().await else { panic!() };
    /// assert_eq!((frame.as_text(), frame.position().unwrap().offset), (Some("<p>hi</p>"), 1));
    /// # });
    /// ```
    pub fn tap(&self, topic: &str, since: Option<&Since>, capacity: usize) -> (Tap, Recovery) {
        let queue = Arc::new(Queue { capacity, items: Mutex::default(), ready: Notify::new() });
        let (subscription, recovery) = self.subscribe(topic, queue.clone(), since, capacity / 2);
        (Tap { queue, _subscription: subscription }, recovery)
    }
}
