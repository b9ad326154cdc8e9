//! A WebSocket connection as a [`Link`]: it reads messages for the session loop, pings, watches
//! its writes, and closes with the right code. The session loop itself is transport-free
//! ([`crate::session`]).
//!
//! Writing is not this task's job in the common case: frames go out from whoever sends them
//! (see [`super::outbox`]), and the task only finishes writes that found the socket full. It
//! never waits on a write, so a client that stops reading cannot stall its own session: its
//! queue fills and it is closed as a slow consumer, or, when the kernel's buffers absorb what
//! the queue would have refused, its socket takes no byte for [`crate::Limits::write_timeout`]
//! and it is closed then. Await points that are rare or of unknown size (the app's handlers, the
//! close handshake, the write deadline) are boxed, so the task of an idle connection stays small.
//!
//! Every wait on the peer is bounded: the write deadline, the heartbeat, and the close
//! handshake's timeout. Every loop iteration does work or waits for an event; and a socket that
//! is gone ends the connection, whatever is still queued for it.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;

use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

use super::Limits;
use super::deadline::Deadline;
use super::outbox::{Inbox, Ready, Stall};
use super::socket::Socket;
use crate::link::{Link, Next};
use crate::observe::Transport;
use crate::protocol::{Frame, Inbound, close};

pub(crate) struct Connection {
    pub(crate) socket: Socket,
    /// Counts this connection in [`crate::Live::drain`] until it is dropped.
    pub(crate) _token: tokio_util::task::task_tracker::TaskTrackerToken,
    pub(crate) inbox: Inbox,
    /// The endpoint's limits, shared by its connections (one pointer each, not three fields).
    pub(crate) limits: std::sync::Arc<super::Limits>,
    /// The client sent something since the last ping (the heartbeat comes from the endpoint's
    /// one timer, see `Registry`, through the inbox).
    pub(crate) heard_since_ping: bool,
    /// The socket is gone: only what was already read is still handled.
    pub(crate) draining: bool,
    /// Armed only while a write is stalled, so an idle connection holds no timer.
    pub(crate) deadline: Option<Box<Deadline>>,
    /// How the transport decided to end, once `next` answered `None`. Boxed: rarely set.
    pub(crate) closing: Option<Box<Closing>>,
}

/// How a connection ends: the close frame to send, whether what is still queued goes out
/// first (the session's own last words) or is dropped (a slow consumer, a shutdown), and what
/// the server waits for before it drops the TCP connection.
pub(crate) struct Closing {
    code: u16,
    reason: Cow<'static, str>,
    flush: bool,
    after: After,
}

/// What follows the close frame. Each is bounded by the close timeout; then TCP is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The closing handshake: wait for the client's close frame (RFC 6455 section 7.1.2).
    Handshake,
    /// Failing the connection (section 7.1.7): send the close frame, then close TCP first (a
    /// FIN) and process nothing more the client sends.
    Fail,
    /// The socket takes no bytes: offer the close frame to it once, and drop TCP.
    Abort,
    /// No close frame from us (the client ended the stream, or its close was answered by
    /// tungstenite): what is due goes out, then TCP is dropped.
    Flush,
}

impl Closing {
    fn flushed((code, reason): (u16, Cow<'static, str>)) -> Option<Box<Self>> {
        Some(Box::new(Self { code, reason, flush: true, after: After::Handshake }))
    }

    /// A protocol violation: the replies already due, the close frame, and TCP closed.
    fn failed(code: u16, reason: Cow<'static, str>) -> Option<Box<Self>> {
        Some(Box::new(Self { code, reason, flush: true, after: After::Fail }))
    }

    fn flush_only() -> Option<Box<Self>> {
        Some(Box::new(Self { code: 0, reason: Cow::Borrowed(""), flush: true, after: After::Flush }))
    }

    fn dropping(code: u16, after: After) -> Option<Box<Self>> {
        Some(Box::new(Self { code, reason: Cow::Borrowed(close::reason(code)), flush: false, after }))
    }
}

impl Link for Connection {
    fn rate(&self) -> crate::link::Rate {
        self.limits.rate()
    }

