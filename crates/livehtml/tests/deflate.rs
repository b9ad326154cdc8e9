//! permessage-deflate (RFC 7692) over real sockets: offered and agreed (with the window a client
//! asks for), a broadcast compressed for pages that agreed and plain for the others, a page's
//! compressed messages inflated, a 10 MB bomb in a few KB closed with 1009, and compression off
//! when an endpoint says so. The client side is written here from the RFC (tokio-tungstenite
//! has no permessage-deflate), with flate2 for the compression.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use livehtml::{Context, Event, Fragment, Frame, Html, Limits, Listener, Live, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

struct Room;

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        ctx.push(Fragment::inner("joined", Html::escape("yes")));
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let said = Html::escape(event.value("say").unwrap_or_default());
        ctx.pubsub().publish("room", Frame::fragments(&[Fragment::inner("said", said)]));
        Ok(())
    }
}

async fn serve() -> SocketAddr {
    let live = Live::default();
    let limits = Limits::default().max_message_bytes(64 * 1024);
    let app = axum::Router::new()
        .route("/live", live.endpoint_with(limits, |_| Room))
        .route("/plain", live.endpoint_with(limits.compression(false), |_| Room));
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { livehtml::serve(listener, app).await.unwrap() });
    addr
}

struct Client {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// The answer's `Sec-WebSocket-Extensions`, if any.
    extensions: Option<String>,
}

impl Client {
    async fn connect(addr: SocketAddr, path: &str, offer: Option<&str>) -> Self {
        Self::connect_sending(addr, path, offer, &[]).await
    }

    /// Connects, sending `ahead` in the same write as the upgrade request (before the 101).
    async fn connect_sending(addr: SocketAddr, path: &str, offer: Option<&str>, ahead: &[u8]) -> Self {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let extension = offer.map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n")).unwrap_or_default();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
        );
        tcp.write_all(&[head.as_bytes(), ahead].concat()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("sec-websocket-extensions: ").map(str::to_owned));
        buf.drain(..end + 4);
        Self { tcp, buf, extensions }
    }

    /// Sends one masked frame with `first` as its first byte.
    async fn send(&mut self, first: u8, payload: &[u8]) {
        self.tcp.write_all(&common::masked_frame(first, payload)).await.unwrap();
    }

    /// The next frame: its first byte and payload.
    async fn next(&mut self) -> (u8, Vec<u8>) {
        let read = async {
            loop {
                if let Some(frame) = common::server_frame(&self.buf) {
                    return frame;
                }
                let mut chunk = [0u8; 65536];
                let n = self.tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        let (first, payload, used) = tokio::time::timeout(WAIT, read).await.expect("a frame in time");
        self.buf.drain(..used);
        (first, payload)
    }

    /// The next text message containing `needle`, inflated if it came compressed; and whether it
    /// did.
    async fn until(&mut self, needle: &str) -> (String, bool) {
        loop {
            let (first, payload) = self.next().await;
            assert_ne!(first & 0x0f, 8, "closed: {payload:?}");
            let compressed = first & 0x40 != 0;
            let payload = if compressed { inflate(&payload) } else { payload };
            let text = String::from_utf8(payload).unwrap();
            if text.contains(needle) {
                return (text, compressed);
            }
        }
    }
}

/// A message compressed as RFC 7692 says: raw deflate, sync flush, the last four bytes off.
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 1024);
    while c.total_in() < payload.len() as u64 || out.len() == out.capacity() {
        out.reserve(1024);
        c.compress_vec(&payload[c.total_in() as usize..], &mut out, FlushCompress::Sync).unwrap();
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let input = [payload, &[0, 0, 0xff, 0xff]].concat();
    let mut out = Vec::with_capacity(64 * 1024);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
    out
}

