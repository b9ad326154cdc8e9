//! The WebSocket path end to end, over real sockets on 127.0.0.1:0.

mod common;
use common::{Client, next_text, until_subscribed};

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use futures_util::{SinkExt, StreamExt};
use livehtml::protocol::close;
use livehtml::{Config, Context, Event, Fragment, Frame, Html, Inbound, Limits, Live, Origins, Session, SessionError};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// Generous bound on any single wait, so a broken build fails instead of hanging.
const WAIT: Duration = Duration::from_secs(20);

/// A chat room: every message is broadcast to the room as an escaped fragment.
struct Room;

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
}

/// Replies to the sender only.
struct Reply;

impl Session for Reply {
    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        ctx.push(Fragment::inner("out", Html::escape(event.value("message").unwrap_or_default())));
        Ok(())
    }
}

/// Echoes raw frames.
struct RawEcho;

impl Session for RawEcho {
    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }

    async fn on_message(&mut self, ctx: &mut Context, message: Inbound) -> Result<(), SessionError> {
        ctx.push_frame(message.into_frame());
        Ok(())
    }
}

async fn serve(live: &Live, limits: Limits) -> SocketAddr {
    let app: Router = Router::new()
        .route("/room", live.endpoint_with(limits, |_| Room))
        .route("/reply", live.endpoint_with(limits, |_| Reply))
        .route("/raw", live.endpoint_with(limits, |_| RawEcho))
        .merge(live.client_script());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let live = live.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(live.graceful_shutdown(std::future::pending()))
            .await
            .unwrap();
    });
    addr
}

async fn connect(addr: SocketAddr, path: &str) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await.expect("connect");
    ws
}

/// Reads until the server's close frame and returns its code.
async fn close_code(ws: &mut Client) -> Option<u16> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("close in time")
}

fn htmx2(message: &str) -> Message {
    let json = serde_json::json!({"message": message, "HEADERS": {"HX-Request": "true", "HX-Trigger": "chat"}});
    Message::text(json.to_string())
}

#[tokio::test]
async fn two_clients_in_a_room_both_receive_a_broadcast_escaped() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut a = connect(addr, "/room").await;
    let mut b = connect(addr, "/room").await;
    until_subscribed(&live, 2).await;

    a.send(htmx2("<script>alert(1)</script>")).await.unwrap();
    let want = r#"<ul id="log" hx-swap-oob="beforeend">&lt;script&gt;alert(1)&lt;/script&gt;</ul>"#;
    assert_eq!(next_text(&mut a).await, want);
    assert_eq!(next_text(&mut b).await, want);

    // htmx 4's shape reaches the same handler.
    let htmx4 = serde_json::json!({"message": "four", "headers": {"HX-Request": "true", "HX-Source": "form#chat"}});
    b.send(Message::text(htmx4.to_string())).await.unwrap();
    assert!(next_text(&mut a).await.contains(">four<"));
    assert!(next_text(&mut b).await.contains(">four<"));
}

#[tokio::test]
async fn a_reply_goes_to_the_sender_only() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut a = connect(addr, "/reply").await;
    a.send(htmx2("a & b")).await.unwrap();
    assert_eq!(next_text(&mut a).await, r#"<div id="out" hx-swap-oob="innerHTML">a &amp; b</div>"#);
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_while_a_fast_one_keeps_receiving() {
    let live = Live::default();
    let limits = Limits::default().outbound_queue(8).close_timeout(WAIT);
    let addr = serve(&live, limits).await;
    let mut fast = connect(addr, "/room").await;
    let mut slow = connect(addr, "/room").await; // never reads until the end
    until_subscribed(&live, 2).await;

    // 2000 x 32 KiB = 64 MiB: far more than the slow client's socket buffers and queue can hold.
    let payload = "x".repeat(32 * 1024);
    let total = 2000;
    for i in 0..total {
        let frame = Frame::text(format!("{i}:{payload}"));
        live.pubsub().publish("room", frame);
        let got = next_text(&mut fast).await;
        assert!(got.starts_with(&format!("{i}:")), "fast client got every message in order");
    }
    assert_eq!(live.pubsub().subscriber_count("room"), 1, "the slow client was unsubscribed");

    let mut received = 0;
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match slow.next().await {
                Some(Ok(Message::Text(_))) => received += 1,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("slow client saw {e} instead of a close frame"),
                None => return None,
            }
        }
    })
    .await
    .expect("slow client closed in time");
    assert_eq!(code, Some(close::SLOW_CONSUMER));
    assert!(received < total, "slow client was cut off before the end ({received} of {total})");
}

