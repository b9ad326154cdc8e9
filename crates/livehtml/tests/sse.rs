//! Server-Sent Events end to end, over real sockets on 127.0.0.1:0: the wire (content type,
//! ids, named events, multi-line data, heartbeats), posts bound to their stream by a signed id,
//! slow readers, shutdown.

mod common;
use common::until_subscribed;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use livehtml::protocol::close;
use livehtml::{Context, Event, Fragment, Frame, Html, Limits, Live, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// Joins "room"; each event is broadcast to it, escaped; `leave` counts leaves.
struct Room {
    left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let text = event.value("message").unwrap_or_default();
        ctx.broadcast("room", &[Fragment::append("log", Html::escape(text)).tag("ul")]);
        Ok(())
    }

    async fn on_leave(&mut self, _: &mut Context) {
        self.left.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

struct Server {
    addr: SocketAddr,
    live: Live,
    left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Who writes a stream: hyper, as a response body (the app serves a plain `TcpListener`), or
/// livehtml on the socket it took after the head (`livehtml::Listener`). Every test runs both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hyper,
    Taken,
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn written_by_hyper() {
                super::$name(super::Mode::Hyper).await
            }

            #[tokio::test]
            async fn on_a_socket_taken_from_hyper() {
                super::$name(super::Mode::Taken).await
            }
        }
    )*};
}

async fn serve(mode: Mode, limits: Limits) -> Server {
    let live = Live::default();
    let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = left.clone();
    let app: Router = Router::new().route("/sse", live.endpoint_with(limits, move |_| Room { left: counter.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = live.clone().graceful_shutdown(std::future::pending());
    match mode {
        Mode::Hyper => tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await }),
        Mode::Taken => tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<livehtml::Peer>();
            axum::serve(livehtml::Listener::new(listener), app).with_graceful_shutdown(shutdown).await
        }),
    };
    Server { addr, live, left }
}

/// An open event stream, read through HTTP/1.1 chunked framing.
struct Stream {
    tcp: TcpStream,
    head: String,
    raw: Vec<u8>,
    text: String,
}

impl Stream {
    async fn open(addr: SocketAddr) -> Self {
        Self::open_over(TcpStream::connect(addr).await.unwrap(), addr).await
    }

    async fn open_over(tcp: TcpStream, addr: SocketAddr) -> Self {
        Self::open_with(tcp, addr, "").await
    }

    async fn open_with(mut tcp: TcpStream, addr: SocketAddr, headers: &str) -> Self {
        let req = format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{headers}\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        Self { tcp, head: String::from_utf8(head).unwrap(), raw: Vec::new(), text: String::new() }
    }

