//! Requests between the processes of a cluster: a page's request that reached a process which
//! does not hold its session (an SSE stream's event `POST`, a long-poll) is carried through the
//! broker to the process that does, and answered from there, so a load balancer may send any
//! request to any process (no sticky sessions). Centrifugo's bidirectional emulation routes a
//! page's commands the same way.
//!
//! Every process has a tag ([`PubSub::node`]), random, that the ids it hands out start with
//! (a connection's id is the tag in its high 32 bits): a signed id says which process holds its
//! session. A request is a signal addressed to that tag, and its answer a signal addressed
//! back; both travel as the back end's [`Outgoing::Signal`]s, so every back end that passes the
//! conformance suite carries them, with nothing of its own to implement. Signals reach every
//! process and the others drop what is not theirs: a forwarded request costs each process a
//! few bytes read, as a presence signal does.
//!
//! Hand-written framing, as the roster's: a kind, two tags, a number and the body.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::PubSub;
use super::backend::Outgoing;

/// What answers the requests addressed to this process: a body in, a body out.
pub type Handler = Arc<dyn Fn(Bytes) -> BoxFuture<'static, Bytes> + Send + Sync>;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// No process with that tag is in the cluster (it died, or never was), or this process is
    /// alone and the tag is not its own.
    Unreachable,
    /// The process did not answer in time (it may have died meanwhile).
    Timeout,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "no such process in the cluster",
            Self::Timeout => "the process did not answer in time",
        })
    }
}

impl std::error::Error for RelayError {}

/// A process's side of the requests: its tag, what answers, and the requests it waits on.
#[derive(Debug)]
pub(super) struct Relay {
    node: u32,
    handler: OnceLock<HandlerCell>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Bytes>>>,
    next: AtomicU64,
}

struct HandlerCell(Handler);

impl std::fmt::Debug for HandlerCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

impl Default for Relay {
    fn default() -> Self {
        Self {
            node: super::history::new_epoch(),
            handler: OnceLock::new(),
            pending: Mutex::default(),
            next: AtomicU64::new(0),
        }
    }
}

/// How long a request to a process the roster does not know waits for an answer.
const UNKNOWN_WAIT: Duration = Duration::from_secs(1);

/// How often a waiting request looks whether its process is still in the cluster.
const ROSTER_CHECK: Duration = Duration::from_millis(250);

/// A signal's first byte: a request, or an answer.
pub(super) const REQUEST: u8 = b'q';
pub(super) const ANSWER: u8 = b'a';

/// Takes a request's or an answer's header: the addressee, then (a request) the sender, and
/// the number; the rest is the body.
fn header(bytes: &[u8], with_sender: bool) -> Option<(u32, u32, u64, &[u8])> {
    let (to, rest) = bytes.split_first_chunk::<4>()?;
    let (from, rest) = if with_sender { rest.split_first_chunk::<4>()? } else { (&[0; 4], rest) };
    let (number, body) = rest.split_first_chunk::<8>()?;
    Some((u32::from_be_bytes(*to), u32::from_be_bytes(*from), u64::from_be_bytes(*number), body))
}

impl PubSub {
    /// This process's tag: random, the high 32 bits of every connection id it hands out
    /// ([`crate::Connect::id`]), so an id is unique across a cluster and says which process holds
    /// its connection.
    pub fn node(&self) -> u32 {
        self.inner.relay.node
    }

    /// Sets what answers the requests other processes address to this one
    /// ([`PubSub::request`]); once: `false` if one was set already. [`crate::Live`] sets it for
    /// its SSE posts and long-polls.
    pub fn serve_requests(&self, handler: Handler) -> bool {
        self.inner.relay.handler.set(HandlerCell(handler)).is_ok()
    }

