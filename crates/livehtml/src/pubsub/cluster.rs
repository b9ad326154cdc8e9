//! A process of a cluster: its publishes go to the broker (a [`Backend`]), and what the broker
//! delivers (every topic message of the cluster, in order) is recorded in the topics' logs and
//! offered to this process's subscribers, exactly as a publish in one process is.
//!
//! Publishes are queued for one writer task that sends them to the broker in batches, in
//! order. While the broker is unreachable they wait in that queue, which is bounded
//! ([`WRITE_QUEUE`] messages): beyond it a publish fails loudly (logged, counted, and
//! `publish` returns 0), never silently. A process keeps serving its own pages during an
//! outage; when the broker is back it catches up every topic from the broker's history, and a
//! topic whose gap is no longer kept (or whose epoch changed: the broker lost it) has its pages
//! resynced, never left stale.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, BackendError, Delivery, Inbox, Incoming, Outgoing, Snapshot};
use super::history::Accept;
use super::roster::Roster;
use super::{Inner, PubSub};
use crate::protocol::Frame;
use crate::protocol::envelope::{self, Envelope};

/// How many publishes wait for the broker at most.
pub const WRITE_QUEUE: usize = 65_536;

/// How many messages the writer sends in one batch at most.
const BATCH: usize = 256;

/// How long [`PubSub::connect`] waits for the broker before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between two attempts to reach the broker.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A process's link to the cluster.
pub(super) struct Cluster {
    /// Ends every task of the link ([`PubSub::halt`]).
    stop: CancellationToken,
    writer: mpsc::Sender<Outgoing>,
    /// The broker, for what is asked of it directly ([`Backend::take`]).
    pub(super) backend: Arc<dyn Backend>,
    /// This process, as its signals name it.
    pub(super) node: u64,
    pub(super) roster: Roster,
    /// Publishes refused because the queue to the broker was full.
    dropped: AtomicU64,
    /// Items queued for the broker, and items the broker took, so far.
    queued: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    /// Told whenever the broker took more.
    progress: Arc<Notify>,
    connected: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Queues `out` for the broker; `false` when the queue is full (logged and counted).
    pub(super) fn send(&self, out: Outgoing) -> bool {
        match self.writer.try_send(out) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::observe::broker_refused();
                if self.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    tracing::error!(
                        queued = WRITE_QUEUE,
                        "pub/sub broker unreachable and its queue full: publish refused"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(super) fn publish(&self, pubsub: &PubSub, topic: &str, frame: &Frame) -> usize {
        let Some(body) = envelope::frame(frame) else { return 0 };
        let history = pubsub.history_for(topic);
        if !self.send(Outgoing::Message { topic: topic.to_owned(), body, history }) {
            return 0;
        }
        pubsub.subscriber_count(topic)
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl PubSub {
    /// Joins a cluster through `backend` (a broker: `livehtml-redis`, `livehtml-nats`): from
    /// now on every publish goes through the broker, which numbers it and delivers it to every
    /// process of the cluster, this one included; presence counts the whole cluster. Returns
    /// once this process knows where every topic is (the broker's positions and histories), or
    /// an error when the broker cannot be reached within 10 s.
    ///
    /// Call it once, at start, after [`PubSub::keep_history`] (which every process of a cluster
    /// should be given alike), before the first page connects. What the broker and the queue
    /// to it do in an outage: see the [module docs](crate::pubsub#a-cluster).
    pub async fn connect(&self, backend: impl Backend) -> Result<(), BackendError> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let (writer, queued) = mpsc::channel(WRITE_QUEUE);
        // The process's tag first, so a request addressed to the tag finds its node in the roster;
        // the low half differs for every connect.
        let node = u64::from(self.node()) << 32 | u64::from(super::history::new_epoch());
        let stop = CancellationToken::new();
        let cluster = Cluster {
            stop: stop.clone(),
            writer,
            backend: backend.clone(),
            node,
            roster: Roster::default(),
            dropped: AtomicU64::new(0),
            queued: Arc::default(),
            written: Arc::default(),
            progress: Arc::default(),
            connected: AtomicBool::new(false),
        };
        let (written, progress) = (cluster.written.clone(), cluster.progress.clone());
        if self.inner.cluster.set(cluster).is_err() {
            return Err(BackendError::new("this pub/sub is already connected to a back end"));
        }
        tokio::spawn(stop.clone().run_until_cancelled_owned(write(backend.clone(), queued, written, progress)));
        let (inbox, incoming) = mpsc::channel(1024);
        tokio::spawn(stop.clone().run_until_cancelled_owned(backend.listen(Inbox(inbox))));
        let (ready, readied) = oneshot::channel();
        tokio::spawn(stop.clone().run_until_cancelled_owned(ingest(
            Arc::downgrade(&self.inner),
            backend,
            incoming,
            ready,
        )));
        tokio::spawn(stop.run_until_cancelled_owned(super::roster::beat(Arc::downgrade(&self.inner))));
        match tokio::time::timeout(CONNECT_TIMEOUT, readied).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(BackendError::new(format!("the broker could not be reached in {CONNECT_TIMEOUT:?}"))),
        }
    }

    /// Leaves the cluster at once, as a crash would: nothing queued is sent, no member leaves
    /// (the other processes count this one's members until the node timeout), and from now on
    /// nothing reaches this process's pages. For tests of a cluster's faults, and a process
    /// that must stop now.
    pub fn halt(&self) {
        if let Some(cluster) = self.inner.cluster.get() {
            cluster.stop.cancel();
            cluster.connected.store(false, Ordering::Relaxed);
        }
    }

    /// Waits until everything published so far has reached the broker, at most `timeout`:
    /// `true` when it has (always, alone). A process that stops calls it last (after its pages
    /// are closed), so that nothing it accepted is lost with it.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let Some(cluster) = self.inner.cluster.get() else { return true };
        let target = cluster.queued.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so progress made in between is not missed.
            let mut progressed = std::pin::pin!(cluster.progress.notified());
            progressed.as_mut().enable();
            if cluster.written.load(Ordering::Relaxed) >= target {
                return true;
            }
            if tokio::time::timeout_at(deadline, progressed).await.is_err() {
                return false;
            }
        }
    }

