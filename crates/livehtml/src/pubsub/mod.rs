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
//! # Offsets, history and recovery
//!
//! Every message published to a topic gets the topic's next offset, and every topic has an
//! epoch, random, that a new history starts with ([`crate::protocol::Position`]). A topic can
//! keep its recent messages ([`PubSub::keep_history`]); a page that reconnects says where it
//! was, and its subscription replays exactly what it missed, in order, before any new message,
//! or, when that is not known whole, says so ([`Recovery::Lost`]) so that the session sends the
//! page what it shows in full. A topic's publishes are serialised: every subscriber sees its
//! messages in offset order.
//!
//! # Closing
//!
//! A subscription ends when its connection ends; a topic with no subscribers left is forgotten
//! (one with a history once it has been idle for longer than its history keeps messages).
//!
//! # A cluster
//!
//! Several processes behind one load balancer behave as one server once each is
//! [connected](PubSub::connect) to the same broker (a [`Backend`]: `livehtml-redis`,
//! `livehtml-nats`). A publish is rendered once, travels to the broker as bytes, is numbered
//! there (the topic's epoch and offsets are the broker's), and each process frames it once for
//! its own subscribers, in the broker's order. Every process receives every topic of the
//! cluster and keeps its position (and history, where the topic keeps one), so a page can
//! reconnect to any process and be replayed what it missed. [`PubSub::members`] counts the
//! whole cluster; a process that falls silent leaves with its members after
//! [`PubSub::set_node_timeout`].
//!
//! What crosses processes: topic messages ([`PubSub::publish`], [`crate::Context::broadcast`]),
//! text infos ([`PubSub::publish_text_info`]), presence, and requests addressed to one process
//! ([`PubSub::request`]: an SSE page's posts and long-polls that reached a process which does not
//! hold their session, carried to the one that does). [`PubSub::publish_info`]'s values
//! are Rust values and stay in their process. A live view kept for its page during a dropped
//! connection is kept by the process that served it, and, if its type opts in
//! ([`crate::LiveView::save`]), in the broker ([`PubSub::keep`], [`PubSub::take`]): a page that
//! comes back to another process, or whose process died, resumes it there; a view that does not
//! opt in is mounted anew there (and told). No message is lost either way.
//!
//! When the broker is unreachable, publishes wait in a bounded queue
//! ([`cluster::WRITE_QUEUE`] messages) and go out, in order, when it is back; beyond the bound a
//! publish is refused loudly (logged, counted in [`PubSub::refused`], and it returns 0). The
//! process keeps serving its pages meanwhile; once reconnected it catches every topic up from
//! the broker's history, and a page whose topic lost messages the broker no longer keeps (or
//! whose epoch changed: the broker restarted without them) is closed with 1012 and resynced on
//! its reconnect ([`Recovery::Lost`]): never silently stale.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

mod announce;
mod backend;
pub mod cluster;
mod history;
mod kept;
mod presence;
mod relay;
mod roster;
mod subscriber;
mod tap;

pub use announce::COALESCE as PRESENCE_COALESCE;
pub use backend::{Backend, BackendError, Delivery, Inbox, Incoming, Outgoing, Snapshot};
pub use history::{History, Recovery};
pub use presence::{DEFAULT_GRACE, Member, PresenceDiff};
pub use relay::{Handler, RelayError};
pub use roster::DEFAULT_NODE_TIMEOUT;
pub(crate) use subscriber::{Batch, Offer, Subscriber, SubscriberRef};
pub use tap::{Tap, Tapped};

use crate::protocol::{Frame, Position, Since};
use history::Log;

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

    /// The value itself, if it is a `T` and this is its only copy (a task's result, a value
    /// offered to one page); otherwise the info back.
    pub fn take<T: Any + Send + Sync>(self) -> Result<T, Self> {
        if !self.payload.is::<T>() {
            return Err(self);
        }
        let topic = self.topic;
        let payload = self.payload.downcast::<T>().expect("checked above");
        Arc::try_unwrap(payload).map_err(|payload| Self { topic, payload })
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
    /// Which topics keep a history: a name, or a prefix ending in `*`.
    histories: RwLock<Vec<(String, History)>>,
    /// How many topics there may be before idle ones are looked for.
    sweep_at: AtomicU64,
    members: presence::Members,
    /// How long a member whose last connection dropped stays present, in milliseconds; 0: the
    /// default.
    presence_grace: AtomicU64,
    /// Set when the pub/sub joins a cluster.
    cluster: std::sync::OnceLock<cluster::Cluster>,
    /// This process's tag, and the requests between processes.
    relay: relay::Relay,
    /// What this process keeps for [`PubSub::take`] while it is alone.
    kept: kept::Kept,
    /// Each topic's member count, and presence changes on their way to its sessions.
    announcer: announce::Announcer,
}

