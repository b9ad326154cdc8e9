//! Presence: members, not connections (two tabs of one user are one member), joins and leaves
//! sent to the topic's sessions as diffs, and a reconnect within the grace period is no leave.
//! Real sockets on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use livehtml::pubsub::PresenceDiff;
use livehtml::{Context, Event, Fragment, Html, Info, Live, Session, SessionError};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

/// Joins "room" as the user its URL names; shows every diff it hears.
struct Room {
    user: String,
}

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        ctx.track("room", &self.user, &format!("name of {}", self.user));
        Ok(())
    }

    async fn on_info(&mut self, ctx: &mut Context, info: Info) -> Result<(), SessionError> {
        if let Some(diff) = info.get::<PresenceDiff>() {
            let names = |m: &[livehtml::pubsub::Member]| m.iter().map(|m| m.meta.clone()).collect::<Vec<_>>().join(",");
            let text = format!("+{} -{}", names(&diff.joins), names(&diff.leaves));
            ctx.push(Fragment::inner("diff", Html::escape(&text)));
        }
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

async fn serve(grace: Duration) -> (SocketAddr, Live) {
    let live = Live::default();
    live.pubsub().set_presence_grace(grace);
    let app: axum::Router = axum::Router::new()
        .route("/live", live.endpoint(|connect| Room { user: connect.uri().query().unwrap_or_default().to_owned() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, live)
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(addr: SocketAddr, user: &str) -> Client {
    tokio_tungstenite::connect_async(format!("ws://{addr}/live?{user}")).await.unwrap().0
}

/// The next diff the page is shown.
async fn diff(page: &mut Client) -> String {
    loop {
        let next = tokio::time::timeout(WAIT, page.next()).await.expect("a diff in time");
        let Some(Ok(Message::Text(text))) = next else { panic!("a text message; got {next:?}") };
        if let Some(rest) = text.strip_prefix(r#"<div id="diff" hx-swap-oob="innerHTML">"#) {
            return rest.trim_end_matches("</div>").to_owned();
        }
    }
}

fn keys(live: &Live) -> Vec<String> {
    live.pubsub().members("room").into_iter().map(|m| m.key).collect()
}

#[tokio::test]
async fn two_tabs_of_one_user_are_one_member_and_the_last_one_closing_is_a_leave() {
    let (addr, live) = serve(Duration::from_millis(100)).await;
    let mut watcher = ws(addr, "w").await;
    assert_eq!(diff(&mut watcher).await, "+name of w -");
    let tab1 = ws(addr, "ann").await;
    assert_eq!(diff(&mut watcher).await, "+name of ann -");
    let tab2 = ws(addr, "ann").await;
    let bob = ws(addr, "bob").await;
    // Ann's second tab was no join: the next diff is Bob's.
    assert_eq!(diff(&mut watcher).await, "+name of bob -");
    assert_eq!(keys(&live), ["w", "ann", "bob"]);

    drop(tab1);
    drop(bob);
    // Bob left (after the grace period); Ann did not, her second tab is open.
    assert_eq!(diff(&mut watcher).await, "+ -name of bob");
    assert_eq!(keys(&live), ["w", "ann"]);
    drop(tab2);
    assert_eq!(diff(&mut watcher).await, "+ -name of ann");
    assert_eq!(keys(&live), ["w"]);
}

#[tokio::test]
async fn a_page_back_within_the_grace_period_never_left() {
    let (addr, live) = serve(Duration::from_secs(30)).await;
    let mut watcher = ws(addr, "w").await;
    assert_eq!(diff(&mut watcher).await, "+name of w -");
    let page = ws(addr, "ann").await;
    assert_eq!(diff(&mut watcher).await, "+name of ann -");
    drop(page);
    // The server sees the socket go, and Ann comes back on a new one.
    tokio::time::timeout(WAIT, async {
        while live.pubsub().subscriber_count("room") != 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(keys(&live), ["w", "ann"], "still present during the grace period");
    let _back = ws(addr, "ann").await;
    // No leave and no join for Ann: the next diff the watcher sees is Bob's.
    let _bob = ws(addr, "bob").await;
    assert_eq!(diff(&mut watcher).await, "+name of bob -");
    assert_eq!(keys(&live), ["w", "ann", "bob"]);
}
