//! Clients that misbehave at the end of their connection: they stop reading with a full send
//! buffer, half-close, reset, or vanish without a close frame while messages are flowing. The
//! demo runs as its own process (the release demo's binary, built by `cargo test`) so that a
//! spinning worker shows up as the process's CPU time and a SIGTERM is a real signal; after each
//! scenario the server must be idle, have released every dead connection, answer a new client and
//! stop on SIGTERM within its drain bound.
//!
//! Linux only: the checks read `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use common::{Client, WAIT, htmx2, livehtml_js};

/// The demo's drain bound in these runs (`--drain-secs`).
const DRAIN: Duration = Duration::from_secs(2);

/// The demo binary, on 127.0.0.1:0, with its own data directory.
struct Demo {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Demo {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_livehtml-demo"))
            // The bursts here come from one page as fast as it can send: no message allowance.
            .args(["--addr", "127.0.0.1:0", "--drain-secs", &DRAIN.as_secs().to_string(), "--message-rate", "0"])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the demo binary starts");
        // The first line names the port; the rest is drained so the demo never blocks on it.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = rx.recv_timeout(WAIT).expect("the demo prints its address");
        Self { child, addr, _data: data }
    }

    /// User and system CPU time of the process so far, in clock ticks (1/100 s).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The server's sockets on its port in CLOSE-WAIT: the peer hung up and the server has not
    /// closed its end.
    fn close_wait(&self) -> usize {
        let port = format!(":{:04X}", self.addr.port());
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .flat_map(|table| {
                table
                    .lines()
                    .skip(1)
                    .filter(|line| {
                        let mut cols = line.split_whitespace();
                        let local = cols.nth(1).unwrap_or_default();
                        let state = cols.nth(1).unwrap_or_default();
                        local.ends_with(&port) && state == "08"
                    })
                    .map(|_| ())
                    .collect::<Vec<_>>()
            })
            .count()
    }

    async fn connect(&self, path: &str) -> Client {
        let url = format!("ws://{}{path}", self.addr);
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.expect("connect in time").unwrap().0
    }

    /// A socket that completes the upgrade to `path` and then reads nothing, with a receive
    /// buffer of 1 KiB, so the server's writes back up.
    async fn stalled(&self, path: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        let mut tcp = socket.connect(self.addr).await.unwrap();
        let upgrade = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.addr
        );
        tcp.write_all(upgrade.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        tcp
    }

    /// A GET answered in time, over a fresh connection.
    async fn serves(&self, path: &str) -> bool {
        let get = async {
            let mut tcp = TcpStream::connect(self.addr).await.ok()?;
            let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
            tcp.write_all(req.as_bytes()).await.ok()?;
            let mut resp = Vec::new();
            tcp.read_to_end(&mut resp).await.ok()?;
            Some(resp.starts_with(b"HTTP/1.1 200"))
        };
        matches!(tokio::time::timeout(Duration::from_secs(10), get).await, Ok(Some(true)))
    }