#[derive(Debug)]
struct Topic {
    /// Shared with every subscription, so a subscriber holds no copy of the name.
    name: Arc<str>,
    /// Held for a whole publish (see the module docs).
    log: Mutex<Log>,
    subscribers: RwLock<Vec<(u64, SubscriberRef)>>,
    /// How fan-outs are run: the batch of the first subscriber that had one.
    batch: std::sync::OnceLock<Batch>,
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
    ///
    /// The message gets the topic's next offset, and is kept if the topic keeps a history (a
    /// topic with a history exists, and records, even while nobody is subscribed).
    ///
    /// In a [cluster](crate::pubsub#a-cluster) the frame goes to the broker, which delivers it
    /// to every process (this one too, a moment later); the count is this process's
    /// subscribers, and 0 when the broker has been unreachable for longer than its queue holds.
    pub fn publish(&self, topic: &str, frame: Frame) -> usize {
        if let Some(cluster) = self.inner.cluster.get() {
            return cluster.publish(self, topic, &frame);
        }
        let Some(topic) = self.topic(topic).or_else(|| self.with_history(topic)) else { return 0 };
        let mut log = topic.log();
        let frame = log.record(&frame);
        let taken = topic.offer_all(&frame);
        drop(log);
        taken
    }

    /// Keeps a history for `topic` (a name, or a prefix ending in `*`: `"room:*"`), so that
    /// pages that reconnect within it get what they missed ([`Recovery::Replayed`]) instead of
    /// a resync. Applies to topics that exist already and to those made later.
    ///
    /// ```
    /// use livehtml::{Frame, PubSub};
    /// use livehtml::pubsub::History;
    ///
    /// let pubsub = PubSub::default();
    /// pubsub.keep_history("chat", History::new(100));
    /// let before = pubsub.position("chat").unwrap();
    /// // Kept even while no page listens.
    /// pubsub.publish("chat", Frame::text("<li>hi</li>"));
    /// assert_eq!(pubsub.position("chat").unwrap().offset, before.offset + 1);
    /// ```
    pub fn keep_history(&self, topic: &str, history: History) {
        let mut histories = self.inner.histories.write().unwrap_or_else(|e| e.into_inner());
        histories.retain(|(pattern, _)| pattern != topic);
        histories.push((topic.to_owned(), history));
        drop(histories);
        let topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        for (name, t) in topics.iter() {
            if matches(topic, name) {
                t.log().set_history(history);
            }
        }
    }

    /// Where `topic` is now (its epoch and last offset), for a first render to hand its page
    /// (livehtml.js's `lh-since` attribute), so that the page's connection gets whatever is
    /// published between the render and the connection. `None` for a topic without history
    /// that nobody listens to.
    ///
    /// In a cluster every topic has one: a topic no process has published to yet is at epoch 0,
    /// offset 0 ("before its first message").
    pub fn position(&self, topic: &str) -> Option<Position> {
        if self.inner.cluster.get().is_some() {
            return Some(self.topic(topic).map_or_else(Position::default, |t| t.log().position()));
        }
        let topic = self.topic(topic).or_else(|| self.with_history(topic))?;
        Some(topic.log().position())
    }

    /// Who is on `topic` ([`crate::Context::track`]), in the order they joined (in a cluster:
    /// every process's members, by when each joined its process).
    pub fn members(&self, topic: &str) -> Vec<Member> {
        let Some(cluster) = self.inner.cluster.get() else { return self.inner.members.list(topic) };
        let mut members = self.inner.members.timed(topic);
        cluster.roster.add_remote(topic, &mut members);
        members.sort_by(|(a, x), (b, y)| (a, &x.key).cmp(&(b, &y.key)));
        let mut seen = std::collections::HashSet::new();
        members.into_iter().filter(|(_, m)| seen.insert(m.key.clone())).map(|(_, m)| m).collect()
    }

    /// How long a member whose last connection dropped still counts as present (default
    /// [`DEFAULT_GRACE`]): a page that reconnects within it never left.
    pub fn set_presence_grace(&self, grace: Duration) {
        let millis = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner.presence_grace.store(millis, Ordering::Relaxed);
    }

