//! An event livehtml.js numbered (`LH-Ref`) is answered once handled, in the same message as
//! what its handler pushed, and says when it was refused: what ends the page's loading state.

mod common;

use axum::Router;
use common::next_text;
use futures_util::SinkExt;
use livehtml::{Context, Event, Fragment, Html, Live, Session, SessionError};
use tokio_tungstenite::tungstenite::Message;

struct Notes;

impl Session for Notes {
    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let text = event.value("note").unwrap_or_default();
        if text.is_empty() {
            ctx.refuse("a note needs <text>");
            return Ok(());
        }
        ctx.push(Fragment::append("notes", Html::escape(text)));
        Ok(())
    }
}

async fn serve(live: &Live) -> std::net::SocketAddr {
    let app: Router = Router::new().route("/notes", live.endpoint(|_| Notes));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_numbered_event_is_answered_after_what_it_changed() {
    let live = Live::default();
    let addr = serve(&live).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/notes")).await.unwrap();
    let send = |note: &str, r: &str| {
        Message::text(format!(r#"{{"note":"{note}","HEADERS":{{"LH-Client":"1","LH-Ref":"{r}"}}}}"#))
    };
    ws.send(send("hi", "7")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, r#"<div id="notes" hx-swap-oob="beforeend">hi</div><!--lh-reply 7-->"#);
    ws.send(send("", "8")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "<!--lh-refused 8 a+note+needs+%3Ctext%3E-->");
    // Not numbered (plain htmx): no reply; and its refusal does not stick to the next reply.
    ws.send(Message::text(r#"{"note":"plain","HEADERS":{"HX-Request":"true"}}"#)).await.unwrap();
    assert_eq!(next_text(&mut ws).await, r#"<div id="notes" hx-swap-oob="beforeend">plain</div>"#);
    ws.send(Message::text(r#"{"note":"","HEADERS":{"HX-Request":"true"}}"#)).await.unwrap();
    ws.send(send("again", "9")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, r#"<div id="notes" hx-swap-oob="beforeend">again</div><!--lh-reply 9-->"#);
}
