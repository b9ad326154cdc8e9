//! A Redis back end for livehtml: several processes on one Redis behave as one server.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pubsub = livehtml::PubSub::default();
//! pubsub.connect(livehtml_redis::Redis::new("redis://127.0.0.1:6379", "myapp")?).await?;
//! # Ok(()) }
//! ```
//!
//! # How it uses Redis
//!
//! Pub/sub for delivery and a stream for history. Every process subscribes to one channel,
//! `{namespace}:bus`: a publish reaches every process with no per-process state in Redis (a
//! process that joins needs nothing set up, one that dies leaves nothing behind). A topic's
//! history is a stream (`{namespace}:hist:{topic}`, entry ids `{offset}-1`, trimmed to the
//! topic's length, expiring after its age), read with one `XRANGE` by a process that catches
//! up. One Lua script numbers, keeps and publishes each message, so Redis runs the three as
//! one step: the offsets of a topic are gapless and its messages reach every subscriber in
//! their order. A topic's epoch and last offset live in `{namespace}:meta:{topic}` (for a day
//! after its last message); a Redis that lost it (restarted without persistence, evicted)
//! starts the topic over with a new epoch, which pages see as a resync, never a silent gap.
//!
//! Values kept for any process to take (a live view's state while its page is away) are plain
//! keys, `{namespace}:kept:{key}`, set with their time to live and taken with `GETDEL`
//! (Redis 6.2 or later).
//!
//! A publish that fails (Redis unreachable) is sent again by livehtml when Redis is back; one
//! that reached Redis just before the connection broke may then be delivered twice.
//!
//! Redis Cluster is not supported (a topic's keys are not in one hash slot): one Redis, or a
//! replicated one behind Sentinel's address.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use livehtml::protocol::Position;
use livehtml::pubsub::{Backend, BackendError, Delivery, Inbox, Incoming, Outgoing, Snapshot};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a topic's position is kept after its last message.
const TOPIC_TTL: Duration = Duration::from_secs(24 * 3600);

/// A silent bus for this long means a dead connection (every process's heartbeat crosses it
/// every two seconds).
const SILENCE: Duration = Duration::from_secs(10);

/// The longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Numbers a message, keeps it and publishes it, as one step.
///
/// KEYS: meta, history stream, topic index. ARGV: topic, body, a new epoch (used if the topic
/// has none), history length (0: none), history age in ms, channel, now in ms, meta TTL in ms.
const PUBLISH: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('HSET', KEYS[1], 'a', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, offset .. '-1', 'b', ARGV[2], 't', ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
else
  redis.call('DEL', KEYS[2])
end
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
redis.call('PUBLISH', ARGV[6], 'm' .. epoch .. ' ' .. offset .. ' ' .. #ARGV[1] .. '\n' .. ARGV[1] .. ARGV[2])
return offset
";

/// A topic's position and history, read as one step. KEYS: meta, history stream.
const READ: &str = r"
local meta = redis.call('HMGET', KEYS[1], 'e', 'o', 'a')
local entries = {}
if meta[1] then
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
end
return {meta[1] or '0', meta[2] or '0', meta[3] or '0', entries}
";

/// A history stream's entry: its id and its fields.
type Entry = (String, Vec<(String, Vec<u8>)>);

/// A Redis back end ([`Backend`]) for livehtml's [`PubSub::connect`](livehtml::PubSub::connect).
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManager,
    namespace: String,
    channel: String,
    publish: redis::Script,
    read: redis::Script,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("namespace", &self.inner.namespace).finish_non_exhaustive()
    }
}

impl Redis {
    /// A back end on the Redis at `url` (`redis://host:port/db`), for the processes that share
    /// `namespace` (every key and the channel start with it: several apps, or test runs, can
    /// share one Redis). Connects when the pub/sub does.
    pub fn new(url: &str, namespace: &str) -> Result<Self, BackendError> {
        let client = redis::Client::open(url).map_err(BackendError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(MAX_BACKOFF);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(BackendError::new)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                manager,
                namespace: namespace.to_owned(),
                channel: format!("{namespace}:bus"),
                publish: redis::Script::new(PUBLISH),
                read: redis::Script::new(READ),
            }),
        })
    }
}