    /// Tracks one connection of member `key` on `topic`, until the guard drops (sessions use
    /// [`crate::Context::track`]). A new member is announced to the topic's sessions
    /// ([`PresenceDiff`]), in every process of a cluster.
    ///
    /// ```
    /// use livehtml::PubSub;
    ///
    /// let pubsub = PubSub::default();
    /// let ann = pubsub.track("room", "u1", "Ann");
    /// assert_eq!(pubsub.members("room")[0].meta, "Ann");
    /// # drop(ann);
    /// ```
    pub fn track(&self, topic: &str, key: &str, meta: &str) -> Tracked {
        if let Some(joined) = self.inner.members.track(topic, key, meta) {
            self.joined_here(topic, joined);
        }
        Tracked { pubsub: self.clone(), topic: topic.into(), key: key.into() }
    }

    fn untrack(&self, topic: &str, key: &str) {
        let Some(generation) = self.inner.members.untrack(topic, key) else { return };
        let grace = match self.inner.presence_grace.load(Ordering::Relaxed) {
            0 => presence::DEFAULT_GRACE,
            millis => Duration::from_millis(millis),
        };
        let leave = {
            let (pubsub, topic, key) = (self.clone(), topic.to_owned(), key.to_owned());
            move || {
                if let Some(left) = pubsub.inner.members.leave(&topic, &key, generation) {
                    pubsub.left_here(&topic, left);
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(grace).await;
                    leave();
                });
            }
            // No runtime to wait on (a connection dropped outside one): it leaves now.
            Err(_) => leave(),
        }
    }

    fn history_for(&self, name: &str) -> Option<History> {
        let histories = self.inner.histories.read().unwrap_or_else(|e| e.into_inner());
        histories.iter().rev().find(|(pattern, _)| matches(pattern, name)).map(|(_, h)| *h)
    }

    /// The topic, made now if it keeps a history.
    fn with_history(&self, name: &str) -> Option<Arc<Topic>> {
        self.history_for(name)?;
        Some(self.get_or_make(name))
    }

    /// Delivers `text` to the [`crate::Session::on_info`] of every subscriber of `topic`
    /// ([`Info::get`]`::<String>()`), in every process of a cluster (where
    /// [`PubSub::publish_info`] reaches only this one's). Returns how many subscribers of this
    /// process it reaches (in a cluster: will reach, once the broker delivers it back).
    ///
    /// ```
    /// use livehtml::PubSub;
    ///
    /// let pubsub = PubSub::default();
    /// assert_eq!(pubsub.publish_text_info("counter", "42"), 0);
    /// ```
    pub fn publish_text_info(&self, topic: &str, text: impl Into<String>) -> usize {
        let text = text.into();
        if let Some(cluster) = self.inner.cluster.get() {
            if !cluster.send(backend::Outgoing::Signal(cluster::info_signal(topic, &text))) {
                return 0;
            }
            return self.subscriber_count(topic);
        }
        self.publish_info(topic, text)
    }

    /// Delivers `payload` to the [`crate::Session::on_info`] of every subscriber of `topic` in
    /// this process, and returns how many took it. Slow subscribers are handled as for
    /// [`PubSub::publish`].
    pub fn publish_info(&self, topic: &str, payload: impl Any + Send + Sync) -> usize {
        let Some(t) = self.topic(topic) else { return 0 };
        let info = Info::new(topic, payload);
        // In order with the topic's messages (infos take no offset and are not kept).
        let _log = t.log();
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

    fn get_or_make(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(topic) = topics.get(name) {
            return topic.clone();
        }
        let clustered = self.inner.cluster.get().is_some();
        // Topics with a history outlive their subscribers: now and then, forget the idle ones.
        // (In a cluster every topic's position is kept: see `unsubscribe`.)
        if !clustered && topics.len() as u64 >= self.inner.sweep_at.load(Ordering::Relaxed) {
            let now = Instant::now();
            // The log before the subscribers: the lock order.
            let before = topics.len();
            topics.retain(|_, t| {
                !(t.log().expired(now) && t.subscribers.read().unwrap_or_else(|e| e.into_inner()).is_empty())
            });
            crate::observe::topics(topics.len() as f64 - before as f64);
            self.inner.sweep_at.store((topics.len() as u64 * 2).max(64), Ordering::Relaxed);
        }
        let topic = Arc::new(Topic {
            name: name.into(),
            // In a cluster a topic this process has not heard of has had no message yet (every
            // topic's messages reach every process, and a process learns the others' positions
            // from the broker when it connects).
            log: Mutex::new(match clustered {
                true => Log::at(Position::default(), self.history_for(name)),
                false => Log::new(self.history_for(name)),
            }),
            subscribers: RwLock::default(),
            batch: std::sync::OnceLock::new(),
            last_end: AtomicU64::new(0),
        });
        topics.insert(name.to_owned(), topic.clone());
        crate::observe::topics(1.0);
        topic
    }

    /// Subscribes `to` to `name`; the subscription lasts until the returned guard drops.
    ///
    /// `since`: what a reconnecting page says it saw. Before any new message, `to` is offered
    /// what it missed (at most `replay_limit` messages, else the page is resynced), or the
    /// topic's position (a mark) to start from.
    pub(crate) fn subscribe(
        &self,
        name: &str,
        to: SubscriberRef,
        since: Option<&Since>,
        replay_limit: usize,
    ) -> (Subscription, Recovery) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let topic = self.get_or_make(name);
        let mut log = topic.log();
        let recovery = match since.filter(|s| s.reconnect) {
            None => Recovery::New,
            Some(since) => match since
                .find(log.position().epoch)
                .or_else(|| since.find(0).filter(|p| p.offset == 0))
                .and_then(|seen| log.replay(seen))
            {
                Some(missed) if missed.len() <= replay_limit && (since.tracks || missed.is_empty()) => {
                    for frame in &missed {
                        to.offer(frame.clone());
                    }
                    Recovery::Replayed(missed.len())
                }
                _ => Recovery::Lost,
            },
        };
        if !matches!(recovery, Recovery::Replayed(n) if n > 0) {
            to.offer(Frame::mark(log.position()));
        }
        if let Some(batch) = to.batch() {
            let _ = topic.batch.set(batch);
        }
        topic.subscribers.write().unwrap_or_else(|e| e.into_inner()).push((id, to));
        drop(log);
        crate::observe::subscriptions(1.0);
        (Subscription { pubsub: self.clone(), topic: topic.name.clone(), id }, recovery)
    }

    fn unsubscribe(&self, name: &str, id: u64) {
        crate::observe::subscriptions(-1.0);
        let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        let Some(topic) = topics.get(name) else { return };
        let mut subscribers = topic.subscribers.write().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|(sid, to)| *sid != id && !to.is_closed());
        if subscribers.is_empty() {
            drop(subscribers);
            let mut log = topic.log();
            // A cluster's process keeps every topic's position: a message a page missed while
            // it reconnected to another process is still told apart from one it saw.
            if log.has_history() || self.inner.cluster.get().is_some() {
                log.used = Instant::now();
            } else {
                drop(log);
                topics.remove(name);
                crate::observe::topics(-1.0);
            }
        }
    }
}