    /// Sends `body` to the process tagged `node` ([`PubSub::node`]) and waits, at most
    /// `timeout`, for its handler's answer. This process's own tag is answered here, without the
    /// broker. A process the cluster does not count (it left: silent for the node timeout) is
    /// [`RelayError::Unreachable`] within a second, and a wait ends as soon as its process leaves.
    pub async fn request(&self, node: u32, body: Bytes, timeout: Duration) -> Result<Bytes, RelayError> {
        if node == self.node() {
            let handler = self.inner.relay.handler.get().ok_or(RelayError::Unreachable)?.0.clone();
            return tokio::time::timeout(timeout, handler(body)).await.map_err(|_| RelayError::Timeout);
        }
        let Some(cluster) = self.inner.cluster.get() else { return Err(RelayError::Unreachable) };
        // A process not (or no longer) in the roster: one that died, or one that started a
        // moment ago whose announcement this process has not read yet. The second answers
        // at once, so the first is not waited for long.
        let known = cluster.roster.knows(node);
        let timeout = if known { timeout } else { timeout.min(UNKNOWN_WAIT) };
        let relay = &self.inner.relay;
        let number = relay.next.fetch_add(1, Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        relay.pending().insert(number, answered);
        // Removed however the wait ends (answered, timed out, or the caller gave up).
        let _forget = Forget(relay, number);
        let mut out = Vec::with_capacity(17 + body.len());
        out.push(REQUEST);
        out.extend_from_slice(&node.to_be_bytes());
        out.extend_from_slice(&self.node().to_be_bytes());
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(&body);
        if !cluster.send(Outgoing::Signal(Bytes::from(out))) {
            return Err(RelayError::Unreachable);
        }
        // A long wait (a forwarded long-poll) ends as soon as the process leaves the cluster.
        let left = async {
            loop {
                tokio::time::sleep(ROSTER_CHECK).await;
                if known && !cluster.roster.knows(node) {
                    return;
                }
            }
        };
        tokio::select! {
            answered = answer => answered.map_err(|_| RelayError::Unreachable),
            () = left => Err(RelayError::Unreachable),
            () = tokio::time::sleep(timeout) => {
                Err(if known && cluster.roster.knows(node) { RelayError::Timeout } else { RelayError::Unreachable })
            }
        }
    }

    /// A request signal: answered in a task of its own (a long-poll waits), if it is for this
    /// process.
    pub(super) fn relay_request(&self, bytes: &[u8]) {
        let Some((to, from, number, body)) = header(bytes, true) else { return };
        if to != self.node() {
            return;
        }
        let Some(HandlerCell(handler)) = self.inner.relay.handler.get() else { return };
        let answer = handler(Bytes::copy_from_slice(body));
        let pubsub = self.clone();
        tokio::spawn(async move {
            let body = answer.await;
            let Some(cluster) = pubsub.inner.cluster.get() else { return };
            let mut out = Vec::with_capacity(13 + body.len());
            out.push(ANSWER);
            out.extend_from_slice(&from.to_be_bytes());
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&body);
            cluster.send(Outgoing::Signal(Bytes::from(out)));
        });
    }

    /// An answer signal: handed to the request waiting for it, if it is this process's.
    pub(super) fn relay_answer(&self, bytes: &[u8]) {
        let Some((to, _, number, body)) = header(bytes, false) else { return };
        if to != self.node() {
            return;
        }
        if let Some(waiting) = self.inner.relay.pending().remove(&number) {
            let _ = waiting.send(Bytes::copy_from_slice(body));
        }
    }
}

impl Relay {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Bytes>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets a request when its wait ends.
struct Forget<'a>(&'a Relay, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.pending().remove(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_back() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u32.to_be_bytes());
        bytes.extend_from_slice(&9u32.to_be_bytes());
        bytes.extend_from_slice(&42u64.to_be_bytes());
        bytes.extend_from_slice(b"body");
        assert_eq!(header(&bytes, true), Some((7, 9, 42, &b"body"[..])));
        assert_eq!(header(&bytes[..10], true), None);
        let mut answer = Vec::new();
        answer.extend_from_slice(&9u32.to_be_bytes());
        answer.extend_from_slice(&42u64.to_be_bytes());
        answer.extend_from_slice(b"ok");
        assert_eq!(header(&answer, false), Some((9, 0, 42, &b"ok"[..])));
    }

    #[tokio::test]
    async fn a_process_answers_its_own_requests_and_refuses_unknown_ones() {
        let pubsub = PubSub::default();
        let node = pubsub.node();
        assert_eq!(
            pubsub.request(node, Bytes::from_static(b"x"), Duration::from_secs(1)).await,
            Err(RelayError::Unreachable)
        );
        assert!(pubsub.serve_requests(Arc::new(|body: Bytes| Box::pin(async move {
            Bytes::from([&b"re:"[..], &body].concat())
        }))));
        assert!(!pubsub.serve_requests(Arc::new(|body| Box::pin(async move { body }))));
        assert_eq!(pubsub.request(node, Bytes::from_static(b"x"), Duration::from_secs(1)).await.unwrap(), &b"re:x"[..]);
        assert_eq!(
            pubsub.request(node.wrapping_add(1), Bytes::new(), Duration::from_secs(1)).await,
            Err(RelayError::Unreachable)
        );
    }
}
