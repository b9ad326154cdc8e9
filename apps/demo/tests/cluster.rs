//! Two demo processes on one broker behave as one server: a chat message typed on one reaches
//! pages of the other, the online count is the cluster's, a page of a process that dies
//! comes back on the other and misses nothing, and the dead process's people leave. Each demo
//! is its own process (the binary `cargo test` builds), on Redis (127.0.0.1:6379) and on NATS
//! (127.0.0.1:4222) in turn, under a namespace of this run's own; the two share one data
//! directory (SQLite file, signing key).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use common::{Client, WAIT, htmx2, next_text, until_text};

/// The brokers that are there (a missing one fails the test unless the run allows skipping:
/// see `livehtml_conformance::missing`).
fn brokers() -> Vec<&'static str> {
    ["redis://127.0.0.1:6379", "nats://127.0.0.1:4222"]
        .into_iter()
        .filter(|url| {
            let address = url.split("//").nth(1).unwrap();
            if std::net::TcpStream::connect(address).is_ok() {
                return true;
            }
            livehtml_conformance::missing(&format!("no broker at {url}"), "start `redis-server` and `nats-server -js`");
            false
        })
        .collect()
}

fn namespace() -> String {
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("lhdemo-{}-{unique:x}", std::process::id())
}

/// Two demo processes on `broker` (one data directory, a namespace of their own), and the
/// directory, which must outlive them.
fn pair(broker: &str) -> (tempfile::TempDir, Node, Node) {
    eprintln!("on {broker}");
    let data = tempfile::tempdir().unwrap();
    let ns = namespace();
    let (a, b) = (Node::start(broker, data.path(), &ns), Node::start(broker, data.path(), &ns));
    (data, a, b)
}

