//! What the integration tests share (each test binary uses some of it).
#![allow(dead_code)]

use std::time::Duration;

use livehtml::{Context, Event, Fragment, Html, Live, Session, SessionError};

/// How long a test waits for anything.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A test's WebSocket client.
pub(crate) type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message (pings and pongs skipped); panics on anything else or after [`WAIT`].
pub(crate) async fn next_text(ws: &mut Client) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Waits until `room` has `n` subscribers (nothing else tells a test when a connection's
/// session has joined its topic or left it).
pub(crate) async fn until_subscribed(live: &Live, n: usize) {
    tokio::time::timeout(WAIT, async {
        while live.pubsub().subscriber_count("room") != n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("subscribers as expected");
}

/// A client's frame, masked as RFC 6455 requires: `first` (FIN, RSV, opcode), the payload's
/// length, a mask key and the masked payload.
pub(crate) fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [7, 8, 9, 10];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// The first whole server frame in `buf`: its first byte, its payload, and the bytes it took.
pub(crate) fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (first, second) = (*buf.first()?, *buf.get(1)?);
    let (len, at) = match second & 0x7f {
        126 => (usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])), 4),
        127 => (usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?, 10),
        n => (usize::from(n), 2),
    };
    Some((first, buf.get(at..at + len)?.to_vec(), at + len))
}

/// Sends `head` a byte every 20 ms on `tcp`, as a slowloris client does, until the server closes
/// the connection; how many bytes went, and how long it took. Panics if the server answers.
pub(crate) async fn trickle(tcp: &mut tokio::net::TcpStream, head: &[u8]) -> (usize, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    for &b in head {
        if tcp.write_all(&[b]).await.is_err() {
            break;
        }
        sent += 1;
        let mut probe = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => panic!("answered a head that took too long"),
            Err(_) => {}
        }
    }
    (sent, started.elapsed())
}

/// Says back what it is sent: `{"say": …}` comes back escaped inside `#echo`.
pub(crate) struct Echo;

impl Session for Echo {
    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        ctx.push(Fragment::inner("echo", Html::escape(event.value("say").unwrap_or_default())));
        Ok(())
    }
}
