//! Server-Sent Events: a connection whose frames go out as events of one long HTTP response,
//! and whose page's messages arrive by POST (see the axum integration for both routes).
//!
//! The stream is a reader of the connection's queue ([`super::outbox::Reader`]): what topics and
//! the session offer is queued (with the WebSocket's bound: a reader that falls behind is cut
//! off as a slow consumer), and the response body takes everything queued at each wake-up into
//! one chunk. Each message's SSE form is made once and shared by every stream
//! ([`crate::Frame`]); a stream adds only its own `id:` line.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

use tokio_util::task::task_tracker::TaskTrackerToken;

use super::Limits;
use super::deadline::Deadline;
use super::outbox::{Inbox, LAST_CHUNK, Reader, Ready, Stall, Taken, chunk};
use crate::link::{Link, Next, Rate};
use crate::observe::Transport;
use crate::protocol::{Cursors, Frame, close};

use crate::protocol::names::event::{CLOSE as CLOSE_EVENT, STREAM as STREAM_EVENT};
use crate::protocol::names::signal::STREAM as STREAM_SIGNAL;

/// The response body: events as the connection's queue fills.
pub(crate) struct EventStream {
    reader: Reader,
    /// A Datastar page's stream: messages as `datastar-patch-elements` events.
    datastar: bool,
    /// `retry:` and the stream's id, sent first.
    preamble: Option<Bytes>,
    /// The stream's `id:`.
    cursors: Cursors,
    ended: bool,
}

/// What a stream starts with: `retry:` and the stream's signed id, which the page's posts carry
/// back (for a Datastar page, as the signal `lhStream`).
pub(crate) fn preamble(stream_id: &str, retry_ms: u64, datastar: bool) -> Bytes {
    let preamble = if datastar {
        let signals = serde_json::json!({ STREAM_SIGNAL: stream_id });
        format!("retry: {retry_ms}\n{}", crate::protocol::datastar::patch_signals(&signals.to_string()))
    } else {
        format!("retry: {retry_ms}\nevent: {STREAM_EVENT}\ndata: {stream_id}\n\n")
    };
    Bytes::from(preamble)
}

impl EventStream {
    /// A stream for htmx and livehtml.js pages, or (`datastar`) for a Datastar page.
    pub(crate) fn new(reader: Reader, preamble: Bytes, datastar: bool) -> Self {
        Self { reader, datastar, preamble: Some(preamble), cursors: Cursors::default(), ended: false }
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(preamble) = self.preamble.take() {
            return Poll::Ready(Some(Ok(preamble)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let (frames, heartbeat) = match self.reader.poll_take(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Taken::End) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Taken::Frames(frames, heartbeat)) => (frames, heartbeat),
        };
        // One chunk for everything taken: a burst costs one write, not one per event.
        let size = frames.iter().map(|f| f.sse().len() + 32).sum::<usize>() + 16;
        let mut chunk = BytesMut::with_capacity(size);
        if heartbeat {
            chunk.put_slice(b": heartbeat\n\n");
        }
        for frame in &frames {
            let event = if self.datastar { frame.datastar() } else { frame.sse() };
            if event.is_empty() {
                continue;
            }
            self.cursors.advance(frame.position());
            chunk.put_slice(b"id: ");
            let _ = self.cursors.write(&mut (&mut chunk).writer());
            chunk.put_u8(b'\n');
            chunk.put_slice(event);
        }
        Poll::Ready(Some(Ok(chunk.freeze())))
    }
}

/// The session loop's side of an SSE connection.
pub(crate) struct SseLink {
    pub(crate) inbox: Inbox,
    /// Counts this connection in [`crate::Live::drain`] until it is dropped.
    pub(crate) _token: tokio_util::task::task_tracker::TaskTrackerToken,
    /// The close the server decided (a shutdown, a slow consumer), once `next` answered `None`.
    pub(crate) closing: Option<u16>,
    /// A stream on its own socket: the endpoint's limits (its write and close timeouts).
    /// `None` where hyper writes the stream.
    pub(crate) socket: Option<Arc<Limits>>,
    /// Armed only while a write is stalled, so an idle stream holds no timer.
    pub(crate) deadline: Option<Box<Deadline>>,
    /// How many messages the page may post.
    pub(crate) rate: Rate,
    /// An event stream, or a long-poll session (which reads its queue as a stream does).
    pub(crate) transport: Transport,
}

impl SseLink {
    /// A stream written by hyper, through a [`super::outbox::Reader`], or a long-poll session
    /// (`transport`).
    pub(crate) fn pulled(inbox: Inbox, token: TaskTrackerToken, limits: &Limits, transport: Transport) -> Self {
        Self { inbox, _token: token, closing: None, socket: None, deadline: None, rate: limits.rate(), transport }
    }

