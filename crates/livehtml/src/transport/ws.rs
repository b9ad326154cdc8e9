//! The WebSocket connection loop: one task per connection that reads events, runs the session,
//! writes its queue, pings, and closes with the right code.
//!
//! The socket is not split: only the read branch of the loop's `select!` borrows it, and writes
//! happen in the branches' bodies, after the pending read was dropped (reads are cancel-safe).
//! That saves the lock and the allocation of a split pair per connection. Await points that are
//! rare or of unknown size (the app's handlers, the close handshake) are boxed, so the task of an
//! idle connection stays small.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

use super::outbox::{Inbox, Outbound, Ready};
use super::{Inbound, Limits};
use crate::protocol::close;
use crate::pubsub::Info;
use crate::session::{Context, Session};

/// Most queued frames written in one batch before the socket is flushed.
const BATCH: usize = 64;

type WebSocket = crate::axum::upgrade::Socket;

pub(crate) struct Connection {
    pub(crate) socket: WebSocket,
    /// Counts this connection in [`crate::Live::drain`] until it is dropped.
    pub(crate) _token: tokio_util::task::task_tracker::TaskTrackerToken,
    pub(crate) inbox: Inbox,
    pub(crate) limits: Limits,
    pub(crate) shutdown: CancellationToken,
    pub(crate) shutdown_code: u16,
}

type Closing = Option<(u16, Cow<'static, str>)>;

/// Why a write stopped early.
enum Interrupted {
    Close(u16),
    Shutdown,
    Gone,
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

    async fn close(self, closing: Closing) {
        let Connection { socket, inbox, limits, .. } = self;
        drop(inbox);
        if let Some((code, reason)) = closing {
            close_gracefully(socket, code, reason, limits.close_timeout).await;
        }
    }

    fn interrupted(&self, i: Interrupted) -> Closing {
        match i {
            Interrupted::Close(code) => Some((code, Cow::Borrowed(reason_for(code)))),
            Interrupted::Shutdown => Some((self.shutdown_code, Cow::Borrowed("server shutting down"))),
            Interrupted::Gone => None,
        }
    }

    async fn drive<S: Session>(&mut self, session: &mut S, ctx: &mut Context) -> Closing {
        if let Err(e) = Box::pin(session.on_join(ctx)).await {
            return Some(failed(e));
        }
        if let Err(i) = Box::pin(self.send_pushed(ctx)).await {
            return self.interrupted(i);
        }

        let every = self.limits.ping_interval;
        let mut ping = interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard_since_ping = true;

        loop {
            if let Some(c) = ctx.take_close() {
                return Some(c);
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return self.interrupted(Interrupted::Shutdown),
                ready = self.inbox.ready() => match ready {
                    Ready::Close(code) => return self.interrupted(Interrupted::Close(code)),
                    Ready::Frames => match Box::pin(self.write_queued()).await {
                        Err(i) => return self.interrupted(i),
                        Ok(None) => {}
                        Ok(Some(info)) => {
                            if let Err(e) = Box::pin(session.on_info(ctx, info)).await {
                                let _ = Box::pin(self.send_pushed(ctx)).await;
                                return Some(failed(e));
                            }
                            if let Err(i) = Box::pin(self.send_pushed(ctx)).await {
                                return self.interrupted(i);
                            }
                        }
                    },
                },
                message = self.socket.next() => {
                    heard_since_ping = true;
                    let inbound = match message {
                        None => return None,
                        Some(Err(tungstenite::Error::Capacity(_))) => {
                            let reason = format!("message exceeds {} bytes", self.limits.max_message_bytes);
                            return Some((close::TOO_BIG, Cow::Owned(reason)));
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "websocket read failed");
                            return None;
                        }
                        Some(Ok(Message::Text(t))) => Inbound::Text(t.as_str().to_owned()),
                        Some(Ok(Message::Binary(b))) => Inbound::Binary(b),
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Ok(Message::Close(_))) => {
                            // tungstenite queued the close reply; flushing sends it, completing the handshake.
                            let _ = Box::pin(tokio::time::timeout(self.limits.close_timeout, self.socket.flush())).await;
                            return None;
                        }
                    };
                    if let Err(e) = Box::pin(session.on_message(ctx, inbound)).await {
                        // What the handler pushed before failing still goes out first.
                        let _ = Box::pin(self.send_pushed(ctx)).await;
                        return Some(failed(e));
                    }
                    if let Err(i) = Box::pin(self.send_pushed(ctx)).await {
                        return self.interrupted(i);
                    }
                }
                _ = ping.tick() => {
                    if !heard_since_ping {
                        return Some((close::HEARTBEAT_TIMEOUT, Cow::Borrowed(reason_for(close::HEARTBEAT_TIMEOUT))));
                    }
                    heard_since_ping = false;
                    let Self { socket, inbox, shutdown, .. } = self;
                    if let Err(i) = Box::pin(guarded(socket.send(Message::Ping(bytes::Bytes::new())), inbox, shutdown)).await {
                        return self.interrupted(i);
                    }
                }
            }
        }
    }

    /// Writes what is queued, up to [`BATCH`] frames, with one flush. Stops at a queued
    /// [`Info`] and returns it, after flushing the frames before it, so order is kept.
    async fn write_queued(&mut self) -> Result<Option<Info>, Interrupted> {
        let Self { socket, inbox, shutdown, .. } = self;
        let write = async {
            let mut info = None;
            for _ in 0..BATCH {
                match inbox.pop() {
                    Some(Outbound::Frame(frame)) => socket.feed(frame.into_message()).await?,
                    Some(Outbound::Info(i)) => {
                        info = Some(i);
                        break;
                    }
                    None => break,
                }
            }
            socket.flush().await.map(|()| info)
        };
        guarded(write, inbox, shutdown).await
    }

    async fn send_pushed(&mut self, ctx: &mut Context) -> Result<(), Interrupted> {
        let frames = ctx.take_frames();
        if frames.is_empty() {
            return Ok(());
        }
        let Self { socket, inbox, shutdown, .. } = self;
        let write = async {
            for frame in frames {
                socket.feed(frame.into_message()).await?;
            }
            socket.flush().await
        };
        guarded(write, inbox, shutdown).await
    }
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

/// Runs a write, giving up as soon as the connection is told to close: a write that blocks on a
/// client that stopped reading must not keep the slow-consumer close from happening.
async fn guarded<F, T>(write: F, inbox: &Inbox, shutdown: &CancellationToken) -> Result<T, Interrupted>
where
    F: std::future::Future<Output = Result<T, tungstenite::Error>>,
{
    tokio::select! {
        biased;
        code = inbox.close_requested_wait() => Err(Interrupted::Close(code)),
        () = shutdown.cancelled() => Err(Interrupted::Shutdown),
        result = write => result.map_err(|_| Interrupted::Gone),
    }
}

/// Sends the close frame and waits, within `timeout`, for the client's reply; then drops TCP.
async fn close_gracefully(mut socket: WebSocket, code: u16, reason: Cow<'static, str>, timeout: Duration) {
    let reason = truncate(&reason, 123);
    let frame = CloseFrame { code: code.into(), reason: reason.into() };
    let _ = tokio::time::timeout(timeout, async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
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