    /// Biased: the queue first (a close request wins), then the write deadline, then the socket.
    /// Every `continue` follows a change of state, so the loop never spins on the same answer.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<Next>> {
        loop {
            if self.draining {
                // What the client sent before it went is still handled; replies go nowhere.
                // Never pending: without a socket, reads end with what was buffered.
                return match poll_read(&mut self.socket, &self.inbox, &self.limits, cx)
                    .map(|m| received(m, self.limits.max_message_bytes))
                {
                    Poll::Ready(Received::Data(message)) => Poll::Ready(Some(Next::Message(message))),
                    Poll::Ready(Received::Control) => continue,
                    Poll::Ready(_) | Poll::Pending => Poll::Ready(None),
                };
            }
            if let Poll::Ready(ready) = self.inbox.poll_ready(cx) {
                match ready {
                    Ready::Info(info) => return Poll::Ready(Some(Next::Info(info))),
                    Ready::Message(message) => return Poll::Ready(Some(Next::Message(message))),
                    Ready::Close(code) => return self.end(Closing::dropping(code, After::Handshake)),
                    Ready::Ping => {
                        if !self.heard_since_ping {
                            // Not heard from in a whole period: no reply to wait for either.
                            return self.end(Closing::dropping(close::HEARTBEAT_TIMEOUT, After::Fail));
                        }
                        self.heard_since_ping = false;
                        // Written by the next turn of the loop, behind what is queued.
                        self.inbox.push_control(Frame::ping());
                    }
                    Ready::Stalled(progress) => {
                        if self.deadline.is_none() {
                            self.deadline = Some(Box::new(Deadline::new(self.limits.write_timeout, progress)));
                        }
                    }
                    // A socket that is gone ends the connection, whatever is queued for it.
                    Ready::Gone => self.draining = true,
                }
                continue;
            }
            if let Some(armed) = self.deadline.as_mut()
                && armed.expired(cx)
            {
                match self.inbox.stall(armed.progress()) {
                    Stall::Cleared => self.deadline = None,
                    Stall::Progressed(progress) => armed.restart(self.limits.write_timeout, progress),
                    Stall::Stuck => {
                        tracing::debug!("closing a connection whose socket took no bytes for the write timeout");
                        return self.end(Closing::dropping(close::SLOW_CONSUMER, After::Abort));
                    }
                }
                continue;
            }
            let Poll::Ready(message) = poll_read(&mut self.socket, &self.inbox, &self.limits, cx) else {
                return Poll::Pending;
            };
            self.heard_since_ping = true;
            match received(message, self.limits.max_message_bytes) {
                Received::Data(message) => return Poll::Ready(Some(Next::Message(message))),
                Received::Control => {}
                // The client's end of the stream (a half-closed client still gets the replies
                // already due), or its close frame (tungstenite queued the reply behind them):
                // what is due goes out before the socket is dropped.
                Received::End(None) | Received::Closed => return self.end(Closing::flush_only()),
                Received::End(closing) => return self.end(closing),
            }
        }
    }

    fn transport(&self) -> Transport {
        Transport::WebSocket
    }

    fn close(self, requested: Option<(u16, Cow<'static, str>)>) -> impl Future<Output = Option<u16>> + Send {
        // The token moves into the future: the drain waits for the close frame to go out, not
        // just for the close to start.
        let Connection { socket, inbox, limits, closing, _token, .. } = self;
        let close_timeout = limits.close_timeout;
        async move {
            let _token = _token;
            // Nothing a topic publishes from here on may follow the close frame on the wire.
            inbox.seal();
            if let Some(closing) = requested.map_or(closing, Closing::flushed) {
                let Closing { code, reason, flush, after } = *closing;
                if after == After::Flush {
                    // No close frame of ours: flush what is due (a close reply included), within
                    // the close timeout (a client that is gone ends this at once).
                    let mut socket = socket;
                    let flush = flushed(&mut socket, &inbox).then(|_| inbox.flushed());
                    let _ = tokio::time::timeout(close_timeout, flush).await;
                    return None;
                }
                if !flush {
                    inbox.discard_unsent();
                }
                let timeout = if after == After::Abort { Duration::ZERO } else { close_timeout };
                close_gracefully(socket, &inbox, &limits, code, reason, after, timeout).await;
                return Some(code);
            }
            drop(inbox);
            None
        }
    }
}

impl Connection {
    /// Ends the loop, remembering how to close.
    fn end(&mut self, closing: Option<Box<Closing>>) -> Poll<Option<Next>> {
        self.closing = closing;
        Poll::Ready(None)
    }
}

/// What a read brought.
enum Received {
    Data(Inbound),
    /// A ping or pong: nothing for the session.
    Control,
    /// The client sent its close frame.
    Closed,
    /// The connection ends: with this close frame, or without one.
    End(Option<Box<Closing>>),
}

fn received(message: Option<tungstenite::Result<Message>>, max_message_bytes: usize) -> Received {
    match message {
        None => Received::End(None),
        Some(Err(tungstenite::Error::Capacity(_))) => {
            let reason = format!("message exceeds {max_message_bytes} bytes");
            Received::End(Closing::failed(close::TOO_BIG, Cow::Owned(reason)))
        }
        // The client's end of the stream without a close frame: a killed tab, a dropped network,
        // or a half-closed client that still reads; not a violation to answer with 1002.
        Some(Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake))) => {
            Received::End(None)
        }
        // Failing the connection (RFC 6455 section 7.1.7) with a close frame, after what was
        // already sent to the client: the replies to its earlier, valid messages.
        Some(Err(tungstenite::Error::Protocol(e))) => {
            Received::End(Closing::failed(close::PROTOCOL_ERROR, Cow::Owned(e.to_string())))
        }
        Some(Err(tungstenite::Error::Utf8(_))) => {
            Received::End(Closing::failed(close::INVALID_DATA, Cow::Borrowed("text message is not UTF-8")))
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "websocket read failed");
            Received::End(None)
        }
        Some(Ok(Message::Text(t))) => Received::Data(Inbound::Text(t.as_str().to_owned())),
        Some(Ok(Message::Binary(b))) => Received::Data(Inbound::Binary(b)),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Received::Control,
        Some(Ok(Message::Close(_))) => Received::Closed,
    }
}

