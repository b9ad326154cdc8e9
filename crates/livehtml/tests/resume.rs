//! Live views that survive a dropped connection: the same page reconnecting within the grace
//! period gets the same view back, state and all; after it, a fresh mount sent whole; another
//! page's token never gets someone else's view. Real sockets on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Html, Live, LiveRoutes};
use maud::html;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Counter {
    count: i64,
}

impl LiveView for Counter {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Counter { count: 0 })
    }

    fn render(&self) -> Html {
        html! { output #count { (self.count) } button lh-click="inc" { "+1" } }.into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("inc") => self.count += 1,
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    live: Live,
}

async fn serve(grace: Duration) -> Server {
    let live = Live::default();
    let views = LiveRoutes::new(&live, ()).route::<Counter>("/counter").grace(grace).build();
    let app: axum::Router = views.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, live }
}

impl Server {
    /// A fresh render of the counter page: the socket URL its token is in.
    async fn page(&self) -> String {
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET /counter HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut page = String::new();
        tcp.read_to_string(&mut page).await.unwrap();
        let token = page.split("/_livehtml/live?t=").nth(1).and_then(|s| s.split('"').next()).expect("a token");
        format!("/_livehtml/live?t={token}&client=lh")
    }

    async fn connect(&self, path: &str) -> Client {
        tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr)).await.expect("connect").0
    }

    /// Waits until the server has seen every socket go (and its view left).
    async fn until_no_connections(&self) {
        tokio::time::timeout(WAIT, async {
            while self.live.connection_count() > 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the server saw the socket go");
    }
}

async fn next_text(ws: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn inc(ws: &mut Client) -> String {
    let event = serde_json::json!({"HEADERS": {"HX-Request": "true", "LH-Event": "inc"}});
    ws.send(Message::text(event.to_string())).await.unwrap();
    next_text(ws).await
}

fn count(text: &str, n: i64) -> bool {
    text.contains(r#"<output id="count""#) && text.contains(&format!(">{n}</output>"))
}

#[tokio::test]
async fn a_page_that_reconnects_within_the_grace_period_gets_its_view_back() {
    let server = serve(Duration::from_secs(30)).await;
    let url = server.page().await;
    let mut ws = server.connect(&url).await;
    for n in 1..=3 {
        let got = inc(&mut ws).await;
        assert!(count(&got, n), "{got}");
    }
    drop(ws);
    server.until_no_connections().await;

    // The same page comes back: nothing changed meanwhile, so only the notice, and the count
    // goes on from 3.
    let mut ws = server.connect(&format!("{url}&resume=1")).await;
    assert_eq!(next_text(&mut ws).await, r#"{"lh":"resumed"}"#);
    let got = inc(&mut ws).await;
    assert!(count(&got, 4), "{got}");

    // Another page (another render, another token) never gets this view: it starts at 0.
    let other = server.page().await;
    let mut theirs = server.connect(&other).await;
    let got = inc(&mut theirs).await;
    assert!(count(&got, 1), "{got}");
}

#[tokio::test]
async fn after_the_grace_period_the_view_is_mounted_anew_and_sent_whole() {
    let grace = Duration::from_millis(50);
    let server = serve(grace).await;
    let url = server.page().await;
    let mut ws = server.connect(&url).await;
    assert!(count(&inc(&mut ws).await, 1));
    assert!(count(&inc(&mut ws).await, 2));
    drop(ws);
    server.until_no_connections().await;
    // The grace period is a duration: it has to pass.
    tokio::time::sleep(grace * 4).await;

    let mut ws = server.connect(&format!("{url}&resume=1")).await;
    let whole = next_text(&mut ws).await;
    assert!(whole.starts_with(r#"<div id="lh-view" hx-swap-oob="innerMorph">"#), "{whole}");
    assert!(count(&whole, 0), "a fresh mount: {whole}");
    assert_eq!(next_text(&mut ws).await, r#"{"lh":"resynced"}"#);
}

#[tokio::test]
async fn a_plain_reconnect_of_the_same_url_resumes_too() {
    // htmx 4 reopens the same URL without saying anything: the token alone finds the view.
    let server = serve(Duration::from_secs(30)).await;
    let url = server.page().await;
    let mut ws = server.connect(&url).await;
    assert!(count(&inc(&mut ws).await, 1));
    drop(ws);
    server.until_no_connections().await;
    let mut ws = server.connect(&url).await;
    assert_eq!(next_text(&mut ws).await, r#"{"lh":"resumed"}"#);
    assert!(count(&inc(&mut ws).await, 2));
}

#[tokio::test]
async fn a_page_back_before_its_old_socket_is_seen_gone_waits_for_it_and_gets_its_view() {
    let server = serve(Duration::from_secs(30)).await;
    let url = server.page().await;
    let mut old = server.connect(&url).await;
    assert!(count(&inc(&mut old).await, 1));
    assert!(count(&inc(&mut old).await, 2));
    // The page's network dropped and it came back; the server has not seen the old socket go.
    let mut new = server.connect(&format!("{url}&resume=1")).await;
    tokio::time::timeout(WAIT, async {
        while server.live.connection_count() != 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("both sockets open");
    drop(old);
    assert_eq!(next_text(&mut new).await, r#"{"lh":"resumed"}"#);
    assert!(count(&inc(&mut new).await, 3));
}
