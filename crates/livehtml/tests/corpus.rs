//! The bad-input corpus (`tests/corpus/*.jsonl`, written by `tests/corpus/generate.py`): every
//! malformed handshake, frame, event, SSE post, long-poll request and view token in it is sent
//! over a real socket to one server, and must get the answer written beside it (a status, a
//! close code, or the connection going on); all the while a normal client keeps being answered.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Html, Limits, Listener, Live, LiveRoutes};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);
const UPGRADE: &str = "GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct Counter;

impl LiveView for Counter {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Counter)
    }

    fn render(&self) -> Html {
        maud::html! { output #count { "0" } }.into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        Err(ViewError::unknown_event(&event))
    }
}

async fn serve(live: Live) -> SocketAddr {
    let limits = Limits::default().max_message_bytes(4096).poll_hold(Duration::from_millis(100));
    let views = LiveRoutes::new(&live, ()).route::<Counter>("/counter").build();
    let app = axum::Router::new().route("/live", live.endpoint_with(limits, |_| common::Echo)).merge(views.router());
    let listener = Listener::bind("127.0.0.1:0").await.unwrap().head_timeout(Duration::from_millis(500));
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { livehtml::serve(listener, app).await.unwrap() });
    addr
}

fn rows(family: &str) -> Vec<Value> {
    let path = format!("{}/tests/corpus/{family}.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A JSON string whose characters are bytes (the corpus writes bytes as `\u00XX`).
fn bytes(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(u32::from(c)).expect("a byte")).collect()
}

/// Sends `raw` and reads the status of the answer, or `closed` when there is none.
async fn status_of(addr: SocketAddr, raw: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(raw).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
    };
    if tokio::time::timeout(WAIT, read).await.is_err() {
        return "timeout".into();
    }
    let line = String::from_utf8_lossy(&got);
    let status = line.strip_prefix("HTTP/1.1 ").or_else(|| line.strip_prefix("HTTP/1.0 "));
    status.map_or_else(|| "closed".into(), |rest| rest[..3].to_owned())
}

/// A masked client text frame.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    common::masked_frame(0x81, payload)
}