/// The next message, `None` once the connection is closed.
fn read<'a>(
    socket: &'a mut Socket,
    inbox: &'a Inbox,
    limits: &'a Limits,
) -> impl Future<Output = Option<tungstenite::Result<Message>>> + 'a {
    std::future::poll_fn(move |cx| poll_read(socket, inbox, limits, cx))
}

fn poll_read(
    socket: &mut Socket,
    inbox: &Inbox,
    limits: &Limits,
    cx: &mut std::task::Context<'_>,
) -> Poll<Option<tungstenite::Result<Message>>> {
    inbox.register(cx.waker());
    match socket.read(limits) {
        Err(e) if would_block(&e) => Poll::Pending,
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => Poll::Ready(None),
        result => Poll::Ready(Some(result)),
    }
}

/// Resolves once everything tungstenite and the queue hold has been written.
fn flushed<'a>(socket: &'a mut Socket, inbox: &'a Inbox) -> impl Future<Output = tungstenite::Result<()>> + 'a {
    std::future::poll_fn(move |cx| {
        inbox.register(cx.waker());
        match socket.flush() {
            Err(e) if would_block(&e) => Poll::Pending,
            result => Poll::Ready(result),
        }
    })
}

/// `Io` answers `WouldBlock` where an async stream would be pending.
fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Sends the close frame and, within `timeout`, does what `after` says; then drops TCP.
async fn close_gracefully(
    mut socket: Socket,
    inbox: &Inbox,
    limits: &Limits,
    code: u16,
    reason: Cow<'static, str>,
    after: After,
    timeout: Duration,
) {
    let reason = truncate(&reason, 123);
    let frame = CloseFrame { code: code.into(), reason: reason.into() };
    // A zero timeout still polls once: the close frame is offered to the socket.
    let _ = tokio::time::timeout(timeout, async {
        match socket.close(limits, frame) {
            // Queued; it goes out as the client reads.
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            // tungstenite has ended the connection on its side; what is queued still goes out.
            Err(_) => return inbox.flushed().await,
        }
        if after != After::Handshake {
            // The server closes TCP first: a FIN after the close frame, then what the client
            // still sends is read and dropped until it closes too.
            inbox.shutdown_write().await;
            inbox.discard_input().await;
            return;
        }
        // Reading drives the queue out too (see `Io`); tungstenite ends the read with
        // `ConnectionClosed` once the client's close frame has come back.
        while let Some(Ok(message)) = read(&mut socket, inbox, limits).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        // A read that failed (a protocol error repeats itself) must not cut off what is still
        // queued: the replies to the client's earlier messages, then the close frame.
        inbox.flushed().await;
    })
    .await;
}

/// A close frame's reason is at most 123 bytes; cut on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn close_reasons_fit_the_frame() {
        assert_eq!(truncate("short", 123), "short");
        let long = "é".repeat(100);
        let cut = truncate(&long, 123);
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
    }
}