impl Inner {
    fn meta(&self, topic: &str) -> String {
        format!("{}:meta:{topic}", self.namespace)
    }

    fn history(&self, topic: &str) -> String {
        format!("{}:hist:{topic}", self.namespace)
    }

    fn kept(&self, key: &str) -> String {
        format!("{}:kept:{key}", self.namespace)
    }

    async fn take(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let mut con = self.manager.clone();
        let value: Option<Vec<u8>> =
            redis::cmd("GETDEL").arg(self.kept(key)).query_async(&mut con).await.map_err(BackendError::new)?;
        Ok(value.map(Bytes::from))
    }

    fn index(&self) -> String {
        format!("{}:topics", self.namespace)
    }

    async fn publish(&self, batch: Vec<Outgoing>) -> Result<(), BackendError> {
        let now = now_millis();
        let mut pipe = redis::pipe();
        // Loaded first, in the same pipeline: a Redis that restarted has no scripts.
        pipe.cmd("SCRIPT").arg("LOAD").arg(PUBLISH).ignore();
        for out in &batch {
            match out {
                Outgoing::Message { topic, body, history } => {
                    let (keep, age) = history.map_or((0, 0), |h| (h.messages(), h.age().as_millis() as u64));
                    pipe.invoke_script(
                        self.publish
                            .key(self.meta(topic))
                            .key(self.history(topic))
                            .key(self.index())
                            .arg(topic.as_str())
                            .arg(body.as_ref())
                            .arg(new_epoch())
                            .arg(keep)
                            .arg(age.max(1))
                            .arg(&self.channel)
                            .arg(now)
                            .arg(TOPIC_TTL.as_millis() as u64),
                    )
                    .ignore();
                }
                Outgoing::Signal(bytes) => {
                    let mut message = Vec::with_capacity(bytes.len() + 1);
                    message.push(b's');
                    message.extend_from_slice(bytes);
                    pipe.cmd("PUBLISH").arg(&self.channel).arg(message).ignore();
                }
                Outgoing::Keep { key, value: Some(value), ttl } => {
                    let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                    pipe.cmd("SET").arg(self.kept(key)).arg(value.as_ref()).arg("PX").arg(millis).ignore();
                }
                Outgoing::Keep { key, value: None, .. } => {
                    pipe.cmd("DEL").arg(self.kept(key)).ignore();
                }
            }
        }
        let mut con = self.manager.clone();
        pipe.query_async::<()>(&mut con).await.map_err(BackendError::new)
    }

    async fn read(&self, topic: &str) -> Result<Snapshot, BackendError> {
        let mut con = self.manager.clone();
        let (epoch, offset, age, entries): (u32, u64, u64, Vec<Entry>) = self
            .read
            .key(self.meta(topic))
            .key(self.history(topic))
            .invoke_async(&mut con)
            .await
            .map_err(BackendError::new)?;
        let position = Position { epoch, offset };
        let oldest = now_millis().saturating_sub(age);
        let mut messages = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let Some(offset) = id.strip_suffix("-1").and_then(|o| o.parse::<u64>().ok()) else { continue };
            let (mut body, mut at) = (None, 0u64);
            for (name, value) in fields {
                match name.as_str() {
                    "b" => body = Some(Bytes::from(value)),
                    "t" => at = std::str::from_utf8(&value).ok().and_then(|t| t.parse().ok()).unwrap_or(0),
                    _ => {}
                }
            }
            let Some(body) = body else { continue };
            if at < oldest {
                continue;
            }
            messages.push(Delivery {
                topic: topic.to_owned(),
                position: Position { epoch, offset },
                prev: offset - 1,
                body,
            });
        }
        // Kept messages are one unbroken run ending at the topic's position, or none.
        if messages.last().is_some_and(|m| m.position != position)
            || messages.windows(2).any(|w| w[1].prev != w[0].position.offset)
        {
            messages.clear();
        }
        Ok(Snapshot { position, messages })
    }

    async fn topics(&self) -> Result<Vec<String>, BackendError> {
        let mut con = self.manager.clone();
        let since = now_millis().saturating_sub(TOPIC_TTL.as_millis() as u64);
        let (_, names): ((), Vec<String>) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.index())
            .arg("-inf")
            .arg(since)
            .cmd("ZRANGE")
            .arg(self.index())
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .map_err(BackendError::new)?;
        Ok(names)
    }

    /// One connection's life: subscribe, say so, hand over what arrives until it breaks.
    async fn listen_once(&self, inbox: &Inbox) -> Result<(), BackendError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(BackendError::new)?;
        pubsub.subscribe(&self.channel).await.map_err(BackendError::new)?;
        if !inbox.send(Incoming::Connected).await {
            return Ok(());
        }
        let mut messages = pubsub.on_message();
        loop {
            let message = match tokio::time::timeout(SILENCE, messages.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => return Err(BackendError::new("the Redis connection closed")),
                Err(_) => return Err(BackendError::new("the Redis bus fell silent")),
            };
            let Some(incoming) = parse(message.get_payload_bytes()) else {
                tracing::debug!("a message on the bus is not livehtml's: skipped");
                continue;
            };
            if !inbox.send(incoming).await {
                return Ok(());
            }
        }
    }
}