/// After a handshake on `tcp`, sends `data` and then a probe event; what the server did: a
/// close code, `echo` (it answered `data` before the probe) or `open` (it answered only the
/// probe), `eof` or `timeout`.
async fn after_handshake(tcp: &mut TcpStream, data: &[u8]) -> String {
    let _ = tcp.write_all(data).await;
    let _ = tcp.write_all(&text_frame(br#"{"say":"probe"}"#)).await;
    let mut buf = Vec::new();
    let mut answered = false;
    let run = async {
        loop {
            // One server frame: unmasked, its length in the header.
            while let Some((first, payload, used)) = common::server_frame(&buf) {
                let opcode = first & 0x0f;
                buf.drain(..used);
                match opcode {
                    8 => {
                        return payload
                            .get(..2)
                            .map_or("1005".into(), |c| u16::from_be_bytes([c[0], c[1]]).to_string());
                    }
                    1 if payload.windows(5).any(|w| w == b"probe") => {
                        return if answered { "echo".into() } else { "open".into() };
                    }
                    1 => answered = true,
                    _ => {}
                }
            }
            let mut chunk = [0u8; 8192];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return "eof".to_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, run).await.unwrap_or_else(|_| "timeout".into())
}

/// A WebSocket on `path`, its 101 read: the socket, or the status it got instead.
async fn upgraded(addr: SocketAddr, path: &str) -> Result<TcpStream, String> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(UPGRADE.replacen("/live", path, 1).as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    if head.starts_with("HTTP/1.1 101") { Ok(tcp) } else { Err(head[9..12].to_owned()) }
}

/// Opens an event stream; its signed id, and the socket that keeps it open.
async fn stream(addr: SocketAddr) -> (String, TcpStream) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(rest) = text.split("event: lh-stream\ndata: ").nth(1)
            && let Some((id, _)) = rest.split_once('\n')
        {
            return (id.to_owned(), tcp);
        }
    }
}

async fn poll_id(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /live?lh-poll=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn post(addr: SocketAddr, id: Option<&str>, body: &[u8], headers: &[(String, String)]) -> String {
    let mut head = String::from("POST /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(id) = id {
        head += &format!("LH-Stream: {id}\r\n");
    }
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    status_of(addr, &raw).await
}

/// `id` with its middle character changed.
fn flipped(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A token of this server's counter page.
async fn token(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /counter HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    let token = page.split("/_livehtml/live?t=").nth(1).and_then(|s| s.split('"').next()).expect("a token");
    token.replace("&amp;", "&")
}

#[derive(Default)]
struct Checked {
    count: usize,
    wrong: Vec<String>,
}

impl Checked {
    fn check(&mut self, family: &str, row: &Value, got: String) {
        self.count += 1;
        let expect = row["expect"].as_str().unwrap();
        if expect != got {
            self.wrong.push(format!("{family}: {} — expected {expect}, got {got}", row["why"]));
        }
    }
}

/// The normal client: answered within the wait, however the others behave.
async fn still_served(normal: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>) {
    normal.send(Message::text(r#"{"say":"normal"}"#)).await.unwrap();
    let reply =
        tokio::time::timeout(WAIT, normal.next()).await.expect("the normal client is answered").unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("normal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_answer_and_a_normal_client_is_served_throughout() {
    let addr = serve(Live::new(livehtml::Config::default().secret(KEY))).await;
    let other = serve(Live::default()).await;
    let (mut normal, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    let mut checked = Checked::default();

    for chunk in rows("handshake").chunks(16) {
        let answers = futures_util::future::join_all(
            chunk.iter().map(|row| async move { status_of(addr, &bytes(row["raw"].as_str().unwrap())).await }),
        )
        .await;
        for (row, got) in chunk.iter().zip(answers) {
            checked.check("handshake", row, got);
        }
        still_served(&mut normal).await;
    }

    for (family, field) in [("frames", "hex"), ("events", "text")] {
        for chunk in rows(family).chunks(16) {
            let answers = futures_util::future::join_all(chunk.iter().map(|row| async move {
                let data = match field {
                    "hex" => hex(row[field].as_str().unwrap()),
                    _ => text_frame(row[field].as_str().unwrap().as_bytes()),
                };
                let mut tcp = upgraded(addr, "/live").await.expect("upgraded");
                after_handshake(&mut tcp, &data).await
            }))
            .await;
            for (row, got) in chunk.iter().zip(answers) {
                checked.check(family, row, got);
            }
            still_served(&mut normal).await;
        }
    }

    let (valid, _open) = stream(addr).await;
    let (foreign, _foreign_open) = stream(other).await;
    let poll = poll_id(addr).await;
    for row in rows("posts") {
        let id = match row["stream"].as_str().unwrap() {
            "valid" => Some(valid.clone()),
            "none" => None,
            "junk" => Some("junk".into()),
            "truncated" => Some(valid[..valid.len() - 3].to_owned()),
            "flipped" => Some(flipped(&valid)),
            "empty" => Some(String::new()),
            "otherkey" => Some(foreign.clone()),
            "pollprefix" => Some(poll.clone()),
            "long" => Some("a".repeat(10_000)),
            "ended" => {
                let (id, tcp) = stream(addr).await;
                drop(tcp);
                // Until the server has seen the stream go.
                let gone = async {
                    loop {
                        let got = post(addr, Some(&id), b"{}", &[]).await;
                        if got != "204" && got != "429" {
                            return got;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                checked.check(
                    "posts",
                    &row,
                    tokio::time::timeout(WAIT, gone).await.unwrap_or_else(|_| "timeout".into()),
                );
                continue;
            }
            other => panic!("no stream kind {other}"),
        };
        let headers: Vec<(String, String)> = row["headers"]
            .as_object()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
            .unwrap_or_default();
        let got = post(addr, id.as_deref(), &bytes(row["body"].as_str().unwrap()), &headers).await;
        checked.check("posts", &row, got);
    }
    still_served(&mut normal).await;

    for row in rows("polls") {
        let query = row["query"]
            .as_str()
            .unwrap()
            .replace("valid-cut", &encode(&poll[..poll.len() - 3]))
            .replace("valid-flipped", &encode(&flipped(&poll)))
            .replace("stream-id", &encode(&valid))
            .replace("=valid", &format!("={}", encode(&poll)));
        let got =
            status_of(addr, format!("GET /live?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
        checked.check("polls", &row, got);
    }
    still_served(&mut normal).await;

    let good = token(addr).await;
    let foreign_token = token(other).await;
    for row in rows("tokens") {
        let t = match row["token"].as_str().unwrap() {
            "valid-cut" => good[..good.len() - 4].to_owned(),
            "valid-flipped" => flipped(&good),
            "valid-otherkey" => foreign_token.clone(),
            "valid-doubled" => format!("{good}{good}"),
            "valid-spaced" => good.replacen('.', "%20.", 1),
            "valid-now" => forge(now(), "/counter"),
            "valid-future" => forge(now() + 10 * 365 * 24 * 3600, "/counter"),
            "valid-old" => forge(0, "/counter"),
            "valid-nowhere" => forge(now(), "/nowhere"),
            "valid-script" => forge(now(), "javascript:alert(1)"),
            other => encode(other),
        };
        // A refused token is closed at once; one still open after a second has joined.
        let got = match upgraded(addr, &format!("/_livehtml/live?t={t}")).await {
            Ok(mut tcp) => {
                let joined = tokio::time::timeout(Duration::from_secs(1), after_handshake(&mut tcp, b"")).await;
                joined.unwrap_or_else(|_| "joined".into())
            }
            Err(status) => status,
        };
        checked.check("tokens", &row, got);
    }
    still_served(&mut normal).await;

    assert!(
        checked.wrong.is_empty(),
        "{} of {} inputs got another answer:\n{}",
        checked.wrong.len(),
        checked.count,
        checked.wrong.join("\n")
    );
    assert!(checked.count >= 300, "the corpus holds {} inputs", checked.count);
}

/// The key this test's server signs view tokens with, so that the test can sign some too.
const KEY: &[u8] = b"the corpus test's signing key, 32+ bytes long";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A view token signed with [`KEY`], as livehtml makes them (`v2.<issued>.<render>.<page>.<url>`
/// and an HMAC-SHA256 tag, base64url): what someone holding the key, or a token from another
/// time, would present.
fn forge(issued: u64, url: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = format!("v2.{issued}.{:016x}.{:016x}.{}", 1, 1, b64.encode(url));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(body.as_bytes());
    let tag = b64.encode(mac.finalize().into_bytes());
    encode(&format!("{body}.{tag}"))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}
