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
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

use super::outbox::{Inbox, Reader, Ready, Taken};
use crate::link::{Link, Next};
use crate::protocol::{Frame, close};

use crate::protocol::names::event::{CLOSE as CLOSE_EVENT, STREAM as STREAM_EVENT};
use crate::protocol::names::signal::STREAM as STREAM_SIGNAL;

/// The response body: events as the connection's queue fills.
pub(crate) struct EventStream {
    reader: Reader,
    /// A Datastar page's stream: messages as `datastar-patch-elements` events.
    datastar: bool,
    /// `retry:` and the stream's id, sent first.
    preamble: Option<Bytes>,
    next_id: u64,
    ended: bool,
}

impl EventStream {
    /// A stream for htmx and livehtml.js pages, or (`datastar`) for a Datastar page, whose
    /// stream id arrives as the signal `lhStream` so that its posts carry it back.
    pub(crate) fn new(reader: Reader, stream_id: &str, retry_ms: u64, datastar: bool) -> Self {
        let preamble = if datastar {
            let signals = serde_json::json!({ STREAM_SIGNAL: stream_id });
            format!("retry: {retry_ms}\n{}", crate::protocol::datastar::patch_signals(&signals.to_string()))
        } else {
            format!("retry: {retry_ms}\nevent: {STREAM_EVENT}\ndata: {stream_id}\n\n")
        };
        Self { reader, datastar, preamble: Some(Bytes::from(preamble)), next_id: 1, ended: false }
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
        let size = frames.iter().map(|f| f.sse().len() + 24).sum::<usize>() + 16;
        let mut chunk = BytesMut::with_capacity(size);
        if heartbeat {
            chunk.put_slice(b": heartbeat\n\n");
        }
        for frame in &frames {
            let event = if self.datastar { frame.datastar() } else { frame.sse() };
            if event.is_empty() {
                continue;
            }
            let mut id = itoa::Buffer::new();
            chunk.put_slice(b"id: ");
            chunk.put_slice(id.format(self.next_id).as_bytes());
            chunk.put_u8(b'\n');
            chunk.put_slice(event);
            self.next_id += 1;
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
}

impl Link for SseLink {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        loop {
            let Poll::Ready(ready) = self.inbox.poll_ready(cx) else { return Poll::Pending };
            match ready {
                Ready::Message(message) => return Poll::Ready(Some(Next::Message(message))),
                Ready::Info(info) => return Poll::Ready(Some(Next::Info(info))),
                Ready::Close(code) => {
                    self.closing = Some(code);
                    return Poll::Ready(None);
                }
                // The heartbeat is a comment on the stream, written by its reader.
                Ready::Ping => self.inbox.heartbeat_to_reader(),
                // No socket of its own to stall.
                Ready::Stalled(_) => {}
                Ready::Gone => return Poll::Ready(None),
            }
        }
    }

    fn close(self, requested: Option<(u16, Cow<'static, str>)>) -> impl Future<Output = ()> + Send {
        let SseLink { inbox, closing, _token } = self;
        async move {
            let notice = match (requested, closing) {
                (Some((code, reason)), _) => Some((code, reason)),
                (None, Some(code)) => {
                    // The server's own decision: what is queued is not waited for.
                    inbox.discard_unsent();
                    Some((code, Cow::Borrowed(close::reason(code))))
                }
                (None, None) => None,
            };
            if let Some((code, reason)) = notice {
                let data = serde_json::json!({ "code": code, "reason": reason });
                inbox.push_last(Frame::event(CLOSE_EVENT, data.to_string()));
            }
            // Dropping the inbox closes the queue: the reader sends what is left and ends.
            drop(inbox);
            drop(_token);
        }
    }
}