impl Backend for Redis {
    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(self.inner.publish(batch))
    }

    fn listen(&self, inbox: Inbox) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut backoff = Duration::from_millis(100);
            while !inbox.is_closed() {
                let started = std::time::Instant::now();
                match inner.listen_once(&inbox).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "Redis bus lost; reconnecting"),
                }
                if !inbox.send(Incoming::Disconnected).await {
                    return;
                }
                if started.elapsed() > SILENCE {
                    backoff = Duration::from_millis(100);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
    }

    fn read(&self, topic: &str) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
        let topic = topic.to_owned();
        Box::pin(async move { self.inner.read(&topic).await })
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        Box::pin(self.inner.topics())
    }

    fn take(&self, key: &str) -> BoxFuture<'_, Result<Option<Bytes>, BackendError>> {
        let key = key.to_owned();
        Box::pin(async move { self.inner.take(&key).await })
    }
}

/// A message on the bus: `s` and a signal, or `m`, the epoch, offset and topic length (in
/// decimal, space-separated, ended by a newline), the topic, then the body.
fn parse(payload: &[u8]) -> Option<Incoming> {
    let (&kind, rest) = payload.split_first()?;
    match kind {
        b's' => Some(Incoming::Signal(Bytes::copy_from_slice(rest))),
        b'm' => {
            let newline = rest.iter().position(|&b| b == b'\n')?;
            let mut head = std::str::from_utf8(&rest[..newline]).ok()?.split(' ');
            let epoch: u32 = head.next()?.parse().ok()?;
            let offset: u64 = head.next()?.parse().ok()?;
            let len: usize = head.next()?.parse().ok()?;
            let (topic, body) = rest[newline + 1..].split_at_checked(len)?;
            Some(Incoming::Message(Delivery {
                topic: std::str::from_utf8(topic).ok()?.to_owned(),
                position: Position { epoch, offset },
                prev: offset.checked_sub(1)?,
                body: Bytes::copy_from_slice(body),
            }))
        }
        _ => None,
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A topic's epoch, should this publish be its first: random, never 0.
fn new_epoch() -> u32 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Not secret, only distinct: the clock's nanoseconds mixed with a counter.
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (nanos.subsec_nanos() ^ (nanos.as_secs() as u32).rotate_left(16) ^ n.wrapping_mul(0x9e37_79b9)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_are_read_back() {
        let Some(Incoming::Message(d)) = parse(b"m305419896 17 4\nroomTbody") else { panic!() };
        assert_eq!((d.topic.as_str(), d.position, d.prev), ("room", Position { epoch: 305_419_896, offset: 17 }, 16));
        assert_eq!(&d.body[..], b"Tbody");
        assert_eq!(parse(b"sxyz"), Some(Incoming::Signal(Bytes::from_static(b"xyz"))));
        for bad in [&b""[..], b"m1 2\nx", b"m1 0 1\nab", b"mx 1 1\na", b"m1 1 9\nab", b"q"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}

/// The README's example, compiled as a doc test so it builds as pasted.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's page on clusters (the repository's `docs/clusters.md`), compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/clusters.md")]
pub struct GuideClusters;