#[tokio::test]
async fn a_client_that_reads_late_still_gets_every_message_in_order() {
    let live = Live::default();
    let addr = serve(&live, Limits::default().outbound_queue(1024)).await;
    let mut late = connect(addr, "/room").await;
    until_subscribed(&live, 1).await;

    // 300 x 32 KiB: the socket's buffers fill long before the end, so most of it is written by
    // the connection's task as the client drains it, after the publisher gave up.
    let payload = "y".repeat(32 * 1024);
    for i in 0..300 {
        assert_eq!(live.pubsub().publish("room", Frame::text(format!("{i}:{payload}"))), 1);
    }
    for i in 0..300 {
        let got = next_text(&mut late).await;
        assert!(got.starts_with(&format!("{i}:")) && got.len() == payload.len() + format!("{i}:").len());
    }
}

#[tokio::test]
async fn a_publish_from_a_plain_thread_is_written_in_order() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut ws = connect(addr, "/room").await;
    until_subscribed(&live, 1).await;
    let pubsub = live.pubsub().clone();
    std::thread::spawn(move || {
        for i in 0..100 {
            assert_eq!(pubsub.publish("room", Frame::text(i.to_string())), 1);
        }
    })
    .join()
    .unwrap();
    for i in 0..100 {
        assert_eq!(next_text(&mut ws).await, i.to_string());
    }
}

#[tokio::test]
async fn an_oversized_message_gets_1009_and_others_are_still_served() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut big = connect(addr, "/reply").await;
    let mut other = connect(addr, "/reply").await;
    big.send(htmx2(&"x".repeat(70 * 1024))).await.unwrap();
    assert_eq!(close_code(&mut big).await, Some(close::TOO_BIG));
    other.send(htmx2("still here")).await.unwrap();
    assert!(next_text(&mut other).await.contains("still here"));
    // A message just under the limit is fine.
    other.send(htmx2(&"y".repeat(60 * 1024))).await.unwrap();
    assert!(next_text(&mut other).await.len() > 60 * 1024);
}

#[tokio::test]
async fn malformed_events_close_with_a_clear_reason_and_binary_with_1003() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    for (msg, code) in [
        (Message::text("not json"), close::POLICY),
        (Message::text("[1,2]"), close::POLICY),
        (Message::text(r#"{"a":{"b":"c"}}"#), close::POLICY),
        (Message::binary(vec![1u8, 2, 3]), close::UNSUPPORTED),
    ] {
        let mut ws = connect(addr, "/reply").await;
        ws.send(msg).await.unwrap();
        assert_eq!(close_code(&mut ws).await, Some(code));
    }
    let mut ws = connect(addr, "/reply").await;
    ws.send(htmx2("ok")).await.unwrap();
    assert!(next_text(&mut ws).await.contains(">ok<"));
}

#[tokio::test]
async fn raw_echo_returns_text_and_binary_verbatim() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut ws = connect(addr, "/raw").await;
    ws.send(Message::text("héllo <b>")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "héllo <b>");
    ws.send(Message::binary(vec![0u8, 255, 7])).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], &[0, 255, 7]),
        other => panic!("expected binary, got {other:?}"),
    }
}