    /// Decodes what chunks have arrived into `text`; false at the end of the body.
    fn decode(&mut self) -> bool {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else { return true };
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return false;
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                return true;
            }
            let chunk = self.raw[line_end + 2..line_end + 2 + size].to_vec();
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// Reads until the decoded text contains `needle`; returns everything up to its end.
    async fn until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(at) = self.text.find(needle) {
                let upto = self.text[..at + needle.len()].to_owned();
                self.text.drain(..at + needle.len());
                return upto;
            }
            let mut buf = [0u8; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{needle:?} in time; got {:?}", self.text))
                .unwrap();
            assert!(n > 0, "the stream ended before {needle:?}; got {:?}", self.text);
            self.raw.extend_from_slice(&buf[..n]);
            self.decode();
        }
    }

    /// Reads to the end of the body; returns what was left.
    async fn read_to_end(&mut self) -> String {
        let read = async {
            loop {
                let mut buf = [0u8; 16 * 1024];
                let n = self.tcp.read(&mut buf).await.unwrap_or(0);
                self.raw.extend_from_slice(&buf[..n]);
                if !self.decode() || n == 0 {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, read).await.expect("the stream ends in time");
        std::mem::take(&mut self.text)
    }

    /// The signed id from the stream's first event.
    async fn id(&mut self) -> String {
        let first = self.until("\n\n").await;
        first.split("event: lh-stream\ndata: ").nth(1).expect("the lh-stream event first").trim().to_owned()
    }
}

async fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let req = format!(
        "POST /sse HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

async fn a_stream_carries_ids_named_events_and_multi_line_data(mode: Mode) {
    let server = serve(mode, Limits::default()).await;
    let mut stream = Stream::open(server.addr).await;
    assert!(server_head_is_sse(&stream.head), "{}", stream.head);
    let first = stream.until("\n\n").await;
    assert!(first.starts_with("retry: 1000\nevent: lh-stream\ndata: s1."), "{first:?}");
    until_subscribed(&server.live, 1).await;

    server.live.pubsub().publish("room", Frame::text("<p id=\"a\" hx-swap-oob=\"true\">one\ntwo</p>"));
    server.live.pubsub().publish("room", Frame::event("users", "<b>42</b>"));
    let got = stream.until("<b>42</b>\n\n").await;
    // Each id is the stream's position in its topic: the subscription's start (an event with
    // no data), then one offset per message.
    let epoch = server.live.pubsub().position("room").unwrap().epoch;
    assert_eq!(
        got,
        format!(
            "id: {epoch:08x}-0\nevent: lh-at\ndata: \n\n\
             id: {epoch:08x}-1\ndata: <p id=\"a\" hx-swap-oob=\"true\">one\ndata: two</p>\n\n\
             id: {epoch:08x}-2\nevent: users\ndata: <b>42</b>\n\n"
        )
    );
}

fn server_head_is_sse(head: &str) -> bool {
    let head = head.to_ascii_lowercase();
    head.starts_with("http/1.1 200")
        && head.contains("content-type: text/event-stream")
        && head.contains("cache-control: no-cache")
}

async fn a_quiet_stream_gets_heartbeat_comments(mode: Mode) {
    let server = serve(mode, Limits::default().sse_heartbeat(Duration::from_millis(50))).await;
    let mut stream = Stream::open(server.addr).await;
    stream.id().await;
    stream.until(": heartbeat\n\n").await;
    stream.until(": heartbeat\n\n").await;
}

async fn posts_reach_the_stream_s_session_and_bad_ones_are_refused_with_a_status(mode: Mode) {
    let server = serve(mode, Limits::default().max_message_bytes(1024)).await;
    let mut stream = Stream::open(server.addr).await;
    let id = stream.id().await;
    let json = r#"{"message": "<hi>", "HEADERS": {"HX-Request": "true"}}"#;

    assert_eq!(post(server.addr, &[("LH-Stream", &id), ("Content-Type", "application/json")], json).await.0, 204);
    let got = stream.until("</ul>\n\n").await;
    assert!(got.contains(r#"data: <ul id="log" hx-swap-oob="beforeend">&lt;hi&gt;</ul>"#), "{got:?}");

    // A plain form post works too.
    let form = [("LH-Stream", id.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(post(server.addr, &form, "message=a+%26+b").await.0, 204);
    assert!(stream.until("</ul>\n\n").await.contains("a &amp; b"));

    let forged = id.replace("s1.", "s1.9");
    assert_eq!(post(server.addr, &[("LH-Stream", &forged)], json).await.0, 403);
    assert_eq!(post(server.addr, &[], json).await.0, 403);
    let foreign = [("LH-Stream", id.as_str()), ("Origin", "https://evil.example")];
    assert_eq!(post(server.addr, &foreign, json).await.0, 403);
    assert_eq!(post(server.addr, &[("LH-Stream", &id)], &"x".repeat(2000)).await.0, 413);
    let (status, reason) = post(server.addr, &[("LH-Stream", &id)], "not json").await;
    assert_eq!(status, 400, "{reason}");
    // The stream is still open after the bad posts.
    assert_eq!(post(server.addr, &[("LH-Stream", &id)], json).await.0, 204);
    stream.until("</ul>\n\n").await;

    // Once the stream has ended, its posts are gone.
    drop(stream);
    tokio::time::timeout(WAIT, async {
        while server.left.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the session left when its stream was dropped");
    assert_eq!(post(server.addr, &[("LH-Stream", &id)], json).await.0, 410);
    assert_eq!(server.live.connection_count(), 0);
}

async fn a_reader_that_falls_behind_is_cut_off_and_others_keep_receiving(mode: Mode) {
    let server = serve(mode, Limits::default().outbound_queue(8)).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut slow = Stream::open_over(socket.connect(server.addr).await.unwrap(), server.addr).await;
    let mut fast = Stream::open(server.addr).await;
    fast.id().await;
    until_subscribed(&server.live, 2).await;
    let payload = "x".repeat(32 * 1024);
    for i in 0..2000 {
        server.live.pubsub().publish("room", Frame::text(format!("{i}:{payload}")));
        fast.until(&format!("{i}:")).await;
        if server.live.pubsub().subscriber_count("room") == 1 {
            break;
        }
    }
    assert_eq!(server.live.pubsub().subscriber_count("room"), 1, "the slow reader was cut off");
    // Now it reads at full speed (a 1 KiB window drains the server's buffers 320 bytes a probe).
    socket2::SockRef::from(&slow.tcp).set_recv_buffer_size(4 << 20).unwrap();
    let rest = slow.read_to_end().await;
    assert!(
        rest.contains(&format!("event: lh-close\ndata: {{\"code\":{},", close::SLOW_CONSUMER)),
        "{}",
        &rest[rest.len().saturating_sub(200)..]
    );
}

async fn shutdown_ends_every_stream_with_a_close_event_that_says_reconnect(mode: Mode) {
    let server = serve(mode, Limits::default()).await;
    let mut stream = Stream::open(server.addr).await;
    stream.id().await;
    server.live.shutdown();
    let rest = stream.read_to_end().await;
    assert!(
        rest.ends_with("event: lh-close\ndata: {\"code\":1012,\"reason\":\"server shutting down\"}\n\n"),
        "{rest:?}"
    );
    assert!(close::should_reconnect(1012));
    assert!(server.live.drain(WAIT).await);
}

/// Datastar 1.0: a `@get` with `Datastar-Request` opens a stream whose id arrives as the signal
/// `lhStream`; a `@post` sends every signal back (the id with them, nested ones too) and the
/// event's name in `LH-Event`; fragments arrive as `datastar-patch-elements` events.
async fn a_datastar_page_gets_patch_events_and_its_posts_carry_the_stream_id_as_a_signal(mode: Mode) {
    let server = serve(mode, Limits::default()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut stream = Stream::open_with(tcp, server.addr, "Datastar-Request: true\r\n").await;
    let first = stream.until("\n\n").await;
    let signals = first.split("event: datastar-patch-signals\ndata: signals ").nth(1).expect("the id as a signal");
    let signals: serde_json::Value = serde_json::from_str(signals.trim()).unwrap();
    let id = signals["lhStream"].as_str().expect("lhStream").to_owned();
    until_subscribed(&server.live, 1).await;

    let body = serde_json::json!({"lhStream": id, "message": "<hi>", "form": {"extra": 1}}).to_string();
    let headers = [("Datastar-Request", "true"), ("Content-Type", "application/json"), ("LH-Event", "say")];
    assert_eq!(post(server.addr, &headers, &body).await.0, 204);
    let got = stream.until("&lt;hi&gt;\n\n").await;
    assert!(
        got.ends_with(
            "event: datastar-patch-elements\ndata: selector #log\ndata: mode append\ndata: elements &lt;hi&gt;\n\n"
        ),
        "{got:?}"
    );
    // Without the id, or with a forged one, the post is refused.
    let without = serde_json::json!({"message": "x"}).to_string();
    assert_eq!(post(server.addr, &headers, &without).await.0, 403);
    assert_eq!(post(server.addr, &headers, "[1]").await.0, 400);
}

both!(
    a_stream_carries_ids_named_events_and_multi_line_data,
    a_quiet_stream_gets_heartbeat_comments,
    posts_reach_the_stream_s_session_and_bad_ones_are_refused_with_a_status,
    a_reader_that_falls_behind_is_cut_off_and_others_keep_receiving,
    shutdown_ends_every_stream_with_a_close_event_that_says_reconnect,
    a_datastar_page_gets_patch_events_and_its_posts_carry_the_stream_id_as_a_signal,
);

/// On its own socket a stream has the WebSocket's write deadline: a client that stops reading
/// (the kernel's buffers absorbing what the queue bound would have refused) is cut off once
/// its socket takes no byte for `write_timeout`. (hyper has no write deadline of its own.)
#[tokio::test]
async fn a_stalled_stream_on_its_own_socket_is_cut_off_by_the_write_deadline() {
    let limits = Limits::default().outbound_queue(1 << 20).write_timeout(Duration::from_millis(200));
    let server = serve(Mode::Taken, limits).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stalled = Stream::open_over(socket.connect(server.addr).await.unwrap(), server.addr).await;
    stalled.id().await;
    until_subscribed(&server.live, 1).await;
    let payload = "x".repeat(64 * 1024);
    // Enough to fill the socket's buffers on both sides, far below the queue's bound.
    for _ in 0..200 {
        server.live.pubsub().publish("room", Frame::text(payload.clone()));
    }
    until_subscribed(&server.live, 0).await;
    assert_eq!(server.left.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A browser opens its event stream on a connection that already served the page: the socket
/// is taken after a keep-alive exchange too.
#[tokio::test]
async fn a_stream_opened_on_a_kept_alive_connection_is_taken_over() {
    let server = serve(Mode::Taken, Limits::default()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let req = format!("GET /missing HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&head));
    assert!(String::from_utf8_lossy(&head).contains("content-length: 0"));
    let mut stream = Stream::open_over(tcp, server.addr).await;
    assert!(server_head_is_sse(&stream.head), "{}", stream.head);
    stream.id().await;
    until_subscribed(&server.live, 1).await;
    server.live.pubsub().publish("room", Frame::text("<p>after keep-alive</p>"));
    stream.until("after keep-alive</p>\n\n").await;
}
