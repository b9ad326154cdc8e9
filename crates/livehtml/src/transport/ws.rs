//! The WebSocket connection loop: one task per connection that reads events, runs the session,
//! pings, and closes with the right code.
//!
//! Writing is not this task's job in the common case: frames go out from whoever sends them
//! (see [`super::outbox`]), and the task only finishes writes that found the socket full. It
//! never waits on a write, so a client that stops reading cannot stall its own session: its
//! queue fills and it is closed as a slow consumer. Await points that are rare or of unknown
//! size (the app's handlers, the close handshake) are boxed, so the task of an idle connection
//! stays small.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;

use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

use super::outbox::{Inbox, Io, Ready};
use super::{Frame, Inbound};
use crate::protocol::close;
use crate::session::{Context, Session};

/// tungstenite's own state machine over our [`Io`], with no async adapter between them: `Io`
/// answers `WouldBlock` and wakes the task through its inbox's waker.
pub(crate) type WebSocket = tungstenite::WebSocket<Io>;

pub(crate) struct Connection {
    pub(crate) socket: WebSocket,
    /// Counts this connection in [`crate::Live::drain`] until it is dropped.
    pub(crate) _token: tokio_util::task::task_tracker::TaskTrackerToken,
    pub(crate) inbox: Inbox,
    pub(crate) max_message_bytes: usize,
    pub(crate) close_timeout: Duration,
}

/// How a connection ends: the close frame to send, and whether what is still queued goes out
/// first (the session's own last words) or is dropped (a slow consumer, a shutdown).
struct Closing {
    code: u16,
    reason: Cow<'static, str>,
    flush: bool,
}

impl Closing {
    fn flushed((code, reason): (u16, Cow<'static, str>)) -> Option<Self> {
        Some(Self { code, reason, flush: true })
    }

    fn dropping(code: u16) -> Option<Self> {
        Some(Self { code, reason: Cow::Borrowed(reason_for(code)), flush: false })
    }
}

impl Connection {
    /// Runs the connection to its end.
    ///
    /// Not an `async fn`: those store their by-value arguments twice in their state
    /// (rust-lang/rust#62958), which costs every idle connection about 600 bytes. An
    /// `async move` block uses what it captured in place.
    #[allow(clippy::manual_async_fn)] // deliberate: see above
    pub(crate) fn run<S: Session>(mut self, mut session: S, mut ctx: Context) -> impl Future<Output = ()> + Send {
        async move {
            let closing = self.drive(&mut session, &mut ctx).await;
            Box::pin(session.on_leave(&mut ctx)).await;
            ctx.end();
            Box::pin(self.close(closing)).await;
        }
    }

    async fn close(self, closing: Option<Closing>) {
        let Connection { socket, inbox, close_timeout, .. } = self;
        if let Some(Closing { code, reason, flush }) = closing {
            if !flush {
                inbox.discard_unsent();
            }
            close_gracefully(socket, &inbox, code, reason, close_timeout).await;
        }
        drop(inbox);
    }

