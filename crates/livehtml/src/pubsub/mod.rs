//! Topics (rooms) and broadcast, in process.
//!
//! A message is published as an encoded [`Frame`]: it is rendered and framed once, and every
//! subscriber gets the same bytes. A subscriber is one connection's queue, whatever its
//! transport (the WebSocket transport writes the bytes to the socket from the publisher's own
//! thread); one whose socket is full keeps a reference to those bytes until it drains.
//!
//! # Slow subscribers
//!
//! Publishing never waits. Each connection has a bounded outbound queue
//! ([`Limits::outbound_queue`](crate::Limits::outbound_queue)); when a publish finds it full, that
//! connection is closed with [`close::SLOW_CONSUMER`](crate::protocol::close::SLOW_CONSUMER)
//! (1013) and the message is not queued for it. Every other subscriber still gets the message,
//! and the publisher is never slowed down by one client that cannot keep up.
//!
//! # Closing
//!
//! A subscription ends when its connection ends; a topic with no subscribers left is forgotten.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

mod subscriber;

pub(crate) use subscriber::{Offer, Subscriber, SubscriberRef};

use crate::protocol::Frame;

/// A value delivered to a session's [`crate::Session::on_info`]: published to a topic with
/// [`PubSub::publish_info`], or sent by a timer of the session itself
/// ([`crate::Context::every`]). Cheap to clone: every subscriber shares one allocation.
#[derive(Clone)]
pub struct Info {
    topic: Arc<str>,
    payload: Arc<dyn Any + Send + Sync>,
}

impl Info {
    /// A value, as from `topic` (empty for a session's own timers).
    pub fn new(topic: &str, payload: impl Any + Send + Sync) -> Self {
        Self { topic: topic.into(), payload: Arc::new(payload) }
    }

    /// The topic it was published to; empty for a session's own timers.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.payload.downcast_ref()
    }
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Info").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// The in-process topic registry. Cheap to clone; clones share the same topics.
///
/// ```
/// use livehtml::{Frame, PubSub};
///
/// let pubsub = PubSub::default();
/// // Nobody listens yet: the frame reaches no one.
/// assert_eq!(pubsub.publish("lobby", Frame::text("<p id=x hx-swap-oob=true>hi</p>")), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PubSub {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Topic {
    /// Shared with every subscription, so a subscriber holds no copy of the name.
    name: Arc<str>,
    subscribers: RwLock<Vec<(u64, SubscriberRef)>>,
    /// When the last publish ended, in microseconds since [`epoch`]: a publish that follows it
    /// within [`BURST_GAP`] is part of a burst.
    last_end: AtomicU64,
}

/// A publish that starts this soon after the topic's previous one ended is part of a burst: its
/// subscribers' tasks write what piles up, many messages a write, instead of the publisher
/// writing each message to each socket. (A page's round trip is far longer: a closed loop of
/// sends and replies is written at once.)
const BURST_GAP: u64 = 100;

fn micros() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl PubSub {
    /// Queues `frame` for every subscriber of `topic` and returns how many took it.
    /// Subscribers whose queue is full are closed as slow consumers (see the module docs).
    pub fn publish(&self, topic: &str, frame: Frame) -> usize {
        let Some(topic) = self.topic(topic) else { return 0 };
        let subscribers = topic.subscribers.read().unwrap_or_else(|e| e.into_inner());
        let burst = micros().saturating_sub(topic.last_end.load(Ordering::Relaxed)) < BURST_GAP;
        let offer = |to: &SubscriberRef| {
            if burst { to.offer_in_burst(frame.clone()) } else { to.offer(frame.clone()) }
        };
        let taken = subscribers.iter().filter(|(_, to)| offer(to) == Offer::Queued).count();
        topic.last_end.store(micros(), Ordering::Relaxed);
        taken
    }

    /// Delivers `payload` to the [`crate::Session::on_info`] of every subscriber of `topic`, and
    /// returns how many took it. Slow subscribers are handled as for [`PubSub::publish`].
    pub fn publish_info(&self, topic: &str, payload: impl Any + Send + Sync) -> usize {
        let Some(t) = self.topic(topic) else { return 0 };
        let info = Info::new(topic, payload);
        let subscribers = t.subscribers.read().unwrap_or_else(|e| e.into_inner());
        subscribers.iter().filter(|(_, to)| to.offer_info(info.clone()) == Offer::Queued).count()
    }

    /// How many connections are subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topic(topic).map_or(0, |t| t.subscribers.read().unwrap_or_else(|e| e.into_inner()).len())
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.inner.topics.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Subscribes `to` to `name`; the subscription lasts until the returned guard drops.
    pub(crate) fn subscribe(&self, name: &str, to: SubscriberRef) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let topic = {
            let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
            match topics.get(name) {
                Some(topic) => topic.clone(),
                None => {
                    let topic = Arc::new(Topic {
                        name: name.into(),
                        subscribers: RwLock::default(),
                        last_end: AtomicU64::new(0),
                    });
                    topics.insert(name.to_owned(), topic.clone());
                    topic
                }
            }
        };
        topic.subscribers.write().unwrap_or_else(|e| e.into_inner()).push((id, to));
        Subscription { pubsub: self.clone(), topic: topic.name.clone(), id }
    }

    fn unsubscribe(&self, name: &str, id: u64) {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        let Some(topic) = topics.get(name) else { return };
        let mut subscribers = topic.subscribers.write().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|(sid, to)| *sid != id && !to.is_closed());
        if subscribers.is_empty() {
            drop(subscribers);
            topics.remove(name);
        }
    }
}

