//! Long-polling: a session opened by `GET ?lh-poll=1`, polled for batches of what it sends,
//! posted to like an SSE stream; a lost answer sent again; bounded like every connection; ended
//! when nobody polls, or by the server with a close the page acts on. Real sockets on
//! 127.0.0.1:0.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use livehtml::{Context, Event, Fragment, Frame, Html, Limits, Live, Session, SessionError};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{WAIT, until_subscribed};

/// Joins "room"; says back what the page says.
struct Room;

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        ctx.push(Fragment::inner("echo", Html::escape(event.value("say").unwrap_or_default())));
        Ok(())
    }
}

async fn serve(limits: Limits) -> (SocketAddr, Live) {
    let live = Live::default();
    let app: axum::Router = axum::Router::new().route("/live", live.endpoint_with(limits, |_| Room));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = live.clone().graceful_shutdown(std::future::pending());
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await.unwrap() });
    (addr, live)
}

/// One HTTP/1.1 request; the status and the body.
async fn request(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut resp)).await.expect("an answer in time").unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

async fn open(addr: SocketAddr) -> String {
    let (status, body) = request(addr, "GET", "/live?lh-poll=1&client=lh", "", "").await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["id"].as_str().expect("a signed id").to_owned()
}

async fn poll(addr: SocketAddr, id: &str, ack: u64) -> (u16, Value) {
    let (status, body) = request(addr, "GET", &format!("/live?lh-poll={id}&lh-ack={ack}"), "", "").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn texts(answer: &Value) -> Vec<String> {
    answer["messages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_poll_gets_what_the_session_sends_in_order_with_its_positions() {
    let (addr, live) = serve(Limits::default()).await;
    let id = open(addr).await;
    until_subscribed(&live, 1).await;
    let start = live.pubsub().position("room").unwrap();
    // The first batch: where the topic starts for this page.
    let (status, first) = poll(addr, &id, 0).await;
    assert_eq!(status, 200);
    assert_eq!((first["batch"].as_u64(), texts(&first)), (Some(1), vec![format!("<!--lh:{start}-->")]));

    // A poll gets everything queued, in order, each message with its position in the topic
    // (it waits for the first if there is none yet).
    let waiting = tokio::spawn({
        let id = id.clone();
        async move { poll(addr, &id, 1).await }
    });
    for i in 1..=3 {
        live.pubsub().publish("room", Frame::text(format!("<p>{i}</p>")));
    }
    let (_, second) = waiting.await.unwrap();
    assert_eq!(second["batch"].as_u64(), Some(2));
    let mut got = texts(&second);
    let mut ack = 2;
    while got.len() < 3 {
        let (_, more) = poll(addr, &id, ack).await;
        ack = more["batch"].as_u64().unwrap();
        got.extend(texts(&more));
    }
    let expected: Vec<String> = (1..=3)
        .map(|i| format!("<!--lh:{}--><p>{i}</p>", livehtml::protocol::Position { offset: i, ..start }))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn posts_reach_the_session_and_an_unacknowledged_batch_is_sent_again() {
    let (addr, live) = serve(Limits::default()).await;
    let id = open(addr).await;
    until_subscribed(&live, 1).await;
    let (_, first) = poll(addr, &id, 0).await;
    assert_eq!(first["batch"].as_u64(), Some(1));

    let headers = format!("LH-Stream: {id}\r\nContent-Type: application/json\r\n");
    let (status, _) = request(addr, "POST", "/live", &headers, r#"{"say":"<b>hi</b>"}"#).await;
    assert_eq!(status, 204);
    let (_, second) = poll(addr, &id, 1).await;
    assert_eq!(texts(&second), [r#"<div id="echo" hx-swap-oob="innerHTML">&lt;b&gt;hi&lt;/b&gt;</div>"#]);
    // The page never got batch 2 (its answer was lost): it acknowledges 1 and gets 2 again.
    let (_, again) = poll(addr, &id, 1).await;
    assert_eq!(again, second);

    // A forged id is refused; posts without one too.
    let (status, _) = poll(addr, "v1.forged", 0).await;
    assert_eq!(status, 403);
    let (status, _) = request(addr, "POST", "/live", "Content-Type: application/json\r\n", "{}").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_empty_poll_answers_after_the_hold_and_a_session_nobody_polls_ends() {
    let limits = Limits::default().poll_hold(Duration::from_millis(100)).poll_idle(Duration::from_millis(300));
    let (addr, live) = serve(limits).await;
    let id = open(addr).await;
    until_subscribed(&live, 1).await;
    let (_, first) = poll(addr, &id, 0).await;
    let (status, empty) = poll(addr, &id, 1).await;
    assert_eq!((status, empty["batch"].as_u64(), texts(&empty).len()), (200, first["batch"].as_u64(), 0));

    // Nobody polls: the session ends, and a late poll is told to start again.
    until_subscribed(&live, 0).await;
    assert_eq!(poll(addr, &id, 1).await.0, 410);
}

#[tokio::test]
async fn a_page_that_does_not_keep_up_and_a_shutdown_are_closes_the_page_acts_on() {
    let (addr, live) = serve(Limits::default().outbound_queue(4)).await;
    let slow = open(addr).await;
    until_subscribed(&live, 1).await;
    for i in 0..10 {
        live.pubsub().publish("room", Frame::text(format!("<p>{i}</p>")));
    }
    let (_, answer) = poll(addr, &slow, 0).await;
    assert_eq!(answer["close"]["code"].as_u64(), Some(1013), "{answer}");

    let fine = open(addr).await;
    until_subscribed(&live, 1).await;
    let (_, first) = poll(addr, &fine, 0).await;
    let waiting = tokio::spawn(async move { poll(addr, &fine, 1).await });
    live.shutdown();
    let (_, last) = waiting.await.unwrap();
    assert_eq!(last["close"]["code"].as_u64(), Some(1012), "{last} after {first}");
}

/// Reads one HTTP/1.1 response from a kept-alive connection: the status and the body.
async fn response(tcp: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, tcp.read_exact(&mut byte)).await.expect("an answer in time").unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|n| n.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tcp.read_exact(&mut body).await.unwrap();
    (head[9..12].parse().unwrap(), String::from_utf8(body).unwrap())
}

/// Issue 26: one client opened 20,000 long-poll sessions over four kept-alive connections (no
/// connection limit applies to requests). A session opened by a request counts as a new
/// connection against the listener's per-address rate, as a WebSocket's connection does.
#[tokio::test]
async fn long_poll_sessions_count_against_the_per_address_connection_rate() {
    let live = Live::default();
    let app: axum::Router = axum::Router::new().route("/live", live.endpoint(|_| Room));
    // Two new connections a second, bursts of five: the connection itself takes one.
    let listener = livehtml::Listener::bind("127.0.0.1:0").await.unwrap().connection_rate(2, 5);
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { livehtml::serve(listener, app).await.unwrap() });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let req = format!("GET /live?lh-poll=1&client=lh HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        statuses.push(response(&mut tcp).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "the burst, then refused on the same connection");
}