    async fn drive<S: Session>(&mut self, session: &mut S, ctx: &mut Context) -> Option<Closing> {
        if let Err(e) = Box::pin(session.on_join(ctx)).await {
            ctx.send_pushed();
            return Closing::flushed(failed(e));
        }
        ctx.send_pushed();

        // The heartbeat comes from the endpoint's one timer (see `Registry`), through the inbox.
        let mut heard_since_ping = true;

        loop {
            if let Some(c) = ctx.take_close() {
                return Closing::flushed(c);
            }
            tokio::select! {
                biased;
                ready = self.inbox.ready() => match ready {
                    Ready::Close(code) => return Closing::dropping(code),
                    Ready::Ping => {
                        if !heard_since_ping {
                            return Closing::dropping(close::HEARTBEAT_TIMEOUT);
                        }
                        heard_since_ping = false;
                        // Written by the next turn of the loop, behind what is queued.
                        self.inbox.push_control(Frame::ping());
                    }
                    Ready::Gone => return None,
                    Ready::Frames => {}
                    Ready::Info(info) => {
                        let result = Box::pin(session.on_info(ctx, info)).await;
                        // What the handler pushed before failing still goes out first.
                        ctx.send_pushed();
                        if let Err(e) = result {
                            return Closing::flushed(failed(e));
                        }
                    }
                },
                received = next(&mut self.socket, &self.inbox, self.max_message_bytes) => {
                    heard_since_ping = true;
                    let inbound = match received {
                        Received::Data(inbound) => inbound,
                        Received::Control => continue,
                        Received::End(closing) => return closing,
                        Received::Closed => {
                            // tungstenite queued the close reply behind the replies already due;
                            // they all go out before the socket is dropped, completing the handshake.
                            let inbox = &self.inbox;
                            let flush = flushed(&mut self.socket, inbox).then(|_| inbox.flushed());
                            let _ = Box::pin(tokio::time::timeout(self.close_timeout, flush)).await;
                            return None;
                        }
                    };
                    let result = Box::pin(session.on_message(ctx, inbound)).await;
                    ctx.send_pushed();
                    if let Err(e) = result {
                        return Closing::flushed(failed(e));
                    }
                }
            }
        }
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
    End(Option<Closing>),
}

fn received(message: Option<tungstenite::Result<Message>>, max_message_bytes: usize) -> Received {
    match message {
        None => Received::End(None),
        Some(Err(tungstenite::Error::Capacity(_))) => {
            let reason = format!("message exceeds {max_message_bytes} bytes");
            Received::End(Closing::flushed((close::TOO_BIG, Cow::Owned(reason))))
        }
        // Failing the connection (RFC 6455 section 7.1.7) with a close frame, after what was
        // already sent to the client: the replies to its earlier, valid messages.
        Some(Err(tungstenite::Error::Protocol(e))) => {
            Received::End(Closing::flushed((close::PROTOCOL_ERROR, Cow::Owned(e.to_string()))))
        }
        Some(Err(tungstenite::Error::Utf8(_))) => {
            Received::End(Closing::flushed((close::INVALID_DATA, Cow::Borrowed("text message is not UTF-8"))))
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

/// The next message, sorted for the loop. Small where tungstenite's results are large: the
/// idle task keeps this future's output slot.
fn next<'a>(
    socket: &'a mut WebSocket,
    inbox: &'a Inbox,
    max_message_bytes: usize,
) -> impl Future<Output = Received> + 'a {
    std::future::poll_fn(move |cx| poll_read(socket, inbox, cx).map(|m| received(m, max_message_bytes)))
}

/// The next message, `None` once the connection is closed.
fn read<'a>(
    socket: &'a mut WebSocket,
    inbox: &'a Inbox,
) -> impl Future<Output = Option<tungstenite::Result<Message>>> + 'a {
    std::future::poll_fn(move |cx| poll_read(socket, inbox, cx))
}

fn poll_read(
    socket: &mut WebSocket,
    inbox: &Inbox,
    cx: &mut std::task::Context<'_>,
) -> Poll<Option<tungstenite::Result<Message>>> {
    inbox.register(cx.waker());
    match socket.read() {
        Err(e) if would_block(&e) => Poll::Pending,
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => Poll::Ready(None),
        result => Poll::Ready(Some(result)),
    }
}

/// Resolves once everything tungstenite and the queue hold has been written.
fn flushed<'a>(socket: &'a mut WebSocket, inbox: &'a Inbox) -> impl Future<Output = tungstenite::Result<()>> + 'a {
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

fn failed(e: crate::SessionError) -> (u16, Cow<'static, str>) {
    if let Some(source) = e.source() {
        tracing::error!(error = %source, "live session failed");
    }
    (e.code(), Cow::Owned(e.reason().to_owned()))
}

fn reason_for(code: u16) -> &'static str {
    match code {
        close::SLOW_CONSUMER => "slow consumer: outbound queue overflowed",
        close::HEARTBEAT_TIMEOUT => "heartbeat timeout",
        close::RESTART | close::GOING_AWAY => "server shutting down",
        _ => "",
    }
}

/// Sends the close frame and waits, within `timeout`, for the client's reply; then drops TCP.
async fn close_gracefully(
    mut socket: WebSocket,
    inbox: &Inbox,
    code: u16,
    reason: Cow<'static, str>,
    timeout: Duration,
) {
    let reason = truncate(&reason, 123);
    let frame = CloseFrame { code: code.into(), reason: reason.into() };
    let _ = tokio::time::timeout(timeout, async {
        match socket.close(Some(frame)) {
            // Queued; it goes out as the client reads.
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(_) => return,
        }
        // Reading drives the queue out too (see `Io`); tungstenite ends the read with
        // `ConnectionClosed` once the client's close frame has come back.
        while let Some(Ok(message)) = read(&mut socket, inbox).await {
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
