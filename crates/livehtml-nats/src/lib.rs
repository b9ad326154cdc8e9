//! A NATS back end for livehtml: several processes on one NATS server (or cluster) behave as
//! one server. Needs JetStream (`nats-server -js`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pubsub = livehtml::PubSub::default();
//! pubsub.connect(livehtml_nats::Nats::new("nats://127.0.0.1:4222", "myapp")).await?;
//! # Ok(()) }
//! ```
//!
//! # How it uses NATS
//!
//! Topic messages go into one JetStream stream per namespace (`LH_{namespace}`, subjects
//! `{namespace}.t.{topic}`, on file storage so a restarted server keeps them); a topic's offset
//! is the stream's sequence number of its message, its epoch comes from the stream's creation
//! time (a stream made anew, its history gone, is a new epoch). Each message carries its
//! topic's previous sequence (`Lh-Prev`), and is published with
//! `Nats-Expected-Last-Subject-Sequence` set to it, so JetStream refuses a message whose
//! predecessor is not the one it names: the chain of a topic never has a hole the processes
//! cannot see. Every process reads the whole stream through one ordered consumer (which
//! resumes where it was after a reconnect); signals between processes (presence) travel on
//! plain NATS, `{namespace}.s`. A topic keeps its last [`Nats::history`] messages (default
//! 1,000) for a day.
//!
//! Values kept for any process to take (a live view's state while its page is away) live in a
//! stream of their own, `LH_{namespace}_kept` (the last message of each key's subject, an hour at
//! most), each with its expiry in front of it; a take reads a key's last message and writes an
//! empty one after it only if none came in between, so one process gets it.
//!
//! A message larger than the server's `max_payload` (1 MB by default) is dropped with an error
//! in the log: raise `max_payload` in the server's configuration for larger ones.
//!
//! A publish that fails (NATS unreachable) is sent again by livehtml when NATS is back; one
//! that reached JetStream just before the connection broke may then be delivered twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{HeaderMap, header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use livehtml::protocol::Position;
use livehtml::pubsub::{Backend, BackendError, Delivery, Inbox, Incoming, Outgoing, Snapshot};
use tokio::sync::{OnceCell, mpsc};

/// The header naming a message's predecessor in its topic.
const PREV: &str = "Lh-Prev";

/// How long a topic's messages are kept.
const KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

/// The longest a kept value lives (its stream's age limit): a value's own, shorter time to live
/// travels with it, since NATS 2.9 has no time to live per message.
const KEPT_MAX: Duration = Duration::from_secs(3600);

/// A NATS back end ([`Backend`]) for livehtml's [`PubSub::connect`](livehtml::PubSub::connect).
#[derive(Clone)]
pub struct Nats {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    namespace: String,
    history: i64,
    connection: OnceCell<Connection>,
    /// The stream's epoch (from its creation time), read on every (re)connect.
    epoch: AtomicU32,
    /// Each topic's last sequence, as far as this process knows (what the next publish names
    /// as its predecessor).
    last: Mutex<HashMap<String, u64>>,
    /// The stream of kept values, made on first use.
    kept: OnceCell<stream::Stream>,
}

struct Connection {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// The client's connection events, for `listen`.
    events: Mutex<Option<mpsc::UnboundedReceiver<async_nats::Event>>>,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats").field("url", &self.inner.url).field("namespace", &self.inner.namespace).finish()
    }
}

impl Nats {
    /// A back end on the NATS server at `url` (`nats://host:port`), for the processes that
    /// share `namespace` (a token of letters, digits, `-` and `_`: the stream and subjects are
    /// named by it). Connects when the pub/sub does.
    pub fn new(url: &str, namespace: &str) -> Self {
        let namespace: String = namespace
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        Self {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                namespace,
                history: 1000,
                connection: OnceCell::new(),
                epoch: AtomicU32::new(0),
                last: Mutex::default(),
                kept: OnceCell::new(),
            }),
        }
    }

    /// Keeps at most `messages` messages of each topic (default 1,000), for processes that
    /// catch up and pages that reconnect; a topic's own [`History`](livehtml::pubsub::History)
    /// keeps fewer. Set it before connecting.
    pub fn history(mut self, messages: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.history = i64::try_from(messages.max(1)).unwrap_or(i64::MAX);
        }
        self
    }
}

impl Inner {
    fn stream_name(&self) -> String {
        format!("LH_{}", self.namespace)
    }

    fn subject(&self, topic: &str) -> String {
        format!("{}.t.{}", self.namespace, encode(topic))
    }

    fn signals(&self) -> String {
        format!("{}.s", self.namespace)
    }