impl Topic {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers `frame` (which has its position) to every subscriber; the caller holds the log.
    fn offer_all(&self, frame: &Frame) -> usize {
        let subscribers = self.subscribers.read().unwrap_or_else(|e| e.into_inner());
        // (A topic's first publish follows none.)
        let last_end = self.last_end.load(Ordering::Relaxed);
        let burst = last_end != 0 && micros().saturating_sub(last_end) < BURST_GAP;
        let mut taken = 0;
        let mut offer_all = || {
            let offer = |to: &SubscriberRef| {
                if burst { to.offer_in_burst(frame.clone()) } else { to.offer(frame.clone()) }
            };
            taken = subscribers.iter().filter(|(_, to)| offer(to) == Offer::Queued).count();
        };
        // A burst is not batched: each connection's task writes what it brought, many frames a
        // write.
        match self.batch.get().filter(|_| !burst) {
            Some(batch) => batch(&mut offer_all),
            None => offer_all(),
        }
        self.last_end.store(micros().max(1), Ordering::Relaxed);
        crate::observe::published(subscribers.len(), frame.len());
        taken
    }
}

/// Whether `pattern` (a name, or a prefix ending in `*`) covers the topic `name`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// One connection's presence on a topic; dropping it untracks (the member leaves after the
/// grace period if that was its last connection).
#[derive(Debug)]
pub struct Tracked {
    pubsub: PubSub,
    topic: Box<str>,
    key: Box<str>,
}

impl Tracked {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.pubsub.untrack(&self.topic, &self.key);
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
mod tests;