    /// What every scenario must leave behind: no dead connection held, an idle process, a
    /// server that answers, and a clean stop on SIGTERM.
    async fn assert_recovered(mut self) {
        // Released: polled, since the kernel offers no event for another process's sockets.
        // The bound is the server's own: a stalled write is given up after one to two write
        // timeouts (10 s) and a closing handshake after the close timeout (5 s); a livelocked
        // server never releases them.
        // A socket reaches CLOSE-WAIT only once the kernel has taken the peer's FIN, which may
        // come just after the scenario ends: none must be seen for a whole second.
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut clear_since = None;
        while Instant::now() < deadline {
            if self.close_wait() > 0 {
                clear_since = None;
            } else if clear_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(self.close_wait(), 0, "dead connections left in CLOSE-WAIT");

        // Idle: CPU time stops growing. A second of wall time with nobody connected must come
        // that costs at most a fifth of a core; work left over from the scenario (a debug build
        // freeing large queues) may take a few seconds, a spinning worker never stops.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut spent = u64::MAX;
        while spent > 20 && Instant::now() < deadline {
            let before = self.cpu_ticks();
            tokio::time::sleep(Duration::from_secs(1)).await;
            spent = self.cpu_ticks() - before;
        }
        assert!(spent <= 20, "the server still used {spent} ticks of CPU in 100 with no client connected");

        assert!(self.serves("/").await, "a new client is served");
        let mut ws = self.connect("/ws/echo").await;
        ws.send(htmx2(json!({"message": "still here"}), "conversation")).await.unwrap();
        let echoed = common::next_text(&mut ws).await;
        assert!(echoed.contains("still here"), "{echoed}");
        drop(ws);
        self.terminate().await;
    }

    /// Sends SIGTERM and waits for a clean exit within the drain bounds (HTTP, then live
    /// connections), plus time to stop the runtime.
    async fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + 2 * DRAIN + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the demo exits cleanly on SIGTERM: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the demo did not stop within its drain bound after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that never finishes its request head, and one that never reads, do not hold up a
/// shutdown past its drain bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_with_a_half_sent_request_and_a_stalled_socket_open() {
    let mut demo = Demo::start();
    let mut slow_head = TcpStream::connect(demo.addr).await.unwrap();
    slow_head.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let stalled = demo.stalled("/ws/chat").await;
    // Both are open before the signal: the upgraded socket answered, the head is in the kernel.
    demo.terminate().await;
    drop((slow_head, stalled));
}

/// Every page hears its 1012 before the process exits: the drain waits for the close frames to
/// go out, not only for the closes to start. (A race, so ten rounds of eight pages.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_gets_its_1012_before_the_process_exits() {
    for round in 0..10 {
        let mut demo = Demo::start();
        let mut pages = Vec::new();
        for _ in 0..8 {
            pages.push(demo.connect("/ws/chat").await);
        }
        let last = pages.last_mut().unwrap();
        assert!(read_until(last, "8 online").await, "every page joined");
        let readers: Vec<_> = pages
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                            Some(Ok(_)) => continue,
                            Some(Err(_)) | None => return None,
                        }
                    }
                })
            })
            .collect();
        demo.terminate().await;
        for reader in readers {
            let code = tokio::time::timeout(WAIT, reader).await.expect("closed in time").unwrap();
            assert_eq!(code, Some(1012), "round {round}: a page did not get the shutdown's close frame");
        }
    }
}

/// How a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hangup {
    /// A plain TCP close without a WebSocket close frame (a killed tab).
    Fin,
    /// A reset (SO_LINGER 0): the network dropped, or the peer's kernel refused.
    Reset,
    /// Shut down its sending side only, and keep the socket.
    HalfClose,
}

fn hang_up(tcp: &TcpStream, how: Hangup) {
    if how == Hangup::Reset {
        #[allow(deprecated)] // set_linger: SO_LINGER 0 is exactly what this test wants
        tcp.set_linger(Some(Duration::ZERO)).unwrap();
    }
}

fn tcp_of(ws: &Client) -> &TcpStream {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp,
        _ => unreachable!("plain ws://"),
    }
}

/// Ends a WebSocket client without a close frame.
async fn leave(ws: Client, how: Hangup) -> Option<Client> {
    hang_up(tcp_of(&ws), how);
    if how == Hangup::HalfClose {
        let mut ws = ws;
        // Reaches the socket under the WebSocket stream: its write side ends, its read side stays.
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_mut() else { unreachable!() };
        tcp.shutdown().await.unwrap();
        return Some(ws);
    }
    None
}

/// Reads what a stalled client was sent until `done` shows up in it, the server closes, or it
/// stops coming; then drops or resets it.
async fn drain_and_leave(mut tcp: TcpStream, done: &str, how: Hangup) {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(done.len()).any(|w| w == done.as_bytes()) {
            break;
        }
    }
    hang_up(&tcp, how);
}

