//! `livehtml::serve`: every request head timed (the later heads of a keep-alive connection too,
//! which `axum::serve` leaves untimed), heads over the limit answered 431, live endpoints
//! refusing large headers with 431, and new connections limited per address. Real sockets on
//! 127.0.0.1:0.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use livehtml::{Listener, Live};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const WAIT: Duration = Duration::from_secs(10);
const HEAD: Duration = Duration::from_millis(300);

async fn start(listener: Listener) -> SocketAddr {
    let live = Live::default();
    let app: axum::Router = axum::Router::new()
        .route("/live", live.endpoint(|_| common::Echo))
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/peer",
            axum::routing::get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<livehtml::Peer>| async move {
                    peer.addr().ip().to_string()
                },
            ),
        );
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { livehtml::serve(listener, app).await.unwrap() });
    addr
}

async fn serve() -> SocketAddr {
    start(Listener::bind("127.0.0.1:0").await.unwrap().head_timeout(HEAD)).await
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from a keep-alive connection.
async fn response(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.expect("an answer in time").unwrap();
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0usize);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Whether the server closes `tcp` (end of stream or reset) within the wait, and when.
async fn closed_by_server(tcp: &mut TcpStream) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.ok()
}

#[tokio::test]
async fn requests_are_served_with_their_peer() {
    let addr = serve().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = response(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.1"), "{answer}");
    // And a WebSocket upgrade through it.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(r#"{"say":"hi"}"#)).await.unwrap();
    let next = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(next.to_text().unwrap().contains("hi"));
}

/// The probe's trickled head again, as the second request of a keep-alive connection: under
/// `axum::serve` only the first head had a deadline.
#[tokio::test]
async fn a_keep_alive_connections_second_head_has_a_deadline_too() {
    let addr = serve().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (sent, took) = common::trickle(&mut tcp, head).await;
    assert!(sent < head.len(), "closed before the second head was whole");
    // The deadline runs from the end of the first response, which the server wrote a moment
    // before this client read it (more than a moment on a busy machine): measured from here,
    // the close comes a little early.
    assert!(took + Duration::from_millis(100) >= HEAD, "not before its deadline: {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_deadline() {
    let addr = serve().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    let after = closed_by_server(&mut tcp).await.expect("closed");
    assert!(after >= HEAD - Duration::from_millis(50), "closed after {after:?}");
}

/// 360 KB of headers held memory for minutes; under `serve` such a head gets an answer.
#[tokio::test]
async fn a_head_over_the_limit_is_answered_431() {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap().head_timeout(HEAD).max_head_bytes(8 * 1024);
    let addr = start(listener).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(10 * 1024));
    let _ = tcp.write_all(big.as_bytes()).await;
    let mut answer = String::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_string(&mut answer)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.60}");
    // A head far beyond it is cut off without reading it all.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    let flood = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(400 * 1024));
    let _ = huge.write_all(flood.as_bytes()).await;
    assert!(closed_by_server(&mut huge).await.is_some());
}

/// Live endpoints take less: 16 KiB of headers by default (`Limits::max_head_bytes`), where a
/// page may carry more.
#[tokio::test]
async fn live_endpoints_refuse_large_headers_with_431() {
    let addr = serve().await;
    let cookie = "c".repeat(20 * 1024);
    let upgrade = format!(
        "GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n"
    );
    let stream = format!("GET /live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n");
    let poll = format!("GET /live?lh-poll=1 HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
    let page = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
    for (request, status) in [(upgrade, "431"), (stream, "431"), (poll, "431"), (page, "200")] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let answer = response(&mut tcp).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{:.40} → {answer:.60}", request);
    }
}

async fn connect_from(ip: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether a request on a new connection from `ip` is answered.
async fn answered(ip: IpAddr, to: SocketAddr) -> bool {
    let mut tcp = connect_from(ip, to).await;
    if tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_string(&mut answer)).await.expect("answered or closed");
    answer.starts_with("HTTP/1.1 200")
}

#[tokio::test]
async fn new_connections_are_limited_per_address() {
    // One a second, bursts of five: a sixth at once is closed; another address is served.
    let listener = Listener::bind("127.0.0.1:0").await.unwrap().connection_rate(1, 5);
    let addr = start(listener).await;
    let flooder: IpAddr = "127.0.0.1".parse().unwrap();
    let mut served = 0;
    for _ in 0..20 {
        served += usize::from(answered(flooder, addr).await);
    }
    assert!((5..=7).contains(&served), "{served} of 20 served");
    assert!(answered("127.0.0.2".parse().unwrap(), addr).await, "another address is served");
}
