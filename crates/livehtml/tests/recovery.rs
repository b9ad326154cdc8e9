//! No silent gap: a page that reconnects says where it was in its topics (an SSE stream's
//! `Last-Event-ID`, livehtml.js's `lh-since`) and gets exactly what it missed, in order, before
//! anything new; or, when that is not known whole, its session sends it everything again and
//! livehtml.js is told. Real sockets on 127.0.0.1:0.

mod common;

use std::net::SocketAddr;

use futures_util::StreamExt;
use livehtml::protocol::Position;
use livehtml::pubsub::{History, Recovery};
use livehtml::{Context, Event, Fragment, Frame, Html, Live, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use common::{WAIT, until_subscribed};

/// Joins "room"; a page whose missed messages are not known whole is sent the room again.
struct Room;

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        if ctx.subscribe("room") == Recovery::Lost {
            ctx.push(Fragment::inner("room", Html::escape("everything again")));
        }
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

async fn serve(history: usize) -> (SocketAddr, Live) {
    let live = Live::default();
    live.pubsub().keep_history("room", History::new(history));
    let app: axum::Router = axum::Router::new().route("/live", live.endpoint(|_| Room));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, live)
}

fn message(i: usize) -> Frame {
    Frame::text(format!("<li id=\"m\" hx-swap-oob=\"beforeend\">{i}</li>"))
}

/// The text of every message the page gets, until (and with) one containing `last`.
async fn texts_until(client: &mut Client, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, client.next()).await.expect("a message in time");
        let Some(Ok(Message::Text(text))) = next else { panic!("a text message; got {next:?} after {got:?}") };
        let done = text.contains(last);
        got.push(text.to_string());
        if done {
            return got;
        }
    }
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws(addr: SocketAddr, query: &str) -> Client {
    tokio_tungstenite::connect_async(format!("ws://{addr}/live?{query}")).await.unwrap().0
}