/// A chat message of about 500 bytes, numbered.
fn chat_message(i: usize) -> Message {
    htmx2(json!({"name": "burst", "message": format!("m{i}-{}", "x".repeat(490))}), "chat-form")
}

/// Reads until a text message contains `needle`.
async fn read_until(ws: &mut Client, needle: &str) -> bool {
    let read = async {
        while let Some(Ok(message)) = ws.next().await {
            if message.to_text().is_ok_and(|t| t.contains(needle)) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(WAIT, read).await.unwrap_or(false)
}

/// The issue's reproduction on the chat: `readers` clients read a burst of `messages` while
/// `stalled` clients read nothing; the stalled ones then read what they got and leave, and the
/// readers hang up without a close frame, `how`: after the burst, or `midway` through it.
async fn chat_burst(readers: usize, stalled: usize, messages: usize, how: Hangup, midway: bool) {
    let demo = Demo::start();
    // The sender reads everything too, or it would be the slow consumer.
    let (mut send, mut sender_reads) = demo.connect("/ws/chat").await.split();
    let mut clients = Vec::new();
    for _ in 0..readers {
        clients.push(demo.connect("/ws/chat").await);
    }
    let mut slow = Vec::new();
    for _ in 0..stalled {
        slow.push(demo.stalled("/ws/chat").await);
    }
    // Every join broadcasts the head count: the last one has been counted.
    let everyone = format!(">{} online<", 1 + readers + stalled);
    let sender_done = format!("m{}-", messages - 1);
    let joined = async {
        while let Some(Ok(m)) = sender_reads.next().await {
            if m.to_text().is_ok_and(|t| t.contains(&everyone)) {
                return;
            }
        }
        panic!("the sender's socket ended before everyone joined");
    };
    tokio::time::timeout(WAIT, joined).await.expect("everyone joined");
    let sender_reader = tokio::spawn(async move {
        while let Some(Ok(m)) = sender_reads.next().await {
            if m.to_text().is_ok_and(|t| t.contains(&sender_done)) {
                return sender_reads;
            }
        }
        panic!("the sender's socket ended early");
    });

    // Readers read the whole burst, or half of it and hang up while the rest is sent.
    let enough = format!("m{}-", if midway { messages / 2 } else { messages - 1 });
    let reading: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let enough = enough.clone();
            tokio::spawn(async move {
                assert!(read_until(&mut ws, &enough).await, "a reader got its part of the burst");
                if midway { (None, leave(ws, how).await) } else { (Some(ws), None) }
            })
        })
        .collect();
    for i in 0..messages {
        send.send(chat_message(i)).await.unwrap();
    }
    let mut readers_left = Vec::new();
    let mut half_open = Vec::new();
    for r in reading {
        let (reader, half) = r.await.unwrap();
        readers_left.extend(reader);
        half_open.extend(half);
    }
    let _sender = tokio::time::timeout(WAIT, sender_reader).await.expect("the sender got its burst").unwrap();

    let done = format!("m{}-", messages - 1);
    for tcp in slow {
        drain_and_leave(tcp, &done, how).await;
    }
    // Hung up all at once: the chat's `on_leave` broadcasts to the ones leaving with it.
    for ws in readers_left {
        half_open.extend(leave(ws, how).await);
    }
    drop(send);
    demo.assert_recovered().await;
    drop(half_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_readers_closing_without_a_close_frame_after_a_burst_to_a_stalled_client() {
    chat_burst(200, 1, 1000, Hangup::Fin, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_readers_resetting_while_a_burst_flows() {
    chat_burst(100, 1, 1000, Hangup::Reset, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_readers_closing_after_a_burst_to_twenty_stalled_clients() {
    chat_burst(100, 20, 300, Hangup::Fin, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_readers_half_closing_while_a_burst_flows() {
    chat_burst(100, 1, 600, Hangup::HalfClose, true).await;
}

/// Readers of a live view (the counter's shared count) hang up while the count still changes
/// for everyone. Clicks come in batches (each waits for the clicker's own update of its last),
/// so the readers' views keep up and nobody is cut off as a slow consumer first.
async fn view_hangup_midstream(readers: usize, stalled: usize, clicks: usize, how: Hangup) {
    const BATCH: usize = 25;
    let demo = Demo::start();
    let join = || async {
        let mut tcp = TcpStream::connect(demo.addr).await.unwrap();
        let req = format!("GET /counter HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", demo.addr);
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut page = String::new();
        tcp.read_to_string(&mut page).await.unwrap();
        let token = page.split("/_livehtml/live?t=").nth(1).and_then(|s| s.split('"').next()).expect("a token");
        format!("/_livehtml/live?t={token}&client=lh")
    };

    let mut clients = Vec::new();
    for _ in 0..readers {
        clients.push(demo.connect(&join().await).await);
    }
    let mut slow = Vec::new();
    for _ in 0..stalled {
        slow.push(demo.stalled(&join().await).await);
    }
    let mut clicker = demo.connect(&join().await).await;

    // Readers see a tenth of the clicks, then hang up while the rest are being made.
    let reading: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                assert!(until_shared(&mut ws, clicks / 10).await, "a reader saw the first clicks");
                leave(ws, how).await
            })
        })
        .collect();
    for batch in (0..clicks).collect::<Vec<_>>().chunks(BATCH) {
        for _ in batch {
            clicker.send(livehtml_js("shared-inc", json!({}))).await.unwrap();
        }
        let last = batch[batch.len() - 1] + 1;
        assert!(until_shared(&mut clicker, last).await, "click {last} was answered");
    }
    let mut half_open = Vec::new();
    for r in reading {
        half_open.extend(r.await.unwrap());
    }
    let last = format!(r#"<output id="shared">{clicks}</output>"#);
    for tcp in slow {
        drain_and_leave(tcp, &last, how).await;
    }
    drop(clicker);
    demo.assert_recovered().await;
    drop(half_open);
}

/// Reads a counter view's updates until its shared count is at least `n`. (Updates can cross on
/// their way to a view, which keeps the highest: a value may be skipped.)
async fn until_shared(ws: &mut Client, n: usize) -> bool {
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            let text = m.to_text().unwrap_or_default();
            let value = text
                .split(r#"<output id="shared">"#)
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .and_then(|v| v.parse::<usize>().ok());
            if value.is_some_and(|v| v >= n) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(WAIT, read).await.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_readers_closing_mid_stream() {
    view_hangup_midstream(100, 5, 300, Hangup::Fin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_readers_resetting_mid_stream() {
    view_hangup_midstream(100, 5, 300, Hangup::Reset).await;
}

/// Raw echo clients send more than they read, so the server's writes back up behind a full
/// socket, then leave `how`.
async fn raw_stalled_writers(clients: usize, how: Hangup) {
    let demo = Demo::start();
    let mut sockets = Vec::new();
    for _ in 0..clients {
        sockets.push(demo.stalled("/ws/raw").await);
    }
    let frame = client_frame(0x1, &[b'y'; 8192]);
    for tcp in &mut sockets {
        // Until the server's echo backs up, and ours behind it: a write that does not finish.
        for _ in 0..256 {
            if tokio::time::timeout(Duration::from_millis(200), tcp.write_all(&frame)).await.is_err() {
                break;
            }
        }
    }
    let mut half_open = Vec::new();
    for tcp in sockets {
        hang_up(&tcp, how);
        if how == Hangup::HalfClose {
            let mut tcp = tcp;
            tcp.shutdown().await.unwrap();
            half_open.push(tcp);
        }
    }
    demo.assert_recovered().await;
    drop(half_open);
}

/// One masked client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_clients_resetting_with_a_full_send_buffer() {
    raw_stalled_writers(10, Hangup::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_clients_half_closing_with_a_full_send_buffer() {
    raw_stalled_writers(10, Hangup::HalfClose).await;
}