/// A live subscription; dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct Subscription {
    pubsub: PubSub,
    topic: Arc<str>,
    id: u64,
}

impl Subscription {
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pubsub.unsubscribe(&self.topic, self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A subscriber that keeps what it is offered, up to `capacity` items.
    #[derive(Debug)]
    struct Kept {
        capacity: usize,
        items: Mutex<VecDeque<Result<Frame, Info>>>,
        overflowed: std::sync::atomic::AtomicBool,
        /// How many frames came as part of a burst.
        in_burst: AtomicU64,
    }

    fn kept(capacity: usize) -> Arc<Kept> {
        Arc::new(Kept {
            capacity,
            items: Mutex::default(),
            overflowed: Default::default(),
            in_burst: AtomicU64::new(0),
        })
    }

    impl Kept {
        fn take(&self, item: Result<Frame, Info>) -> Offer {
            let mut items = self.items.lock().unwrap();
            if self.overflowed.load(Ordering::Relaxed) {
                return Offer::Closed;
            }
            if items.len() >= self.capacity {
                self.overflowed.store(true, Ordering::Relaxed);
                return Offer::Overflowed;
            }
            items.push_back(item);
            Offer::Queued
        }

        fn pop(&self) -> Option<Result<Frame, Info>> {
            self.items.lock().unwrap().pop_front()
        }
    }

    impl Subscriber for Kept {
        fn offer(&self, frame: Frame) -> Offer {
            self.take(Ok(frame))
        }
        fn offer_in_burst(&self, frame: Frame) -> Offer {
            self.in_burst.fetch_add(1, Ordering::Relaxed);
            self.take(Ok(frame))
        }
        fn offer_info(&self, info: Info) -> Offer {
            self.take(Err(info))
        }
        fn is_closed(&self) -> bool {
            self.overflowed.load(Ordering::Relaxed)
        }
    }

    /// A publish that follows the topic's last one with no pause is part of a burst; one after
    /// a pause (a page's round trip) is not. (The clock is set here, not waited for.)
    #[test]
    fn publishes_with_no_pause_between_them_are_a_burst() {
        let pubsub = PubSub::default();
        let a = kept(8);
        let _sa = pubsub.subscribe("room", a.clone());
        let topic = pubsub.topic("room").unwrap();
        pubsub.publish("room", Frame::text("first"));
        assert_eq!(a.in_burst.load(Ordering::Relaxed), 0, "the first publish is written at once");
        topic.last_end.store(micros(), Ordering::Relaxed);
        pubsub.publish("room", Frame::text("right after"));
        assert_eq!(a.in_burst.load(Ordering::Relaxed), 1);
        topic.last_end.store(micros().saturating_sub(10 * BURST_GAP), Ordering::Relaxed);
        pubsub.publish("room", Frame::text("after a pause"));
        assert_eq!(a.in_burst.load(Ordering::Relaxed), 1);
        assert_eq!(a.items.lock().unwrap().len(), 3);
    }

    #[test]
    fn publish_reaches_every_subscriber_with_shared_bytes() {
        let pubsub = PubSub::default();
        let (a, b) = (kept(4), kept(4));
        let _sa = pubsub.subscribe("room", a.clone());
        let _sb = pubsub.subscribe("room", b.clone());
        let frame = Frame::text("hi");
        assert_eq!(pubsub.publish("room", frame.clone()), 2);
        for r in [&a, &b] {
            assert!(matches!(r.pop(), Some(Ok(f)) if f == frame));
        }
        assert_eq!(pubsub.publish_info("room", 42u32), 2);
        for r in [&a, &b] {
            let Some(Err(info)) = r.pop() else { panic!("an info") };
            assert_eq!((info.topic(), info.get::<u32>(), info.get::<i64>()), ("room", Some(&42), None));
        }
        assert_eq!(pubsub.publish("other", Frame::text("x")), 0);
    }

    #[test]
    fn a_full_subscriber_is_cut_off_and_the_rest_still_receive() {
        let pubsub = PubSub::default();
        let (slow, fast) = (kept(1), kept(8));
        let _s1 = pubsub.subscribe("room", slow.clone());
        let _s2 = pubsub.subscribe("room", fast.clone());
        assert_eq!(pubsub.publish("room", Frame::text("1")), 2);
        assert_eq!(pubsub.publish("room", Frame::text("2")), 1);
        assert!(slow.is_closed());
        assert!(matches!(fast.pop(), Some(Ok(f)) if f.as_text() == Some("1")));
        assert!(matches!(fast.pop(), Some(Ok(f)) if f.as_text() == Some("2")));
    }

    #[test]
    fn dropping_the_last_subscription_forgets_the_topic() {
        let pubsub = PubSub::default();
        let sub = pubsub.subscribe("room", kept(1));
        assert_eq!(pubsub.subscriber_count("room"), 1);
        drop(sub);
        assert_eq!(pubsub.subscriber_count("room"), 0);
        assert!(pubsub.inner.topics.lock().unwrap().is_empty());
    }
}
