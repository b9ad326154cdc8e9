//! What permessage-deflate costs and saves on a broadcast (BENCHMARKS.md, "Compression"):
//! `CLIENTS` raw WebSocket clients on loopback, with the offer or without, each reading every
//! message of `MESSAGES` broadcasts; the bytes they read per delivery, and the process's CPU
//! time per delivery (server and clients together: they share the process).
//!
//! `cargo run --release -p livehtml --example deflate_cost`

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Instant;

use livehtml::{Context, Event, Frame, Listener, Live, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 500;
const MESSAGES: usize = 4000;

struct Room;

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

/// CPU time of this process so far, in microseconds (user + system, /proc/self/stat).
fn cpu_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // utime and stime, fields 14 and 15 of the line (ticks of 10 ms).
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    ticks * 10_000
}

/// A client: handshake (with the offer or not), then count bytes until `MESSAGES` frames came.
async fn client(addr: SocketAddr, offer: bool) -> usize {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extension = if offer { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    let head = format!(
        "GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut frames, mut bytes, mut at) = (0, 0, None);
    while frames < MESSAGES {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        let start = match at {
            Some(start) => start,
            None => match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => *at.insert(end + 4),
                None => continue,
            },
        };
        // Whole frames from `start`: count them and their bytes.
        let mut i = start;
        while let Some((len, header)) = frame_len(&buf[i..]).filter(|(len, header)| buf.len() - i >= len + header) {
            // Text frames only (the stream's own marks are none here).
            frames += 1;
            bytes += len + header;
            i += len + header;
        }
        buf.drain(..i);
        at = Some(0);
    }
    bytes / MESSAGES
}

fn frame_len(buf: &[u8]) -> Option<(usize, usize)> {
    let second = *buf.get(1)?;
    Some(match second & 0x7f {
        126 => (usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])), 4),
        127 => (usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?, 10),
        n => (usize::from(n), 2),
    })
}

async fn run(name: &str, payload: impl Fn(usize) -> String, offer: bool) {
    let live = Live::default();
    // Room for the whole run in each queue: what is measured is the bytes, not slow consumers.
    let limits = livehtml::Limits::default().outbound_queue(MESSAGES + 16);
    let app = axum::Router::new().route("/live", live.endpoint_with(limits, |_| Room));
    let listener = Listener::bind("127.0.0.1:0").await.unwrap().connection_rate(0, 0);
    let addr = listener.local_addr().unwrap();
    tokio::spawn(livehtml::serve(listener, app).into_future());
    let clients: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(addr, offer))).collect();
    while live.pubsub().subscriber_count("room") < CLIENTS {
        tokio::task::yield_now().await;
    }
    let messages: Vec<String> = (0..MESSAGES).map(&payload).collect();
    let (cpu, started) = (cpu_us(), Instant::now());
    for (i, message) in messages.iter().enumerate() {
        live.pubsub().publish("room", Frame::text(message.clone()));
        if i % 16 == 0 {
            // Let the clients read now and then, as a paced broadcast would.
            tokio::task::yield_now().await;
        }
    }
    let mut bytes = 0;
    for c in clients {
        bytes += c.await.unwrap();
    }
    let deliveries = (CLIENTS * MESSAGES) as f64;
    let cpu = (cpu_us() - cpu) as f64 / deliveries;
    println!(
        "{name:<34} {:<14} {:>6} B/delivery  {cpu:>5.2} µs CPU/delivery  ({:.1} s)",
        if offer { "deflate" } else { "uncompressed" },
        bytes / CLIENTS,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chat = |i: usize| {
        format!(
            r#"<ul id="messages" hx-swap-oob="beforeend"><li>[12:00:{:02}] <strong>Alice</strong>: message {i} about the release</li></ul>"#,
            i % 60
        )
    };
    let region = |i: usize| {
        let rows: String = (0..20)
            .map(|r| {
                format!(r#"<tr id="row-{r}"><td class="name">Player {r}</td><td class="score">{}</td></tr>"#, i * r)
            })
            .collect();
        format!(r#"<table id="scores" hx-swap-oob="outerHTML"><tbody>{rows}</tbody></table>"#)
    };
    for offer in [false, true] {
        run("chat line (about 130 bytes)", chat, offer).await;
    }
    for offer in [false, true] {
        run("score table (about 1.6 KB)", region, offer).await;
    }
}