#[tokio::test]
async fn a_livehtml_page_back_over_a_websocket_gets_what_it_missed_in_order_then_what_is_new() {
    let (addr, live) = serve(100).await;
    let mut page = ws(addr, "client=lh").await;
    let start = live.pubsub().position("room").unwrap();
    // Told where it starts, as a comment that swaps nothing.
    assert_eq!(texts_until(&mut page, "<!--").await, [format!("<!--lh:{start}-->")]);
    live.pubsub().publish("room", message(1));
    let seen = texts_until(&mut page, ">1<").await;
    let at = Position { offset: 1, ..start };
    assert_eq!(seen, [format!("<!--lh:{at}--><li id=\"m\" hx-swap-oob=\"beforeend\">1</li>")]);
    drop(page);
    until_subscribed(&live, 0).await;

    for i in 2..=11 {
        live.pubsub().publish("room", message(i));
    }
    let mut back = ws(addr, &format!("client=lh&lh-since={at}")).await;
    until_subscribed(&live, 1).await;
    live.pubsub().publish("room", message(12));
    let got = texts_until(&mut back, ">12<").await;
    let replayed: Vec<String> =
        got.iter().filter(|t| t.contains("<li")).map(|t| t[t.find("-->").unwrap() + 3..].to_owned()).collect();
    let expected: Vec<String> = (2..=12).map(|i| format!("<li id=\"m\" hx-swap-oob=\"beforeend\">{i}</li>")).collect();
    assert_eq!(replayed, expected, "each missed message once, in order, before the new one");
    assert!(got.iter().any(|t| t == r#"{"lh":"recovered","replayed":10}"#), "{got:?}");
    assert!(!got.iter().any(|t| t.contains("everything again")));
}

#[tokio::test]
async fn a_page_whose_gap_is_older_than_the_history_is_sent_everything_and_told() {
    let (addr, live) = serve(3).await;
    let start = live.pubsub().position("room").unwrap();
    for i in 1..=5 {
        live.pubsub().publish("room", message(i));
    }
    let mut back = ws(addr, &format!("client=lh&lh-since={start}")).await;
    let got = texts_until(&mut back, "resynced").await;
    let now = live.pubsub().position("room").unwrap();
    assert_eq!(
        got,
        [
            format!("<!--lh:{now}-->"),
            r#"<div id="room" hx-swap-oob="innerHTML">everything again</div>"#.to_owned(),
            r#"{"lh":"resynced"}"#.to_owned(),
        ],
        "no partial replay: the whole room, then the notice"
    );
    // A position from another history (a restarted server) is a resync too.
    let mut other = ws(addr, "client=lh&lh-since=00000000-3").await;
    assert!(texts_until(&mut other, "resynced").await.iter().any(|t| t.contains("everything again")));
}

/// A plain htmx socket reconnects to the URL its page was rendered with: its claim does not
/// move, so any gap is a resync (the page may show some of it already), never a replay.
#[tokio::test]
async fn a_plain_htmx_page_back_with_its_first_render_position_is_resynced_not_replayed() {
    let (addr, live) = serve(100).await;
    let rendered = live.pubsub().position("room").unwrap();
    let mut first = ws(addr, &format!("lh-since={rendered}")).await;
    until_subscribed(&live, 1).await;
    live.pubsub().publish("room", message(1));
    // Nothing between the render and the connection: no resync.
    assert_eq!(texts_until(&mut first, ">1<").await, [r#"<li id="m" hx-swap-oob="beforeend">1</li>"#]);
    drop(first);
    until_subscribed(&live, 0).await;
    live.pubsub().publish("room", message(2));
    let mut back = ws(addr, &format!("lh-since={rendered}")).await;
    let got = texts_until(&mut back, "everything again").await;
    assert_eq!(got, [r#"<div id="room" hx-swap-oob="innerHTML">everything again</div>"#], "no replay, no notice");
}

#[tokio::test]
async fn a_plain_htmx_page_gets_plain_html() {
    let (addr, live) = serve(10).await;
    let mut page = ws(addr, "").await;
    until_subscribed(&live, 1).await;
    live.pubsub().publish("room", message(1));
    assert_eq!(texts_until(&mut page, ">1<").await, [r#"<li id="m" hx-swap-oob="beforeend">1</li>"#]);
}

/// An SSE stream, read raw through its chunked framing.
struct Stream {
    tcp: TcpStream,
    text: String,
}

impl Stream {
    async fn open(addr: SocketAddr, last_event_id: Option<&str>) -> Self {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let last = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        let req = format!("GET /live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{last}\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        Self { tcp, text: String::new() }
    }

    /// Reads until the stream's text holds `needle`; returns everything read so far.
    async fn until(&mut self, needle: &str) -> String {
        let read = async {
            while !self.text.contains(needle) {
                let mut buf = [0u8; 16 * 1024];
                let n = self.tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended before {needle:?}: {:?}", self.text);
                self.text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            }
        };
        tokio::time::timeout(WAIT, read).await.unwrap_or_else(|_| panic!("{needle:?} in {:?}", self.text));
        self.text.clone()
    }

    /// The `id:` of the last event read.
    fn last_id(&self) -> String {
        let at = self.text.rfind("\nid: ").expect("an id") + 5;
        self.text[at..].lines().next().unwrap().to_owned()
    }
}

/// The data of each `data:` line, in order.
fn data_lines(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| d.starts_with("<li")).collect()
}

#[tokio::test]
async fn an_sse_stream_back_with_last_event_id_is_replayed_what_it_missed() {
    let (addr, live) = serve(100).await;
    let mut stream = Stream::open(addr, None).await;
    until_subscribed(&live, 1).await;
    live.pubsub().publish("room", message(1));
    stream.until(">1<").await;
    let seen = stream.last_id();
    let start = live.pubsub().position("room").unwrap();
    assert_eq!(seen, start.to_string(), "the id is the stream's position in its topic");
    drop(stream);
    until_subscribed(&live, 0).await;

    for i in 2..=4 {
        live.pubsub().publish("room", message(i));
    }
    let mut back = Stream::open(addr, Some(&seen)).await;
    until_subscribed(&live, 1).await;
    live.pubsub().publish("room", message(5));
    let text = back.until(">5<").await;
    let expected: Vec<String> = (2..=5).map(|i| format!("<li id=\"m\" hx-swap-oob=\"beforeend\">{i}</li>")).collect();
    assert_eq!(data_lines(&text), expected);
    assert!(!text.contains("everything again") && !text.contains("\"lh\""), "plain htmx is not told: {text}");
    assert_eq!(back.last_id(), live.pubsub().position("room").unwrap().to_string());

    // An id the history cannot answer (htmx's counter from elsewhere): the room again.
    let mut lost = Stream::open(addr, Some("17")).await;
    assert!(lost.until("everything again").await.contains("data: <div id=\"room\""));
}