    fn last(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn connection(&self) -> Result<&Connection, BackendError> {
        self.connection
            .get_or_try_init(|| async {
                let (events, receive) = mpsc::unbounded_channel();
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connection_timeout(Duration::from_secs(2))
                    .event_callback(move |event| {
                        let _ = events.send(event);
                        async {}
                    })
                    .connect(&self.url)
                    .await
                    .map_err(BackendError::new)?;
                let jetstream = jetstream::new(client.clone());
                Ok::<_, BackendError>(Connection { client, jetstream, events: Mutex::new(Some(receive)) })
            })
            .await
    }

    /// The stream, made if it is not there; its epoch noted.
    async fn stream(&self) -> Result<stream::Stream, BackendError> {
        let connection = self.connection().await?;
        let mut stream = connection
            .jetstream
            .get_or_create_stream(stream::Config {
                name: self.stream_name(),
                subjects: vec![format!("{}.t.>", self.namespace)],
                max_messages_per_subject: self.history,
                max_age: KEPT_FOR,
                storage: stream::StorageType::File,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(BackendError::new)?;
        let created = stream.info().await.map_err(BackendError::new)?.created.unix_timestamp_nanos();
        let before = self.epoch.swap(epoch_of(created), Ordering::Relaxed);
        if before != 0 && before != epoch_of(created) {
            // The stream was made anew (the server lost it): what this process knew of it is void.
            self.last().clear();
        }
        Ok(stream)
    }

    /// The stream of kept values (the last message of each key's subject), made if it is not
    /// there. A plain stream, not a key-value bucket: async-nats's buckets need a newer server
    /// than the 2.9 this is tested on, and this is all of one that a take needs.
    async fn kept(&self) -> Result<&stream::Stream, BackendError> {
        self.kept
            .get_or_try_init(|| async {
                let jetstream = &self.connection().await?.jetstream;
                jetstream
                    .get_or_create_stream(stream::Config {
                        name: format!("LH_{}_kept", self.namespace),
                        subjects: vec![format!("{}.k.>", self.namespace)],
                        max_messages_per_subject: 1,
                        max_age: KEPT_MAX,
                        storage: stream::StorageType::File,
                        allow_direct: true,
                        ..Default::default()
                    })
                    .await
                    .map_err(BackendError::new)
            })
            .await
    }

    fn kept_subject(&self, key: &str) -> String {
        format!("{}.k.{}", self.namespace, encode(key))
    }

    /// Keeps `value` under `key` until `ttl` from now (its expiry in front of it); `None`
    /// writes an empty message, which says the key holds nothing.
    async fn keep(&self, key: &str, value: Option<Bytes>, ttl: Duration) -> Result<(), BackendError> {
        self.kept().await?;
        let body = match value {
            Some(value) => {
                let until = now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
                let mut stored = Vec::with_capacity(8 + value.len());
                stored.extend_from_slice(&until.to_be_bytes());
                stored.extend_from_slice(&value);
                Bytes::from(stored)
            }
            None => Bytes::new(),
        };
        let connection = self.connection().await?;
        let ack = connection.jetstream.publish(self.kept_subject(key), body).await.map_err(BackendError::new)?;
        ack.await.map(drop).map_err(BackendError::new)
    }

    /// Takes the value under `key`: its last message read, then an empty one written after it
    /// only if no other was written meanwhile (JetStream checks the subject's last sequence),
    /// so one process gets it; returned if its time has not run out.
    async fn take(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let stream = self.kept().await?;
        let subject = self.kept_subject(key);
        let connection = self.connection().await?;
        // A write between the read and the removal: read the newer value and try again.
        for _ in 0..3 {
            let message = match stream.direct_get_last_for_subject(subject.as_str()).await {
                Ok(message) => message,
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(BackendError::new(e)),
            };
            let Some((until, _)) = message.payload.split_first_chunk::<8>() else { return Ok(None) };
            let until = u64::from_be_bytes(*until);
            let mut headers = HeaderMap::new();
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, message.sequence.to_string().as_str());
            let ack = connection
                .jetstream
                .publish_with_headers(subject.clone(), headers, Bytes::new())
                .await
                .map_err(BackendError::new)?;
            match ack.await {
                Ok(_) => return Ok((until > now_millis()).then(|| message.payload.slice(8..))),
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => continue,
                Err(e) => return Err(BackendError::new(e)),
            }
        }
        Ok(None)
    }

    async fn publish(&self, batch: Vec<Outgoing>) -> Result<(), BackendError> {
        let connection = self.connection().await?;
        for (sent, out) in batch.into_iter().enumerate() {
            let done = match out {
                Outgoing::Signal(bytes) => {
                    connection.client.publish(self.signals(), bytes).await.map_err(BackendError::new)
                }
                Outgoing::Message { topic, body, .. } => self.publish_message(connection, &topic, body).await,
                Outgoing::Keep { key, value, ttl } => self.keep(&key, value, ttl).await,
            };
            // Each message is acknowledged before the next goes: the ones before it are in.
            done.map_err(|e| BackendError::after(sent, e))?;
        }
        connection.client.flush().await.map_err(BackendError::new)
    }

    /// One topic message, after the topic's last one: if another process published in
    /// between, the real last is read and it is tried again.
    async fn publish_message(&self, connection: &Connection, topic: &str, body: Bytes) -> Result<(), BackendError> {
        let subject = self.subject(topic);
        // The server refuses it for good: sent again it would hold up everything after it.
        let limit = connection.client.server_info().max_payload;
        if limit > 0 && body.len() + subject.len() + 128 > limit {
            tracing::error!(
                topic,
                bytes = body.len(),
                limit,
                "message larger than the NATS server's max_payload: dropped (raise max_payload in its configuration)"
            );
            return Ok(());
        }
        let mut prev = self.last().get(topic).copied();
        for _ in 0..16 {
            let prev_seq = match prev {
                Some(seq) => seq,
                None => self.last_sequence(&subject).await?,
            };
            let mut headers = HeaderMap::new();
            headers.insert(PREV, prev_seq.to_string().as_str());
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, prev_seq.to_string().as_str());
            let ack = connection
                .jetstream
                .publish_with_headers(subject.clone(), headers, body.clone())
                .await
                .map_err(BackendError::new)?;
            match ack.await {
                Ok(ack) => {
                    let mut last = self.last();
                    let known = last.entry(topic.to_owned()).or_default();
                    *known = (*known).max(ack.sequence);
                    return Ok(());
                }
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => prev = None,
                Err(e) => return Err(BackendError::new(e)),
            }
        }
        Err(BackendError::new(format!("topic {topic}: too many concurrent publishes")))
    }

    /// The stream's last sequence of `subject` (0: none).
    async fn last_sequence(&self, subject: &str) -> Result<u64, BackendError> {
        let stream = self.stream().await?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok(0),
            Err(e) => Err(BackendError::new(e)),
        }
    }

