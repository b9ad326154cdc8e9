//! What an outside probe found: half-open handshakes were never timed out (1,000 connections
//! that sent part of an upgrade request were all open 77 s later; sockets trickling a byte per
//! 5 s stayed; enough of them starved a normal client). `Listener` gives the first request head
//! a deadline and caps the connections waiting for one. Real sockets on 127.0.0.1:0.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livehtml::{Listener, Live};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
const HEAD: Duration = Duration::from_millis(300);

async fn serve(per_address: usize) -> SocketAddr {
    let live = Live::default();
    let app: axum::Router = axum::Router::new()
        .route("/live", live.endpoint(|_| common::Echo))
        .route("/", axum::routing::get(|| async { "ok" }));
    let listener = Listener::bind("127.0.0.1:0").await.unwrap().head_timeout(HEAD).max_pending(per_address, 1000);
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<livehtml::Peer>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Whether the server closes `tcp` (end of stream or reset) within the wait.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.unwrap_or(false)
}

#[tokio::test]
async fn a_half_open_head_and_a_silent_connection_are_closed() {
    let addr = serve(100).await;
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n").await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut half).await, "a half-open head is closed");
    assert!(closed_by_server(&mut silent).await, "a connection that sends nothing is closed");
}

/// 360 KB of headers each held the server's memory for minutes; a head has a size now.
#[tokio::test]
async fn a_head_too_large_is_closed_and_one_within_the_limit_served() {
    let addr = serve(100).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(40 * 1024));
    let _ = tcp.write_all(big.as_bytes()).await;
    assert!(closed_by_server(&mut tcp).await);
    let mut fine = TcpStream::connect(addr).await.unwrap();
    let cookie = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nConnection: close\r\n\r\n", "c".repeat(8 * 1024));
    fine.write_all(cookie.as_bytes()).await.unwrap();
    let mut answer = String::new();
    fine.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.40}");
}

#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_closed_at_its_deadline() {
    let addr = serve(100).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    // A byte every 20 ms: each within any per-byte timeout, the whole far beyond the deadline.
    let (sent, took) = common::trickle(&mut tcp, head).await;
    assert!(sent < head.len(), "closed before the head was whole");
    assert!(took >= HEAD, "not before its deadline");
}

#[tokio::test]
async fn a_socket_that_sent_its_head_in_time_lives_on() {
    let addr = serve(100).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    // Idle for well past the head deadline (what is checked is that nothing closes it).
    tokio::time::sleep(HEAD * 3).await;
    ws.send(Message::text(r#"{"say":"still here"}"#)).await.unwrap();
    let next = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(next.to_text().unwrap().contains("still here"));
}

#[tokio::test]
async fn connections_waiting_for_their_head_are_capped_per_address() {
    let addr = serve(2).await;
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        waiting.push(tcp);
    }
    // A third from the same address is closed at once (well before the head deadline).
    let mut third = TcpStream::connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut third).await);
    assert!(started.elapsed() < HEAD, "closed at once, not by the deadline");
    // Once those are gone, a normal client is served.
    drop(waiting);
    let served = async {
        loop {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut answer = String::new();
            let _ = tcp.read_to_string(&mut answer).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, served).await.expect("a normal client is served");
}
