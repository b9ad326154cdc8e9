//! What an outside probe found: one client flooding the chat (3,910 messages a second) was never
//! closed, about 1,500 a second were broadcast, and every other client's round trip went from
//! 0.02 s to 3.1 s. A page's messages now have an allowance. Real sockets on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livehtml::{Context, Event, Fragment, Html, Limits, Live, Session, SessionError};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(10);

/// Says back what it is sent, and counts what it handled.
struct Echo(Arc<AtomicUsize>);

impl Session for Echo {
    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        ctx.push(Fragment::inner("echo", Html::escape(event.value("say").unwrap_or_default())));
        Ok(())
    }
}

async fn serve(handled: Arc<AtomicUsize>) -> SocketAddr {
    let live = Live::default();
    let limits = Limits::default().rate_limit(20, 40);
    let app: axum::Router =
        axum::Router::new().route("/live", live.endpoint_with(limits, move |_| Echo(handled.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_flooding_page_is_held_to_its_allowance_then_closed_and_others_are_served() {
    let handled = Arc::new(AtomicUsize::new(0));
    let addr = serve(handled.clone()).await;
    let (mut flood, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    let (mut other, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    for i in 0..2_000 {
        if flood.send(Message::text(format!(r#"{{"say":"{i}"}}"#))).await.is_err() {
            break;
        }
    }
    // The flood is closed with 1008, having had no more than its burst (and what its pace
    // refilled meanwhile) handled.
    let closed = close_frame(&mut flood).await;
    assert_eq!((closed.code, closed.reason.as_str()), (CloseCode::Policy, "rate limit"));
    let got = handled.load(Ordering::Relaxed);
    assert!((40..200).contains(&got), "{got} of 2,000 handled");

    // Another page is served as ever.
    other.send(Message::text(r#"{"say":"hello"}"#)).await.unwrap();
    let answer = tokio::time::timeout(WAIT, other.next()).await.unwrap().unwrap().unwrap();
    assert!(answer.to_text().unwrap().contains("hello"));
}

#[tokio::test]
async fn a_page_within_its_allowance_is_never_cut_off() {
    let handled = Arc::new(AtomicUsize::new(0));
    let addr = serve(handled.clone()).await;
    let (mut page, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    // 60 messages, each answered before the next: a person's pace, far under 20 a second
    // sustained only thanks to the round trips, but over the 40 of the burst in total.
    for i in 0..60 {
        page.send(Message::text(format!(r#"{{"say":"{i}"}}"#))).await.unwrap();
        let answer = tokio::time::timeout(WAIT, page.next()).await.unwrap().unwrap().unwrap();
        assert!(answer.to_text().unwrap().contains(&format!(">{i}<")), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(handled.load(Ordering::Relaxed), 60);
}

/// The allowance is set per endpoint (above) and for a set of live views.
#[tokio::test]
async fn live_views_have_the_allowance_their_routes_set() {
    use livehtml::LiveRoutes;
    use livehtml::view::{LiveView, Mount, ViewError};
    struct Clicks;
    impl LiveView for Clicks {
        type State = ();
        async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
            Ok(Clicks)
        }
        fn render(&self) -> Html {
            maud::html! { button #b lh-click="c" { "click" } }.into()
        }
        async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), ViewError> {
            Ok(())
        }
    }
    let live = Live::default();
    let views =
        LiveRoutes::new(&live, ()).route::<Clicks>("/clicks").limits(Limits::default().rate_limit(5, 10)).build();
    let app: axum::Router = views.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let page = views.render_page("/clicks").await.unwrap();
    let token =
        page.split("/_livehtml/live?t=").nth(1).and_then(|s| s.split('"').next()).unwrap().replace("&amp;", "&");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/_livehtml/live?t={token}")).await.unwrap();
    // 150: over twice the set burst of 10, under the default's burst of 200.
    for _ in 0..150 {
        if ws.send(Message::text(r#"{"HEADERS":{"LH-Event":"c"}}"#)).await.is_err() {
            break;
        }
    }
    let closed = close_frame(&mut ws).await;
    assert_eq!((closed.code, closed.reason.as_str()), (CloseCode::Policy, "rate limit"));
}

/// The close frame the server sends `ws`, within the wait.
async fn close_frame(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(frame) = message {
                return frame;
            }
        }
        None
    });
    closed.await.expect("closed in time").expect("a close frame")
}