async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> Result<u16, u16> {
    let mut req = format!("ws://{addr}/reply").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", HeaderValue::from_str(o).unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => Ok(resp.status().as_u16()),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn origins_are_checked_at_upgrade() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    assert_eq!(upgrade_status(addr, Some("http://evil.example")).await, Err(403));
    assert_eq!(upgrade_status(addr, Some(&format!("http://{addr}"))).await, Ok(101));
    assert_eq!(upgrade_status(addr, None).await, Ok(101));

    let live = Live::new(Config::default().origins(Origins::Allow(vec!["https://app.example".into()])));
    let addr = serve(&live, Limits::default()).await;
    assert_eq!(upgrade_status(addr, Some("https://app.example")).await, Ok(101));
    assert_eq!(upgrade_status(addr, Some("https://other.example")).await, Err(403));
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    let live = Live::default();
    let addr = serve(&live, Limits::default().ping_interval(Duration::from_millis(50))).await;
    // This client answers pings only while it reads: it does not read until the server gave up.
    let mut silent = connect(addr, "/reply").await;
    let mut alive = connect(addr, "/reply").await;
    // The live client keeps reading (and so answering pings) for several intervals.
    let keep_alive = tokio::spawn(async move {
        let mut pings = 0;
        while pings < 5 {
            match tokio::time::timeout(WAIT, alive.next()).await.unwrap() {
                Some(Ok(Message::Ping(_))) => pings += 1,
                other => panic!("live client got {other:?}"),
            }
        }
        alive.send(htmx2("still alive")).await.unwrap();
        next_text(&mut alive).await
    });
    tokio::time::timeout(WAIT, async {
        while live.connection_count() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("silent client dropped");
    assert_eq!(close_code(&mut silent).await, Some(close::HEARTBEAT_TIMEOUT));
    assert!(keep_alive.await.unwrap().contains("still alive"));
}

#[tokio::test]
async fn shutdown_closes_live_connections_with_1012_and_drains() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut a = connect(addr, "/room").await;
    let mut b = connect(addr, "/reply").await;
    until_subscribed(&live, 1).await;
    live.shutdown();
    assert_eq!(close_code(&mut a).await, Some(close::RESTART));
    assert_eq!(close_code(&mut b).await, Some(close::RESTART));
    assert!(live.drain(WAIT).await, "all connections closed within the drain time");
    assert_eq!(live.connection_count(), 0);
}

/// Sends a raw HTTP request (`{addr}` is replaced) and returns the status line, the head and
/// the body; the request must ask the server to close the connection.
async fn raw_http(addr: SocketAddr, request: &str) -> (String, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.replace("{addr}", &addr.to_string()).as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp.as_str(), ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn requests_that_are_not_websocket_upgrades_are_refused_with_a_reason() {
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let (status, _, body) = raw_http(addr, "GET /reply HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(body.contains("upgrade"), "{body}");
    let old_version = "GET /reply HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
                       Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    // Another version is 426 with the one spoken here (RFC 6455 section 4.4).
    let (status, head, body) = raw_http(addr, old_version).await;
    assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-version: 13"), "{head}");
    assert!(body.contains("13"), "{body}");
    let no_key = "GET /reply HTTP/1.1\r\nHost: {addr}\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let (status, _, _) = raw_http(addr, no_key).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // The RFC 6455 example key gets the RFC's accept value.
    let good = "GET /reply HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
                Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(good.replace("{addr}", &addr.to_string()).as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
}

/// One masked client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode];
    match u16::try_from(payload.len()) {
        Ok(n @ 0..=125) => frame.push(0x80 | n as u8),
        Ok(n) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn a_protocol_error_closes_with_1002_after_the_replies_already_due() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let upgrade = format!(
        "GET /raw HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(tcp.read_u8().await.unwrap());
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));

    // A valid message and a frame with a reserved opcode, in one segment: read together.
    let mut bytes = client_frame(0x1, b"hello");
    bytes.extend(client_frame(0x5, b""));
    tcp.write_all(&bytes).await.unwrap();

    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await.expect("closed in time").unwrap();
    assert!(got.starts_with(b"\x81\x05hello"), "the echo comes first: {got:?}");
    let close = &got[7..];
    assert_eq!((close[0], u16::from_be_bytes([close[2], close[3]])), (0x88, 1002), "{got:?}");
}

#[tokio::test]
async fn messages_and_a_close_sent_with_the_upgrade_are_all_answered_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The request and two messages in one write: hyper reads the frames along with the head,
    // and the connection must start from them.
    let mut bytes = format!(
        "GET /raw HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    bytes.extend(client_frame(0x1, b"first"));
    bytes.extend(client_frame(0x1, b"second"));
    bytes.extend(client_frame(0x8, &1000u16.to_be_bytes()));
    tcp.write_all(&bytes).await.unwrap();

    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await.expect("closed in time").unwrap();
    let body = &got[got.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4..];
    assert!(got.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got));
    assert!(body.starts_with(b"\x81\x05first\x81\x06second"), "both echoes, in order: {body:?}");
    assert_eq!(&body[15..], b"\x88\x02\x03\xe8", "then the close is answered: {body:?}");
}

/// Completes an upgrade to `path` over `tcp` and returns it, reading nothing past the response.
async fn upgraded(mut tcp: TcpStream, addr: SocketAddr, path: &str) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(tcp.read_u8().await.unwrap());
    }
    assert!(response.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&response));
    tcp
}