const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[tokio::test]
async fn a_broadcast_goes_compressed_to_pages_that_agreed_and_plain_to_the_others() {
    let addr = serve().await;
    let mut a = Client::connect(addr, "/live", Some("permessage-deflate; client_max_window_bits")).await;
    let mut b = Client::connect(addr, "/live", None).await;
    let mut c = Client::connect(addr, "/live", Some("permessage-deflate; server_max_window_bits=10")).await;
    assert_eq!(a.extensions.as_deref(), Some(AGREED));
    assert_eq!(b.extensions, None);
    assert_eq!(c.extensions.as_deref(), Some(&*format!("{AGREED}; server_max_window_bits=10")));
    for page in [&mut a, &mut b, &mut c] {
        page.until("joined").await;
    }

    // A compressed message from A (RSV1 set), repetitive enough to compress well.
    let said = "livehtml sends HTML over WebSockets; ".repeat(40);
    let event = format!(r#"{{"say":"{said}"}}"#);
    a.send(0x80 | 0x40 | 0x1, &deflate(event.as_bytes())).await;
    let (for_a, a_compressed) = a.until(&said).await;
    let (for_b, b_compressed) = b.until(&said).await;
    let (for_c, c_compressed) = c.until(&said).await;
    assert!(a_compressed && c_compressed && !b_compressed);
    assert_eq!(for_a, for_b, "the same message, whatever the wire");
    assert_eq!(for_c, for_b);

    // Plain frames from a page that agreed are fine too (RFC 7692 lets a message go either way),
    // as are compressed messages in fragments.
    a.send(0x81, br#"{"say":"plain from a"}"#).await;
    b.until("plain from a").await;
    let compressed = deflate(br#"{"say":"in two fragments"}"#);
    let (first, rest) = compressed.split_at(compressed.len() / 2);
    c.send(0x40 | 0x1, first).await;
    c.send(0x89, b"ping between").await;
    c.send(0x80, rest).await;
    b.until("in two fragments").await;
}

/// What the issue asks of a bomb: 10 MB in a frame of a few KB closes with 1009, having cost the
/// server no more than the limit; everyone else is still served.
#[tokio::test]
async fn a_compression_bomb_closes_with_1009_and_others_are_served() {
    let addr = serve().await;
    let mut bomber = Client::connect(addr, "/live", Some("permessage-deflate")).await;
    let mut other = Client::connect(addr, "/live", Some("permessage-deflate")).await;
    bomber.until("joined").await;
    other.until("joined").await;
    let bomb = deflate(format!(r#"{{"say":"{}"}}"#, " ".repeat(10 << 20)).as_bytes());
    assert!(bomb.len() < 16 * 1024, "10 MB in {} bytes", bomb.len());
    bomber.send(0x80 | 0x40 | 0x1, &bomb).await;
    let (first, payload) = loop {
        let (first, payload) = bomber.next().await;
        if first & 0x0f == 8 {
            break (first, payload);
        }
    };
    assert_eq!(first & 0x0f, 8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);

    // Data that is not deflate fails the connection (1002); others go on.
    let mut broken = Client::connect(addr, "/live", Some("permessage-deflate")).await;
    broken.until("joined").await;
    broken.send(0x80 | 0x40 | 0x1, b"\xff\xff\xff\xff not deflate").await;
    let code = loop {
        let (first, payload) = broken.next().await;
        if first & 0x0f == 8 {
            break u16::from_be_bytes([payload[0], payload[1]]);
        }
    };
    assert_eq!(code, 1002);
    other.send(0x81, br#"{"say":"still here"}"#).await;
    other.until("still here").await;
}

#[tokio::test]
async fn an_endpoint_with_compression_off_declines_and_refuses_compressed_frames() {
    let addr = serve().await;
    let mut page = Client::connect(addr, "/plain", Some("permessage-deflate")).await;
    assert_eq!(page.extensions, None);
    page.until("joined").await;
    // RSV1 without the extension agreed: a protocol error.
    page.send(0x80 | 0x40 | 0x1, &deflate(br#"{"say":"x"}"#)).await;
    let (first, payload) = page.next().await;
    assert_eq!((first & 0x0f, u16::from_be_bytes([payload[0], payload[1]])), (8, 1002));
    // An offer livehtml cannot take (an 8-bit server window) is declined, not failed.
    let declined = Client::connect(addr, "/live", Some("permessage-deflate; server_max_window_bits=8")).await;
    assert_eq!(declined.extensions, None);
}

/// A client may send its first frames right behind the upgrade request, before the 101: hyper
/// has read them by then, and the socket taken out of hyper must get them first, compressed or
/// not.
#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_read_first() {
    let addr = serve().await;
    let plain = common::masked_frame(0x81, br#"{"say":"early plain"}"#);
    let mut client = Client::connect_sending(addr, "/plain", None, &plain).await;
    assert!(client.until("early plain").await.0.contains("said"));

    let compressed = common::masked_frame(0xc1, &deflate(br#"{"say":"early compressed"}"#));
    let mut client = Client::connect_sending(addr, "/live", Some(AGREED), &compressed).await;
    assert!(client.extensions.is_some());
    assert!(client.until("early compressed").await.0.contains("said"));
}