    async fn read(&self, topic: &str) -> Result<Snapshot, BackendError> {
        let stream = self.stream().await?;
        let subject = self.subject(topic);
        let epoch = self.epoch.load(Ordering::Relaxed);
        let mut messages = Vec::new();
        let mut next = 1;
        loop {
            match stream.direct_get_next_for_subject(subject.as_str(), Some(next)).await {
                Ok(m) => {
                    next = m.sequence + 1;
                    let prev = prev_of(&m.headers);
                    messages.push(Delivery {
                        topic: topic.to_owned(),
                        position: Position { epoch, offset: m.sequence },
                        prev,
                        body: m.payload,
                    });
                }
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(BackendError::new(e)),
            }
        }
        let position = messages.last().map_or_else(Position::default, |m| m.position);
        if let Some(last) = messages.last() {
            let mut known = self.last();
            let entry = known.entry(topic.to_owned()).or_default();
            *entry = (*entry).max(last.position.offset);
        }
        // One unbroken run: from the first break on, what came before is dropped.
        if let Some(cut) = messages.windows(2).rposition(|w| w[1].prev != w[0].position.offset) {
            messages.drain(..=cut);
        }
        Ok(Snapshot { position, messages })
    }

    async fn topics(&self) -> Result<Vec<String>, BackendError> {
        let stream = self.stream().await?;
        let prefix = format!("{}.t.", self.namespace);
        let mut subjects = stream.info_with_subjects(format!("{prefix}>")).await.map_err(BackendError::new)?;
        let mut topics = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(BackendError::new)?;
            if let Some(topic) = subject.strip_prefix(&prefix).and_then(decode) {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

    /// Receives until the inbox closes: the stream through an ordered consumer, signals, and
    /// the client's connection events.
    async fn listen(self: Arc<Self>, inbox: Inbox) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.listen_once(&inbox).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "NATS listener lost; starting again"),
            }
            if !inbox.send(Incoming::Disconnected).await {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn listen_once(&self, inbox: &Inbox) -> Result<(), BackendError> {
        let connection = self.connection().await?;
        let mut events = connection.events.lock().unwrap_or_else(|e| e.into_inner()).take();
        let result = self.follow(connection, inbox, events.as_mut()).await;
        *connection.events.lock().unwrap_or_else(|e| e.into_inner()) = events;
        result
    }

    async fn follow(
        &self,
        connection: &Connection,
        inbox: &Inbox,
        mut events: Option<&mut mpsc::UnboundedReceiver<async_nats::Event>>,
    ) -> Result<(), BackendError> {
        let mut signals = connection.client.subscribe(self.signals()).await.map_err(BackendError::new)?;
        let stream = self.stream().await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::New,
                filter_subject: format!("{}.t.>", self.namespace),
                ..Default::default()
            })
            .await
            .map_err(BackendError::new)?;
        let mut messages = consumer.messages().await.map_err(BackendError::new)?;
        connection.client.flush().await.map_err(BackendError::new)?;
        if !inbox.send(Incoming::Connected).await {
            return Ok(());
        }
        let prefix = format!("{}.t.", self.namespace);
        loop {
            let incoming = tokio::select! {
                message = messages.next() => {
                    let message = match message {
                        Some(Ok(message)) => message,
                        Some(Err(e)) => return Err(BackendError::new(e)),
                        None => return Err(BackendError::new("the stream's consumer ended")),
                    };
                    let Some(topic) = message.subject.strip_prefix(&prefix).and_then(decode) else { continue };
                    let sequence = message.info().map_err(BackendError::new)?.stream_sequence;
                    let prev = message.headers.as_ref().map_or(0, prev_of);
                    {
                        let mut last = self.last();
                        let known = last.entry(topic.clone()).or_default();
                        *known = (*known).max(sequence);
                    }
                    Incoming::Message(Delivery {
                        topic,
                        position: Position { epoch: self.epoch.load(Ordering::Relaxed), offset: sequence },
                        prev,
                        body: message.payload.clone(),
                    })
                }
                signal = signals.next() => match signal {
                    Some(signal) => Incoming::Signal(signal.payload),
                    None => return Err(BackendError::new("the signal subscription ended")),
                },
                event = next_event(events.as_deref_mut()) => match event {
                    Some(async_nats::Event::Disconnected) => Incoming::Disconnected,
                    // Back: the ordered consumer resumes where it was; the process catches up
                    // what the broker no longer keeps, or resyncs.
                    Some(async_nats::Event::Connected) => {
                        let before = self.epoch.load(Ordering::Relaxed);
                        self.stream().await?;
                        if self.epoch.load(Ordering::Relaxed) != before {
                            // A new stream: the consumer would resume at the old one's place.
                            return Err(BackendError::new("the stream was made anew"));
                        }
                        Incoming::Connected
                    }
                    _ => continue,
                },
            };
            if !inbox.send(incoming).await {
                return Ok(());
            }
        }
    }
}

