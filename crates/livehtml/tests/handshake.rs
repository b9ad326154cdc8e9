//! What an outside probe got through the handshake, over real sockets: origins compared
//! without their scheme, and keys that are not the base64 of 16 bytes, were upgraded.

use std::net::SocketAddr;
use std::time::Duration;

use livehtml::{Context, Event, Live, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Quiet;

impl Session for Quiet {
    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

async fn serve() -> SocketAddr {
    let live = Live::default();
    let app: axum::Router = axum::Router::new().route("/live", live.endpoint(|_| Quiet));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The status an upgrade request with these extra header lines gets.
async fn status(addr: SocketAddr, extra: &str) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /live HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head)).await.expect("an answer").unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test]
async fn the_origin_is_its_scheme_host_and_port() {
    let addr = serve().await;
    assert_eq!(status(addr, &format!("{KEY}Origin: http://{addr}\r\n")).await, 101);
    for origin in [format!("https://{addr}"), format!("HTTP://{addr}/"), format!("evil://{addr}"), "null".into()] {
        assert_eq!(status(addr, &format!("{KEY}Origin: {origin}\r\n")).await, 403, "{origin}");
    }
}

#[tokio::test]
async fn a_key_that_is_not_16_bytes_of_base64_is_a_bad_request() {
    let addr = serve().await;
    let long = "A".repeat(2000);
    for key in ["", "short", long.as_str(), "dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=="] {
        assert_eq!(status(addr, &format!("Sec-WebSocket-Key: {key}\r\n")).await, 400, "{key:.20}");
    }
    assert_eq!(status(addr, &format!("{KEY}{KEY}")).await, 400, "two keys");
}
