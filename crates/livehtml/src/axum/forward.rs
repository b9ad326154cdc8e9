//! A page's request that reached a process which does not hold its session: an SSE stream's
//! event `POST`, or a long-poll. Its signed id says which process holds the session (the id's
//! high 32 bits are that process's tag, [`crate::PubSub::node`]); the request is carried there
//! through the cluster's broker ([`crate::PubSub::request`]) and answered as if it had arrived
//! there: a `204` only once the owner's session took the event, a poll that session's batch with
//! the same numbering. So a load balancer needs no sticky sessions.
//!
//! What travels: a kind byte, the connection id, then the kind's fields; the answer is the
//! status (two bytes) and the body. Hand-written: four fixed fields, as the relay's own.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Live;
use crate::protocol::Inbound;
use crate::pubsub::RelayError;

/// How long an event's owner may take to answer (it queues the event, never waits on the page).
const POST_WAIT: Duration = Duration::from_secs(5);

/// How much longer than its hold a forwarded poll may take.
const POLL_MARGIN: Duration = Duration::from_secs(5);

const POST_TEXT: u8 = b't';
const POST_BINARY: u8 = b'b';
const POLL: u8 = b'p';

/// What a forwarded request asks of the session's process.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Forwarded {
    /// An event for the stream (or long-poll session) `id`.
    Post { id: u64, inbound: Inbound },
    /// A poll of the long-poll session `id`: its page got batch `ack`; wait at most `hold`.
    Poll { id: u64, ack: u64, hold: Duration },
}

impl Forwarded {
    fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            Self::Post { id, inbound } => {
                let (kind, body) = match inbound {
                    Inbound::Text(text) => (POST_TEXT, text.as_bytes()),
                    Inbound::Binary(bytes) => (POST_BINARY, &bytes[..]),
                };
                out.push(kind);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(body);
            }
            Self::Poll { id, ack, hold } => {
                out.push(POLL);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&ack.to_be_bytes());
                let millis = u32::try_from(hold.as_millis()).unwrap_or(u32::MAX);
                out.extend_from_slice(&millis.to_be_bytes());
            }
        }
        Bytes::from(out)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (&kind, rest) = bytes.split_first()?;
        let (id, rest) = rest.split_first_chunk::<8>()?;
        let id = u64::from_be_bytes(*id);
        match kind {
            POST_TEXT => Some(Self::Post { id, inbound: Inbound::Text(String::from_utf8(rest.to_vec()).ok()?) }),
            POST_BINARY => Some(Self::Post { id, inbound: Inbound::Binary(Bytes::copy_from_slice(rest)) }),
            POLL => {
                let (ack, rest) = rest.split_first_chunk::<8>()?;
                let (hold, _) = rest.split_first_chunk::<4>()?;
                let hold = Duration::from_millis(u64::from(u32::from_be_bytes(*hold)));
                Some(Self::Poll { id, ack: u64::from_be_bytes(*ack), hold })
            }
            _ => None,
        }
    }
}

/// An answer: the status and the body, as the owner would have answered the page.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn new(status: StatusCode, body: impl Into<String>) -> Self {
        Self { status, body: body.into() }
    }

    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(2 + self.body.len());
        out.extend_from_slice(&self.status.as_u16().to_be_bytes());
        out.extend_from_slice(self.body.as_bytes());
        Bytes::from(out)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (status, body) = bytes.split_first_chunk::<2>()?;
        let status = StatusCode::from_u16(u16::from_be_bytes(*status)).ok()?;
        Some(Self { status, body: String::from_utf8(body.to_vec()).ok()? })
    }

    /// As a response: a poll's batch is JSON, anything else plain text.
    pub(super) fn into_response(self, json: bool) -> Response {
        if self.body.is_empty() {
            return self.status.into_response();
        }
        if json && self.status == StatusCode::OK {
            let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
            return (self.status, headers, self.body).into_response();
        }
        (self.status, self.body).into_response()
    }
}

impl Live {
    /// Whether this process holds connection `id` (its tag is the id's high half).
    pub(super) fn holds(&self, id: u64) -> bool {
        (id >> 32) as u32 == self.inner.pubsub.node()
    }

    /// A connection id of this process: its tag, then its count.
    pub(super) fn next_id(&self) -> u64 {
        let count = self.inner.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & u64::from(u32::MAX);
        u64::from(self.inner.pubsub.node()) << 32 | count
    }

    /// Carries `request` to the process that holds its session and answers what it answered.
    pub(super) async fn forward(&self, request: Forwarded) -> Answer {
        let (id, wait) = match &request {
            Forwarded::Post { id, .. } => (*id, POST_WAIT),
            Forwarded::Poll { id, hold, .. } => (*id, *hold + POLL_MARGIN),
        };
        crate::observe::forwarded();
        let node = (id >> 32) as u32;
        match self.inner.pubsub.request(node, request.encode(), wait).await {
            Ok(bytes) => Answer::decode(&bytes)
                .unwrap_or_else(|| Answer::new(StatusCode::BAD_GATEWAY, "the session's process answered nonsense")),
            // Its process is gone, and the session with it: the page starts a new one.
            Err(RelayError::Unreachable) => Answer::new(StatusCode::GONE, "the session has ended: reconnect"),
            // Alive, as far as the cluster knows, but silent: the page may try again.
            Err(RelayError::Timeout) => {
                Answer::new(StatusCode::SERVICE_UNAVAILABLE, "the session's process did not answer in time")
            }
        }
    }

    /// Answers a request another process forwarded to this one.
    pub(super) async fn answer_forwarded(&self, bytes: Bytes) -> Bytes {
        let answer = match Forwarded::decode(&bytes) {
            None => Answer::new(StatusCode::BAD_REQUEST, "not a forwarded request"),
            Some(Forwarded::Post { id, inbound }) => self.deliver(id, inbound),
            Some(Forwarded::Poll { id, ack, hold }) => self.poll_here(id, ack, hold).await,
        };
        answer.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_are_read_back() {
        let requests = [
            Forwarded::Post { id: 7 << 32 | 3, inbound: Inbound::Text("{\"a\":1}".into()) },
            Forwarded::Post { id: 1, inbound: Inbound::Binary(Bytes::from_static(&[0, 1, 2])) },
            Forwarded::Poll { id: u64::MAX, ack: 12, hold: Duration::from_millis(25_000) },
        ];
        for request in requests {
            assert_eq!(Forwarded::decode(&request.encode()), Some(request));
        }
        for bad in [&b""[..], b"t123", b"p12345678", b"x12345678"] {
            assert_eq!(Forwarded::decode(bad), None, "{bad:?}");
        }
        let answer = Answer::decode(&Answer::new(StatusCode::NO_CONTENT, "").encode()).unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::NO_CONTENT, ""));
        assert!(Answer::decode(b"\x00").is_none());
    }
}