/// One demo process of a cluster.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn start(broker: &str, data: &std::path::Path, namespace: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livehtml-demo"))
            .args(["--addr", "127.0.0.1:0", "--pubsub", broker])
            .args(["--pubsub-namespace", namespace, "--presence-grace-ms", "300", "--node-timeout-ms", "1500"])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the demo binary starts");
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
        Self { child, addr }
    }

    /// A page of browser `user` on `path`.
    async fn connect(&self, path: &str, user: &str) -> Client {
        let mut request = format!("ws://{}{path}", self.addr).into_client_request().unwrap();
        request.headers_mut().insert("cookie", format!("lh-user={user}").parse().unwrap());
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("in time").unwrap().0
    }

    /// Dies at once, as a crash: no goodbye to pages or the cluster.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn say(text: &str) -> tokio_tungstenite::tungstenite::Message {
    htmx2(json!({"name": "t", "message": text}), "chat-form")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_its_count_span_both_processes() {
    for broker in brokers() {
        let (_data, a, b) = pair(broker);
        let mut ann = a.connect("/ws/chat", "ann").await;
        let mut bob = b.connect("/ws/chat", "bob").await;
        until_text(&mut bob, "2 online").await;
        until_text(&mut ann, "2 online").await;
        ann.send(say("typed on A")).await.unwrap();
        until_text(&mut bob, "typed on A").await;
        bob.send(say("typed on B")).await.unwrap();
        until_text(&mut ann, "typed on B").await;
        // The first render on either process shows what was said on both (one database).
        let page = http_get(b.addr, "/chat").await;
        assert!(page.contains("typed on A") && page.contains("typed on B"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_a_process_that_dies_comes_back_on_the_other_and_misses_nothing() {
    for broker in brokers() {
        let (_data, mut a, b) = pair(broker);
        // livehtml.js's dialect: each topic message comes with its position.
        let mut carol = a.connect("/ws/chat?client=lh", "carol").await;
        let mut dave = b.connect("/ws/chat", "dave").await;
        until_text(&mut carol, "2 online").await;
        dave.send(say("first")).await.unwrap();
        let seen = until_text(&mut carol, "first").await;
        let at = seen.strip_prefix("<!--lh:").and_then(|s| s.split_once("-->")).map(|(at, _)| at.to_owned());
        let at = at.unwrap_or_else(|| panic!("a stamped message: {seen}"));

        a.kill();
        dave.send(say("while away 1")).await.unwrap();
        dave.send(say("while away 2")).await.unwrap();
        until_text(&mut dave, "while away 2").await;
        // Carol's page reconnects where the load balancer sends it now, saying what it saw.
        let mut back = b.connect(&format!("/ws/chat?client=lh&lh-since={at}"), "carol").await;
        let mut got = Vec::new();
        while got.len() < 3 {
            let text = next_text(&mut back).await;
            for wanted in ["while away 1", "while away 2", "\"recovered\""] {
                if text.contains(wanted) {
                    got.push(wanted);
                }
            }
        }
        assert_eq!(got, ["while away 1", "while away 2", "\"recovered\""], "replayed in order, then told");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_of_a_process_that_dies_leave_within_its_timeout() {
    for broker in brokers() {
        let (_data, mut a, b) = pair(broker);
        let _erin = a.connect("/ws/chat", "erin").await;
        let mut frank = b.connect("/ws/chat", "frank").await;
        until_text(&mut frank, "2 online").await;
        let died = Instant::now();
        a.kill();
        until_text(&mut frank, "1 online").await;
        // The node timeout (1.5 s) and a heartbeat's sweep.
        assert!(died.elapsed() < Duration::from_secs(4), "left after {:?}", died.elapsed());
    }
}

/// GETs `path` from `addr`: the body.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    resp
}

/// A live view rendered by one process joins on the other: both sign with the shared key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_rendered_by_one_process_joins_the_other() {
    for broker in brokers() {
        let data = tempfile::tempdir().unwrap();
        let ns = namespace();
        let (a, b) = (Node::start(broker, data.path(), &ns), Node::start(broker, data.path(), &ns));
        let page = http_get(a.addr, "/counter").await;
        let connect = page.split("lh-connect=\"").nth(1).and_then(|s| s.split('"').next()).expect("a live root");
        let mut socket = b.connect(&connect.replace("&amp;", "&"), "gus").await;
        // B mounts it and updates the page (its clock): no 4002 (stale) or 1008 (forged).
        let first = next_text(&mut socket).await;
        assert!(first.contains("hx-swap-oob"), "joined on B: {first}");
        // A process with another key (another data directory, no --secret) refuses it.
        let elsewhere = tempfile::tempdir().unwrap();
        let c = Node::start(broker, elsewhere.path(), &ns);
        let mut refused = c.connect(&connect.replace("&amp;", "&"), "gus").await;
        let answer = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut refused)).await.unwrap();
        assert!(
            matches!(answer, Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None),
            "another key: {answer:?}"
        );
    }
}

/// A Redis that restarts empty (its own, on a port of its own): a page whose topic lost its
/// history is closed with 1012, and on its reconnect gets the chat again and is told so: never
/// left stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_restarts_empty_resyncs_the_pages() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = || {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let started = Instant::now();
        while child.is_ok() && std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    };
    let mut redis = match start() {
        Ok(child) => child,
        Err(e) => {
            livehtml_conformance::missing(
                &format!("no redis-server ({e})"),
                "install it (apt-get install redis-server)",
            );
            return;
        }
    };
    let data = tempfile::tempdir().unwrap();
    let broker = format!("redis://127.0.0.1:{port}");
    let (a, b) = (Node::start(&broker, data.path(), "restart"), Node::start(&broker, data.path(), "restart"));
    let mut hal = b.connect("/ws/chat?client=lh", "hal").await;
    let mut ida = a.connect("/ws/chat", "ida").await;
    until_text(&mut hal, "2 online").await;
    ida.send(say("before the restart")).await.unwrap();
    let seen = until_text(&mut hal, "before the restart").await;
    let at = seen.strip_prefix("<!--lh:").and_then(|s| s.split_once("-->")).map(|(at, _)| at.to_owned()).unwrap();

    let _ = redis.kill();
    let _ = redis.wait();
    let mut again = start().unwrap();
    // The page is closed with 1012 (its client reconnects after it).
    let closed = async {
        loop {
            match futures_util::StreamExt::next(&mut hal).await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    return frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    };
    assert_eq!(tokio::time::timeout(WAIT, closed).await.unwrap(), Some(1012));
    let mut back = b.connect(&format!("/ws/chat?client=lh&lh-since={at}"), "hal").await;
    let resent = until_text(&mut back, "before the restart").await;
    assert!(resent.contains("id=\"messages\""), "the whole list again: {resent}");
    until_text(&mut back, "\"resynced\"").await;
    // The demo processes stop before their broker does.
    drop((a, b));
    let _ = again.kill();
    let _ = again.wait();
}

/// A request of `method` with `headers` and `body` to `addr`: the status and the body (the
/// connection closed after it).
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut resp)).await.expect("answered in time").unwrap();
    let resp = String::from_utf8(resp).unwrap();
    let status = resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status line: {resp}"));
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// An event stream opened on `addr`: its reader, and its signed id (the first event's data).
async fn event_stream(addr: SocketAddr, path: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.expect("the stream starts").unwrap();
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(id) = seen.split("event: lh-stream\ndata: ").nth(1).and_then(|s| s.split_once('\n')) {
            return (tcp, id.0.to_owned());
        }
    }
}