/// Autobahn cases 7.3.2, 7.3.6 and 7.5.1: a close frame with a 1-byte payload, with a 124-byte
/// reason (a control frame over 125 bytes), and with a reason that is not UTF-8. The server
/// answers with the right code and then closes the TCP connection itself (RFC 6455 section
/// 7.1.1), without waiting for a client that has already sent its close. With a close timeout of
/// a minute, only a server that closes first ends these reads in time.
#[tokio::test]
async fn after_failing_a_close_the_server_closes_tcp_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = Live::default();
    let addr = serve(&live, Limits::default().close_timeout(Duration::from_secs(60))).await;
    let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
    bad_utf8.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64");
    let mut long_reason = 1000u16.to_be_bytes().to_vec();
    long_reason.extend_from_slice(&[b'*'; 124]);
    for (case, payload, code) in [
        ("7.3.2", vec![0x03], close::PROTOCOL_ERROR),
        ("7.3.6", long_reason, close::PROTOCOL_ERROR),
        ("7.5.1", bad_utf8, close::INVALID_DATA),
    ] {
        let mut tcp = upgraded(TcpStream::connect(addr).await.unwrap(), addr, "/raw").await;
        tcp.write_all(&client_frame(0x8, &payload)).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "case {case}: the server did not close the TCP connection");
        assert!(got.len() >= 4 && got[0] == 0x88, "case {case}: a close frame first: {got:?}");
        assert_eq!(u16::from_be_bytes([got[2], got[3]]), code, "case {case}");
    }
}

/// A client that half-closes (shuts down its sending side) still gets the replies due, and then
/// the server's end of the connection.
#[tokio::test]
async fn a_half_closed_client_gets_its_replies_and_the_connection_ends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = Live::default();
    let addr = serve(&live, Limits::default()).await;
    let mut tcp = upgraded(TcpStream::connect(addr).await.unwrap(), addr, "/raw").await;
    tcp.write_all(&client_frame(0x1, b"last words")).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await.expect("the server ends the connection").unwrap();
    assert!(got.starts_with(b"\x81\x0alast words"), "{got:?}");
    tokio::time::timeout(WAIT, async {
        while live.connection_count() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the connection is released");
}

/// A client whose socket takes no bytes at all is closed by the write deadline, even while the
/// queue's bound (set high here) and the heartbeat (an hour) would never close it: what the
/// kernel holds for it is bounded in time.
#[tokio::test]
async fn a_socket_that_takes_no_bytes_is_closed_by_the_write_deadline() {
    let live = Live::default();
    let limits = Limits::default()
        .write_timeout(Duration::from_millis(200))
        .outbound_queue(100_000)
        .ping_interval(Duration::from_secs(3600));
    let addr = serve(&live, limits).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let stalled = upgraded(socket.connect(addr).await.unwrap(), addr, "/room").await;
    let mut reader = connect(addr, "/room").await;
    until_subscribed(&live, 2).await;

    // More than any socket buffers hold, in frames of 64 KiB.
    let frame = Frame::text("z".repeat(64 * 1024));
    for _ in 0..256 {
        live.pubsub().publish("room", frame.clone());
        if live.pubsub().subscriber_count("room") < 2 {
            break;
        }
        // The reader keeps up, so the stalled client is the only one left behind.
        assert_eq!(next_text(&mut reader).await.len(), 64 * 1024);
    }
    until_subscribed(&live, 1).await;
    tokio::time::timeout(WAIT, async {
        while live.connection_count() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the stalled connection is released");
    // The reader is still served.
    live.pubsub().publish("room", Frame::text("after"));
    assert_eq!(next_text(&mut reader).await, "after");
    drop(stalled);
}

/// Pushes 256 messages of 64 KiB in one pass, whatever the event (each its own frame: the
/// fragments of `Context::push` would go out together as one message).
struct Flood;

impl Session for Flood {
    async fn on_event(&mut self, ctx: &mut Context, _: Event) -> Result<(), SessionError> {
        let block = "x".repeat(64 * 1024);
        for _ in 0..256 {
            ctx.push_frame(livehtml::Frame::fragments(&[Fragment::inner("flood", Html::escape(&block))]));
        }
        Ok(())
    }
}

/// A page that asks for more than it reads, in one pass of its own session, is closed as a
/// slow consumer once it reads again: it gets what was written, then the close frame.
#[tokio::test]
async fn a_session_flooding_its_own_page_closes_it_as_a_slow_consumer() {
    let live = Live::default();
    let app: Router = Router::new().route("/flood", live.endpoint_with(Limits::default().outbound_queue(8), |_| Flood));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut ws = connect(addr, "/flood").await;
    ws.send(htmx2("go")).await.unwrap();
    // Not reading for a while: the server's writes stall and its queue fills.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut texts = 0;
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => texts += 1,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => panic!("after {texts} messages: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the close came in time (got {texts} messages)"));
    assert_eq!(code, Some(close::SLOW_CONSUMER), "after {texts} messages");
}
