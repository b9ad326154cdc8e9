//! What a pub/sub back end (a broker: Redis, NATS) does for a cluster of processes, and the
//! little a process needs from it. Implemented by `livehtml-redis` and `livehtml-nats`; no
//! broker's own types appear here.
//!
//! Every process receives every topic message of the cluster (as Phoenix.PubSub does with its
//! Redis adapter): a process answers a reconnecting page from what it holds, without asking the
//! broker, so subscribing stays synchronous and a page can reconnect to any process. The broker
//! gives each message its topic's next position (the epoch and offsets are the broker's, so
//! every process agrees on them), delivers messages in order per topic, and keeps the topic's
//! history (so a process that starts, or lost its connection, can catch up).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::History;
use crate::protocol::Position;

/// A topic message as the broker delivers it to every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic.
    pub topic: String,
    /// Its place in the topic: the topic's epoch and this message's offset.
    pub position: Position,
    /// The offset of the topic's message before it (0: none). Offsets grow, but need not grow
    /// by one (a NATS stream numbers all topics together): this is how a gap is seen.
    pub prev: u64,
    /// The message, opaque to the back end.
    pub body: Bytes,
}

/// A topic as the broker holds it now: where it is, and the messages it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The topic's epoch and last offset (epoch 0: the topic has no message yet).
    pub position: Position,
    /// The kept messages, oldest first, ending with the one at `position` (empty: none kept).
    pub messages: Vec<Delivery>,
}

/// What a process sends through the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A topic message: the broker gives it the topic's next position, keeps it as `history`
    /// says (none: only its position is kept), and delivers it to every process.
    Message {
        /// The topic.
        topic: String,
        /// The message, opaque to the back end.
        body: Bytes,
        /// How much of the topic the broker keeps.
        history: Option<History>,
    },
    /// A message between processes (presence), with no position and no history: delivered to
    /// every process that is connected now.
    Signal(Bytes),
    /// A value kept under `key` for `ttl` for any process to [take](Backend::take) (a live
    /// view's state while its page is away); `None` removes it. A later `Keep` of the same key
    /// replaces it: keeps are written in the order they are queued.
    Keep {
        /// The key, unique in the namespace.
        key: String,
        /// The value, opaque to the back end; `None`: remove it.
        value: Option<Bytes>,
        /// How long it is kept after this write.
        ttl: Duration,
    },
}

/// What the back end hands a process, in the order the broker delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A topic message.
    Message(Delivery),
    /// A message between processes.
    Signal(Bytes),
    /// The back end is connected (again): whatever was published while it was not may have
    /// been missed, and the process catches up from the broker's history.
    Connected,
    /// The back end lost the broker; it reconnects by itself, with backoff.
    Disconnected,
}

/// Where a back end delivers: one process's pub/sub.
#[derive(Debug, Clone)]
pub struct Inbox(pub(crate) mpsc::Sender<Incoming>);

impl Inbox {
    /// Hands `incoming` to the process, waiting while it is behind (so the broker's socket is
    /// read no faster than the process delivers). `false`: the process has stopped listening,
    /// and the back end should stop.
    pub async fn send(&self, incoming: Incoming) -> bool {
        self.0.send(incoming).await.is_ok()
    }

    /// Whether the process has stopped listening.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A failure of the broker or of the connection to it.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>, usize);

impl BackendError {
    /// Wraps the broker client's error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into(), 0)
    }

    /// A publish that failed after the first `sent` items of its batch were taken by the broker:
    /// only the rest is sent again.
    pub fn after(sent: usize, error: Self) -> Self {
        Self(error.0, sent)
    }

    /// How many items of a failed batch the broker took (0: unknown, or none).
    pub fn sent(&self) -> usize {
        self.1
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pub/sub back end: {}", self.0)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A broker that carries topics between processes. [`crate::PubSub::connect`] attaches one.
///
/// What the process relies on:
/// - a topic's messages are delivered to every process in the order of their offsets, each
///   with its predecessor's offset ([`Delivery::prev`]);
/// - a topic's epoch changes whenever its offsets start over (the broker lost it);
/// - [`Backend::read`] answers the kept messages as one unbroken run that ends at the topic's
///   position.
pub trait Backend: Send + Sync + 'static {
    /// Sends `batch`, in order. On an error the process sends again (with backoff) what the
    /// error does not say was sent ([`BackendError::after`]); a message that reached the broker
    /// although its error said otherwise is delivered twice.
    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), BackendError>>;

    /// Receives from the broker until `inbox` closes: every topic message and signal of the
    /// cluster, in order; [`Incoming::Connected`] once connected and after every reconnect;
    /// [`Incoming::Disconnected`] when the connection is lost. Reconnects by itself, with
    /// backoff, and never returns an error.
    fn listen(&self, inbox: Inbox) -> BoxFuture<'static, ()>;

    /// Where `topic` is and what the broker keeps of it.
    fn read(&self, topic: &str) -> BoxFuture<'_, Result<Snapshot, BackendError>>;

    /// The topics the broker keeps something of (a position, a history), for a process that
    /// starts to learn where they are.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;

    /// Takes the value kept under `key` ([`Outgoing::Keep`]): removed as it is read, so of two
    /// processes that take it at once only one gets it; `None` when nothing is kept (or its
    /// time ran out).
    fn take(&self, key: &str) -> BoxFuture<'_, Result<Option<Bytes>, BackendError>>;
}