/// Reads `stream` until what it sent contains `needle`.
async fn until_streamed(stream: &mut tokio::net::TcpStream, needle: &str) {
    use tokio::io::AsyncReadExt;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.expect("streamed in time").unwrap();
        assert!(n > 0, "the stream ended before {needle:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Issue 26: behind a round-robin balancer a page's SSE posts and long-polls land on any
/// process. Each is carried to the process that holds the page's session, and answered as it
/// would have been there: 204 once the event is taken, the session's own numbered batches (a
/// lost answer re-sent, never a new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_posts_and_polls_reach_its_session_from_any_process() {
    for broker in brokers() {
        let (_data, a, b) = pair(broker);
        let json = [("Content-Type", "application/json")];
        let say = |text: &str| json!({"name": "t", "message": text, "HEADERS": {"HX-Request": "true"}}).to_string();

        // SSE: the stream on A, the page's post through B.
        let (mut stream, id) = event_stream(a.addr, "/ws/chat").await;
        let headers = [json[0], ("LH-Stream", id.as_str())];
        let (status, body) = http(b.addr, "POST", "/ws/chat", &headers, &say("posted to B")).await;
        assert_eq!(status, 204, "a post for A's stream, through B: {body}");
        until_streamed(&mut stream, "posted to B").await;

        // Long-polling: the session opened on A, polled and posted through B.
        let (status, opened) = http(a.addr, "GET", "/ws/chat?lh-poll=1&client=lh", &[], "").await;
        assert_eq!(status, 200, "{opened}");
        let poll: serde_json::Value = serde_json::from_str(&opened).unwrap();
        let poll = poll["id"].as_str().unwrap().to_owned();
        let headers = [json[0], ("LH-Stream", poll.as_str())];
        let (status, body) = http(b.addr, "POST", "/ws/chat", &headers, &say("polled via B")).await;
        assert_eq!(status, 204, "a post for A's poll session, through B: {body}");
        let mut batch = serde_json::Value::Null;
        let mut ack = 0;
        while !batch.to_string().contains("polled via B") {
            let (status, body) = http(b.addr, "GET", &format!("/ws/chat?lh-poll={poll}&lh-ack={ack}"), &[], "").await;
            assert_eq!(status, 200, "a poll of A's session, through B: {body}");
            batch = serde_json::from_str(&body).unwrap();
            ack = batch["batch"].as_u64().unwrap();
        }
        // The answer lost: the same batch again, from A or through B, never a new one.
        let again = format!("/ws/chat?lh-poll={poll}&lh-ack={}", ack - 1);
        for node in [&a, &b] {
            let (status, body) = http(node.addr, "GET", &again, &[], "").await;
            assert_eq!(status, 200);
            assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), batch, "re-sent");
        }
    }
}

/// Issue 26: presence keyed on a cookieless page's connection id counted two people on two
/// processes as one (each process numbered its connections from 0). Ids are the cluster's now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookieless_pages_on_two_processes_are_two_people() {
    for broker in brokers() {
        let (_data, a, b) = pair(broker);
        let open = |node: &Node| format!("ws://{}/ws/chat", node.addr);
        let (mut one, _) = tokio_tungstenite::connect_async(open(&a)).await.unwrap();
        let (mut two, _) = tokio_tungstenite::connect_async(open(&b)).await.unwrap();
        until_text(&mut one, "2 online").await;
        until_text(&mut two, "2 online").await;
    }
}

/// Issue 26: a live view kept for its page lived in its process only; a page whose process died
/// came back to another one mounted anew, its counter at 0. The counter view opts in
/// (`LiveView::save`): at 7 on A, A killed, the page's next connection on B resumes it at 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_at_seven_is_still_at_seven_after_its_process_died() {
    for broker in brokers() {
        let (_data, mut a, b) = pair(broker);
        let page = http_get(a.addr, "/counter").await;
        let connect = page.split("lh-connect=\"").nth(1).and_then(|s| s.split('"').next()).expect("a live root");
        let connect = format!("{}&client=lh", connect.replace("&amp;", "&"));
        let mut socket = a.connect(&connect, "kim").await;
        for _ in 0..7 {
            socket.send(common::livehtml_js("inc", json!({}))).await.unwrap();
        }
        until_text(&mut socket, "id=\"mine\">7<").await;
        a.kill();
        // livehtml.js reconnects saying it is coming back; the balancer sends it to B.
        let mut back = b.connect(&format!("{connect}&resume=1"), "kim").await;
        let whole = until_text(&mut back, "id=\"mine\"").await;
        assert!(whole.contains("id=\"mine\">7<"), "resumed at 7: {whole}");
        until_text(&mut back, "\"resumed\"").await;
        // And it goes on from there.
        back.send(common::livehtml_js("inc", json!({}))).await.unwrap();
        until_text(&mut back, ">8<").await;
    }
}