async fn next_event(events: Option<&mut mpsc::UnboundedReceiver<async_nats::Event>>) -> Option<async_nats::Event> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

impl Backend for Nats {
    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(self.inner.publish(batch))
    }

    fn listen(&self, inbox: Inbox) -> BoxFuture<'static, ()> {
        Box::pin(self.inner.clone().listen(inbox))
    }

    fn read(&self, topic: &str) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
        let topic = topic.to_owned();
        Box::pin(async move { self.inner.read(&topic).await })
    }

    fn take(&self, key: &str) -> BoxFuture<'_, Result<Option<Bytes>, BackendError>> {
        let key = key.to_owned();
        Box::pin(async move { self.inner.take(&key).await })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(self.inner.topics())
    }
}

fn prev_of(headers: &HeaderMap) -> u64 {
    headers.get(PREV).and_then(|v| v.as_str().parse().ok()).unwrap_or(0)
}

/// A stream's epoch: from its creation time, never 0.
fn epoch_of(created_nanos: i128) -> u32 {
    let folded = (created_nanos as u128 ^ (created_nanos as u128 >> 64)) as u64;
    ((folded ^ (folded >> 32)) as u32).max(1)
}

/// A topic as one subject token: what NATS reserves (`.`, `*`, `>`, whitespace), `%` itself
/// and anything not printable ASCII written `%XX` per byte; an empty topic is `%`.
fn encode(topic: &str) -> String {
    if topic.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(topic.len());
    for &b in topic.as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>' | b'%') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The topic a subject token stands for (`None`: not one [`encode`] wrote).
fn decode(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let (hex, tail) = tail.split_at_checked(2)?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = tail;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_travel_as_one_subject_token() {
        for topic in ["room", "article:7", "a.b", "x*>y", "50% off", "", "café", "tab\there"] {
            let token = encode(topic);
            assert!(!token.is_empty() && !token.contains(['.', '*', '>', ' ', '\t']), "{token}");
            assert_eq!(decode(&token).as_deref(), Some(topic));
        }
        assert_eq!(decode("%G1"), None);
        assert_eq!(decode("%4"), None);
    }
}

/// The README's example, compiled as a doc test so it builds as pasted.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