    /// Whether this process is connected to its cluster's broker (always `true` alone).
    pub fn is_connected(&self) -> bool {
        self.inner.cluster.get().is_none_or(Cluster::is_connected)
    }

    /// How many publishes were refused because the broker was unreachable for longer than
    /// its queue holds (always 0 alone).
    pub fn refused(&self) -> u64 {
        self.inner.cluster.get().map_or(0, Cluster::dropped)
    }

    /// A message from the broker: recorded and offered to this process's subscribers, or, after
    /// a gap, the topic caught up from the broker first.
    async fn receive(&self, backend: &dyn Backend, delivery: Delivery) {
        let gap = {
            let topic = self.get_or_make(&delivery.topic);
            let mut log = topic.log();
            match log.accept(delivery.position, delivery.prev, &decode(&delivery)) {
                Accept::Next(frame) => {
                    topic.offer_all(&frame);
                    false
                }
                Accept::Seen => false,
                Accept::Gap => true,
            }
        };
        if gap {
            self.catch_up(backend, &delivery.topic).await;
        }
    }

    /// Brings `name` up to the broker's position: what this process missed is offered to its
    /// subscribers in order, or, if the broker no longer keeps it whole, the topic starts over
    /// at the broker's history and its pages are resynced.
    async fn catch_up(&self, backend: &dyn Backend, name: &str) -> bool {
        let snapshot = match backend.read(name).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::warn!(topic = name, error = %e, "could not catch up a topic from the broker");
                return false;
            }
        };
        self.restore(name, snapshot);
        true
    }

    /// [`PubSub::catch_up`] once the broker answered.
    fn restore(&self, name: &str, snapshot: Snapshot) {
        let topic = self.get_or_make(name);
        let mut log = topic.log();
        let here = log.position();
        let Snapshot { position, messages } = snapshot;
        if position.epoch == here.epoch && position.offset <= here.offset {
            return;
        }
        let mut rest = messages.iter().filter(|m| m.position.epoch != here.epoch || m.position.offset > here.offset);
        let whole = position.epoch == here.epoch || here == Default::default();
        let first = rest.clone().next();
        if whole && first.is_some_and(|m| m.prev == here.offset) {
            for m in rest.by_ref() {
                if let Accept::Next(frame) = log.accept(m.position, m.prev, &decode(m)) {
                    topic.offer_all(&frame);
                }
            }
            return;
        }
        // Lost: start over where the broker's kept run starts, keep it for later replays, and
        // resync whoever follows the topic here (a page subscribed to a topic with no message
        // yet was told so, and has missed nothing it could be replayed: it is resynced too).
        let start = messages
            .first()
            .map_or(position, |m| crate::protocol::Position { epoch: m.position.epoch, offset: m.prev });
        log.restart(start);
        for m in &messages {
            log.accept(m.position, m.prev, &decode(m));
        }
        if log.position() != position {
            log.restart(position);
        }
        let subscribers = topic.subscribers.read().unwrap_or_else(|e| e.into_inner());
        if here != Default::default() || !subscribers.is_empty() {
            tracing::warn!(topic = name, from = %here, to = %position, "topic history lost: its pages are resynced");
        }
        for (_, to) in subscribers.iter() {
            to.resync();
        }
    }

    /// After a (re)connect: every topic the broker or this process knows is brought up to date.
    async fn catch_up_all(&self, backend: &dyn Backend) -> bool {
        let mut names = match backend.topics().await {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the broker's topics");
                return false;
            }
        };
        names.extend(self.inner.topics.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned());
        names.sort_unstable();
        names.dedup();
        let mut ok = true;
        for name in names {
            ok &= self.catch_up(backend, &name).await;
        }
        ok
    }
}

