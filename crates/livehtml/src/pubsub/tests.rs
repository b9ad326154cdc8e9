//! Topics, offsets, history and recovery, with subscribers that keep what they are offered.

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
    /// The positions it was told to start from (marks, which a plain page skips).
    marks: Mutex<Vec<Position>>,
}

fn kept(capacity: usize) -> Arc<Kept> {
    Arc::new(Kept {
        capacity,
        items: Mutex::default(),
        overflowed: Default::default(),
        in_burst: AtomicU64::new(0),
        marks: Mutex::default(),
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
        if frame.is_mark() {
            self.marks.lock().unwrap().extend(frame.position());
            return Offer::Queued;
        }
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
    fn resync(&self) {
        self.overflowed.store(true, Ordering::Relaxed);
    }
}

/// A publish that follows the topic's last one with no pause is part of a burst; one after
/// a pause (a page's round trip) is not. (The clock is set here, not waited for.)
#[test]
fn publishes_with_no_pause_between_them_are_a_burst() {
    let pubsub = PubSub::default();
    let a = kept(8);
    let _sa = pubsub.subscribe("room", a.clone(), None, 8).0;
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
    let _sa = pubsub.subscribe("room", a.clone(), None, 8).0;
    let _sb = pubsub.subscribe("room", b.clone(), None, 8).0;
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
    let _s1 = pubsub.subscribe("room", slow.clone(), None, 8).0;
    let _s2 = pubsub.subscribe("room", fast.clone(), None, 8).0;
    assert_eq!(pubsub.publish("room", Frame::text("1")), 2);
    assert_eq!(pubsub.publish("room", Frame::text("2")), 1);
    assert!(slow.is_closed());
    assert!(matches!(fast.pop(), Some(Ok(f)) if f.as_text() == Some("1")));
    assert!(matches!(fast.pop(), Some(Ok(f)) if f.as_text() == Some("2")));
}

#[test]
fn dropping_the_last_subscription_forgets_the_topic() {
    let pubsub = PubSub::default();
    let sub = pubsub.subscribe("room", kept(1), None, 8).0;
    assert_eq!(pubsub.subscriber_count("room"), 1);
    drop(sub);
    assert_eq!(pubsub.subscriber_count("room"), 0);
    assert!(pubsub.inner.topics.lock().unwrap().is_empty());
}

fn texts(kept: &Kept) -> Vec<String> {
    std::iter::from_fn(|| kept.pop()).filter_map(|i| i.ok()?.as_text().map(str::to_owned)).collect()
}

fn back(at: Position) -> Since {
    Since { reconnect: true, positions: vec![at], tracks: true }
}

/// A page that comes back within the history gets exactly what it missed, in order, before
/// anything new; told where it starts otherwise.
#[test]
fn a_reconnect_is_replayed_what_it_missed_before_anything_new() {
    let pubsub = PubSub::default();
    pubsub.keep_history("room:*", History::new(10));
    let first = kept(16);
    let (sub, recovery) = pubsub.subscribe("room:1", first.clone(), None, 8);
    assert_eq!(recovery, Recovery::New);
    let start = first.marks.lock().unwrap()[0];
    assert_eq!(start.offset, 0);
    pubsub.publish("room:1", Frame::text("a"));
    drop(sub);
    // Recorded while nobody listens: the topic keeps its history.
    for m in ["b", "c", "d"] {
        assert_eq!(pubsub.publish("room:1", Frame::text(m)), 0);
    }
    let again = kept(16);
    let seen = Position { offset: 1, ..start };
    let (_sub, recovery) = pubsub.subscribe("room:1", again.clone(), Some(&back(seen)), 8);
    assert_eq!(recovery, Recovery::Replayed(3));
    pubsub.publish("room:1", Frame::text("e"));
    assert_eq!(texts(&again), ["b", "c", "d", "e"]);
    assert!(again.marks.lock().unwrap().is_empty(), "the replay says where the page is");

    // Nothing missed: nothing replayed, the position confirmed.
    let current = kept(16);
    let now = pubsub.position("room:1").unwrap();
    let (_s, recovery) = pubsub.subscribe("room:1", current.clone(), Some(&back(now)), 8);
    assert_eq!(recovery, Recovery::Replayed(0));
    assert_eq!(*current.marks.lock().unwrap(), [now]);
}

#[test]
fn a_gap_that_is_not_known_whole_is_lost_never_partly_replayed() {
    let pubsub = PubSub::default();
    pubsub.keep_history("room", History::new(2));
    let start = pubsub.position("room").unwrap();
    for m in ["a", "b", "c"] {
        pubsub.publish("room", Frame::text(m));
    }
    let late = kept(16);
    let (_s, recovery) = pubsub.subscribe("room", late.clone(), Some(&back(start)), 8);
    assert_eq!(recovery, Recovery::Lost);
    assert!(late.pop().is_none(), "no partial replay");
    assert_eq!(*late.marks.lock().unwrap(), [pubsub.position("room").unwrap()], "starts from now");

    // More than the connection may be sent at once: a resync, not an overflow.
    let small = kept(16);
    let seen = Position { offset: 1, ..start };
    let (_s, recovery) = pubsub.subscribe("room", small.clone(), Some(&back(seen)), 1);
    assert_eq!(recovery, Recovery::Lost);

    // A page whose claim does not move (a plain htmx socket's URL): any gap is a resync, so it
    // is never sent what it may have shown already; no gap is no resync.
    let fixed = Since { tracks: false, ..back(Position { offset: 2, ..start }) };
    assert_eq!(pubsub.subscribe("room", kept(16), Some(&fixed), 8).1, Recovery::Lost);
    let now = Since { tracks: false, ..back(pubsub.position("room").unwrap()) };
    assert_eq!(pubsub.subscribe("room", kept(16), Some(&now), 8).1, Recovery::Replayed(0));

    // Another history (a restart), or a page back with no position for this topic.
    let other = kept(16);
    let (_s, recovery) = pubsub.subscribe("room", other.clone(), Some(&Since::parse("12")), 8);
    assert_eq!(recovery, Recovery::Lost);
}

#[test]
fn a_topic_without_history_is_forgotten_and_a_return_to_it_is_lost() {
    let pubsub = PubSub::default();
    let a = kept(4);
    let (sub, _) = pubsub.subscribe("plain", a.clone(), None, 8);
    let seen = a.marks.lock().unwrap()[0];
    pubsub.publish("plain", Frame::text("x"));
    drop(sub);
    assert_eq!(pubsub.position("plain"), None);
    let (_s, recovery) = pubsub.subscribe("plain", kept(4), Some(&back(seen)), 8);
    assert_eq!(recovery, Recovery::Lost);
}

/// Concurrent publishers: every subscriber gets the topic's messages in offset order.
#[test]
fn every_subscriber_sees_one_order() {
    let pubsub = PubSub::default();
    let subs: Vec<_> = (0..4).map(|_| kept(10_000)).collect();
    let _guards: Vec<_> = subs.iter().map(|s| pubsub.subscribe("t", s.clone(), None, 8).0).collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..500 {
                    pubsub.publish("t", Frame::text("m"));
                }
            });
        }
    });
    for s in &subs {
        let offsets: Vec<u64> = std::iter::from_fn(|| s.pop()).map(|i| i.unwrap().position().unwrap().offset).collect();
        assert_eq!(offsets, (1..=2000).collect::<Vec<_>>());
    }
}
