//! The WebSocket connection loop: one task per connection that reads events, runs the session,
//! writes its queue, pings, and closes with the right code.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use super::outbox::Kill;
use super::{Frame, Inbound, Limits};
use crate::protocol::close;
use crate::session::{Context, Session};

/// Most queued frames written in one batch before the socket is flushed.
const BATCH: usize = 64;

pub(crate) struct Connection {
    pub(crate) socket: WebSocket,
    pub(crate) rx: mpsc::Receiver<Frame>,
    pub(crate) kill: Arc<Kill>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: CancellationToken,
    pub(crate) shutdown_code: u16,
}

type Sink = SplitSink<WebSocket, Message>;
type Closing = Option<(u16, Cow<'static, str>)>;

/// Why the write path stopped early.
enum Interrupted {
    Kill(u16),
    Shutdown,
    Gone,
}

impl Connection {
    pub(crate) async fn run<S: Session>(self, mut session: S, mut ctx: Context) {
        let Connection { socket, mut rx, kill, limits, shutdown, shutdown_code } = self;
        let (mut sink, mut stream) = socket.split();
        let closing =
            drive(&mut session, &mut ctx, &mut sink, &mut stream, &mut rx, &kill, &limits, &shutdown, shutdown_code)
                .await;
        session.on_leave(&mut ctx).await;
        ctx.end();
        drop(rx);
        if let Some((code, reason)) = closing {
            close_gracefully(sink, stream, code, reason, limits.close_timeout).await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive<S: Session>(
    session: &mut S,
    ctx: &mut Context,
    sink: &mut Sink,
    stream: &mut SplitStream<WebSocket>,
    rx: &mut mpsc::Receiver<Frame>,
    kill: &Kill,
    limits: &Limits,
    shutdown: &CancellationToken,
    shutdown_code: u16,
) -> Closing {
    let interrupted = |i: Interrupted| match i {
        Interrupted::Kill(code) => Some((code, Cow::Borrowed(reason_for(code)))),
        Interrupted::Shutdown => Some((shutdown_code, Cow::Borrowed("server shutting down"))),
        Interrupted::Gone => None,
    };

    if let Err(e) = session.on_join(ctx).await {
        return Some(failed(e));
    }
    if let Err(i) = send_pushed(ctx, sink, kill, shutdown).await {
        return interrupted(i);
    }

    let mut ping = interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard_since_ping = true;

    loop {
        if let Some(c) = ctx.take_close() {
            return Some(c);
        }
        tokio::select! {
            biased;
            code = kill.requested() => return interrupted(Interrupted::Kill(code)),
            () = shutdown.cancelled() => return interrupted(Interrupted::Shutdown),
            frame = rx.recv() => {
                // The context holds a sender, so the queue cannot close while we run.
                let frame = frame?;
                let write = write_batch(sink, frame, rx);
                if let Err(i) = guarded(write, kill, shutdown).await {
                    return interrupted(i);
                }
            }
            message = stream.next() => {
                heard_since_ping = true;
                let inbound = match message {
                    None => return None,
                    Some(Err(e)) if is_too_long(&e) => {
                        return Some((close::TOO_BIG, Cow::Owned(format!("message exceeds {} bytes", limits.max_message_bytes))));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket read failed");
                        return None;
                    }
                    Some(Ok(Message::Text(t))) => Inbound::Text(t.as_str().to_owned()),
                    Some(Ok(Message::Binary(b))) => Inbound::Binary(b),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite queued the close reply; flushing sends it, completing the handshake.
                        let _ = tokio::time::timeout(limits.close_timeout, sink.flush()).await;
                        return None;
                    }
                };
                if let Err(e) = session.on_message(ctx, inbound).await {
                    // What the handler pushed before failing still goes out first.
                    let _ = send_pushed(ctx, sink, kill, shutdown).await;
                    return Some(failed(e));
                }
                if let Err(i) = send_pushed(ctx, sink, kill, shutdown).await {
                    return interrupted(i);
                }
            }
            _ = ping.tick() => {
                if !heard_since_ping {
                    return Some((close::HEARTBEAT_TIMEOUT, Cow::Borrowed(reason_for(close::HEARTBEAT_TIMEOUT))));
                }
                heard_since_ping = false;
                if let Err(i) = guarded(sink.send(Message::Ping(Default::default())), kill, shutdown).await {
                    return interrupted(i);
                }
            }
        }
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
async fn guarded<F>(write: F, kill: &Kill, shutdown: &CancellationToken) -> Result<(), Interrupted>
where
    F: std::future::Future<Output = Result<(), axum::Error>>,
{
    tokio::select! {
        biased;
        code = kill.requested() => Err(Interrupted::Kill(code)),
        () = shutdown.cancelled() => Err(Interrupted::Shutdown),
        result = write => result.map_err(|_| Interrupted::Gone),
    }
}

async fn send_pushed(
    ctx: &mut Context,
    sink: &mut Sink,
    kill: &Kill,
    shutdown: &CancellationToken,
) -> Result<(), Interrupted> {
    let frames = ctx.take_frames();
    if frames.is_empty() {
        return Ok(());
    }
    let write = async {
        for frame in frames {
            sink.feed(frame.into_message()).await?;
        }
        sink.flush().await
    };
    guarded(write, kill, shutdown).await
}

/// Writes `first` and whatever else is already queued (up to [`BATCH`]) with one flush.
async fn write_batch(sink: &mut Sink, first: Frame, rx: &mut mpsc::Receiver<Frame>) -> Result<(), axum::Error> {
    sink.feed(first.into_message()).await?;
    for _ in 1..BATCH {
        match rx.try_recv() {
            Ok(frame) => sink.feed(frame.into_message()).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

fn is_too_long(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Sends the close frame and waits, within `timeout`, for the client's reply; then drops TCP.
async fn close_gracefully(
    mut sink: Sink,
    mut stream: SplitStream<WebSocket>,
    code: u16,
    reason: Cow<'static, str>,
    timeout: Duration,
) {
    let reason = truncate(&reason, 123);
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(timeout, async {
        if sink.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = stream.next().await {
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