/// The message a delivery carries; bytes that are no message of ours still take their place
/// in the topic (as nothing a page is sent).
fn decode(delivery: &Delivery) -> Frame {
    match envelope::decode(&delivery.body) {
        Ok(Envelope::Frame(frame)) => frame,
        Ok(Envelope::Info(_)) | Err(_) => {
            tracing::warn!(topic = delivery.topic, "a message from the broker is not livehtml's: skipped");
            Frame::mark(delivery.position)
        }
    }
}

/// Sends the queued publishes to the broker, in order, a batch at a time; a batch that fails is
/// sent again, with backoff, until it goes through.
async fn write(
    backend: Arc<dyn Backend>,
    mut queued: mpsc::Receiver<Outgoing>,
    written: Arc<AtomicU64>,
    progress: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let mut backoff = Duration::from_millis(50);
        loop {
            match backend.publish(batch.clone()).await {
                Ok(()) => {
                    written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    progress.notify_waiters();
                    break;
                }
                Err(e) => {
                    // What the broker took is not sent twice.
                    let sent = e.sent().min(batch.len());
                    written.fetch_add(sent as u64, Ordering::Relaxed);
                    progress.notify_waiters();
                    batch.drain(..sent);
                    tracing::warn!(error = %e, waiting = batch.len(), "publish to the broker failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        batch.clear();
    }
}

/// Takes what the back end receives, in order, until the pub/sub is dropped.
async fn ingest(
    inner: Weak<Inner>,
    backend: Arc<dyn Backend>,
    mut incoming: mpsc::Receiver<Incoming>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    while let Some(next) = incoming.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let pubsub = PubSub { inner };
        let Some(cluster) = pubsub.inner.cluster.get() else { return };
        match next {
            Incoming::Message(delivery) => pubsub.receive(&*backend, delivery).await,
            Incoming::Signal(bytes) => pubsub.signal(&bytes),
            Incoming::Connected => {
                // Until it goes through: the broker's other connection may still be reconnecting.
                let mut backoff = Duration::from_millis(50);
                while !pubsub.catch_up_all(&*backend).await {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                {
                    cluster.connected.store(true, Ordering::Relaxed);
                    crate::observe::broker_connected(true);
                    pubsub.announce();
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
            }
            Incoming::Disconnected => {
                cluster.connected.store(false, Ordering::Relaxed);
                crate::observe::broker_connected(false);
                tracing::warn!("pub/sub broker connection lost; reconnecting");
            }
        }
    }
}

/// A text info for every process's sessions of `topic` (see [`PubSub::publish_text_info`]).
pub(super) fn info_signal(topic: &str, text: &str) -> Bytes {
    let mut out = Vec::with_capacity(topic.len() + text.len() + 3);
    out.push(b'i');
    out.extend_from_slice(&u16::try_from(topic.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(&envelope::info(text));
    Bytes::from(out)
}

impl PubSub {
    /// A signal from a process (this one included): an info, presence, or a request between
    /// processes and its answer.
    fn signal(&self, bytes: &[u8]) {
        match bytes.split_first() {
            Some((b'i', rest)) => {
                let Some((len, rest)) = rest.split_first_chunk::<2>() else { return };
                let Some((topic, text)) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len))) else { return };
                if let (Ok(topic), Ok(Envelope::Info(text))) = (std::str::from_utf8(topic), envelope::decode(text)) {
                    self.publish_info(topic, text);
                }
            }
            Some((b'p', rest)) => self.presence_signal(rest),
            Some((&super::relay::REQUEST, rest)) => self.relay_request(rest),
            Some((&super::relay::ANSWER, rest)) => self.relay_answer(rest),
            _ => tracing::debug!("a signal from the broker is not livehtml's: skipped"),
        }
    }
}