    /// A stream on its own socket.
    pub(crate) fn pushed(inbox: Inbox, token: TaskTrackerToken, limits: Arc<Limits>) -> Self {
        let rate = limits.rate();
        let transport = Transport::Sse;
        Self { inbox, _token: token, closing: None, socket: Some(limits), deadline: None, rate, transport }
    }
}

/// The comment that keeps a stream (and the proxies on its way) from timing out.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

impl Link for SseLink {
    fn rate(&self) -> Rate {
        self.rate
    }

    fn transport(&self) -> Transport {
        self.transport
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        loop {
            if let Poll::Ready(ready) = self.inbox.poll_ready(cx) {
                match ready {
                    Ready::Message(message) => return Poll::Ready(Some(Next::Message(message))),
                    Ready::Info(info) => return Poll::Ready(Some(Next::Info(info))),
                    Ready::Close(code) => {
                        self.closing = Some(code);
                        return Poll::Ready(None);
                    }
                    // Written by the next turn of the loop (or by the reader).
                    Ready::Ping => self.inbox.heartbeat(|| chunk(HEARTBEAT)),
                    Ready::Stalled(progress) => {
                        if let (Some(limits), None) = (&self.socket, &self.deadline) {
                            self.deadline = Some(Box::new(Deadline::new(limits.write_timeout, progress)));
                        }
                    }
                    Ready::Gone => return Poll::Ready(None),
                }
                continue;
            }
            let Some(limits) = &self.socket else { return Poll::Pending };
            if let Some(armed) = self.deadline.as_mut()
                && armed.expired(cx)
            {
                match self.inbox.stall(armed.progress()) {
                    Stall::Cleared => self.deadline = None,
                    Stall::Progressed(progress) => armed.restart(limits.write_timeout, progress),
                    Stall::Stuck => {
                        tracing::debug!("closing an event stream whose socket took no bytes for the write timeout");
                        // Nothing more will be taken: no close notice either.
                        self.inbox.hang_up();
                        return Poll::Ready(None);
                    }
                }
                continue;
            }
            return match self.inbox.poll_hangup(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }

    fn close(self, requested: Option<(u16, Cow<'static, str>)>) -> impl Future<Output = Option<u16>> + Send {
        let SseLink { inbox, closing, _token, socket, .. } = self;
        async move {
            // Nothing a topic publishes from here on may follow the last event (or the end of
            // the chunked body).
            inbox.seal();
            let notice = match (requested, closing) {
                (Some((code, reason)), _) => Some((code, reason)),
                (None, Some(code)) => {
                    // The server's own decision: what is queued is not waited for.
                    inbox.discard_unsent();
                    Some((code, Cow::Borrowed(close::reason(code))))
                }
                (None, None) => None,
            };
            let code = notice.as_ref().map(|(code, _)| *code);
            if let Some((code, reason)) = notice {
                let data = serde_json::json!({ "code": code, "reason": reason });
                inbox.push_last(Frame::event(CLOSE_EVENT, data.to_string()));
            }
            if let Some(limits) = socket {
                // The end of the body, then a FIN; within the close timeout (a client that is
                // gone or stalled ends this at once or by then).
                inbox.push_last(Frame::raw(Bytes::from_static(LAST_CHUNK)));
                let _ = tokio::time::timeout(limits.close_timeout, inbox.shutdown_write()).await;
            }
            // Dropping the inbox closes the queue: a reader sends what is left and ends.
            drop(inbox);
            drop(_token);
            code
        }
    }
}
