//! Benchmark peer: the seed's chat (receive a message, add the server time, send it to every
//! connected client) through the full livehtml stack: an htmx 2 `ws-send` message in, one
//! rendered, escaped HTML fragment out, shared by every subscriber.

use axum::Router;
use livehtml::{
    Config, Context, Event, Fragment, Html, Limits, Live, LiveRoutes, LiveView, Mount, Origins, Session, SessionError,
    ViewError,
};
use maud::html;

/// Messages a client may fall behind before it is cut off. A burst of 1000 messages to every
/// client is the benchmark's heaviest case; a chat app would keep the default (256).
pub const QUEUE: usize = 2048;

struct Chat;

impl Session for Chat {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("chat");
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let name = event.value("name").unwrap_or("Anonymous");
        ctx.broadcast("chat", &[line(name, event.value("message").unwrap_or_default())]);
        Ok(())
    }
}

/// The chat line every client gets: the server's time, the name, the message, escaped.
fn line(name: &str, message: &str) -> Fragment {
    let (h, m, s) = time::OffsetDateTime::now_utc().to_hms();
    let line = html! { li { "[" (format!("{h:02}:{m:02}:{s:02}")) "] " strong { (name) } ": " (message) } };
    Fragment::append("messages", line).tag("ul")
}

/// The live-view benchmark's view (`lhbench views`): a counter, as Dioxus LiveView's example
/// has it; each `inc` event re-renders it and sends the changed region.
struct Counter {
    count: u64,
}

impl LiveView for Counter {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Counter { count: 0 })
    }

    fn render(&self) -> Html {
        html! { p #count { "Count: " (self.count) } button lh-click="inc" { "+1" } }.into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("inc") => self.count += 1,
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

/// The SSE benchmark's sender: `{"name", "message"}` posted, broadcast to every stream.
#[derive(serde::Deserialize)]
struct Post {
    name: Option<String>,
    message: String,
}

/// The peer's routes: the chat socket at `/ws`; the same sessions over Server-Sent Events at
/// `/sse`, with `/post` for the benchmark's sender (it is not a page bound to a stream); the
/// counter live view at `/counter` (its socket at livehtml's default path).
pub fn app() -> (Live, Router) {
    // The load generator's sender sends as fast as it can: no message allowance (no other peer
    // has one either).
    let limits = Limits::default().outbound_queue(QUEUE).no_rate_limit();
    let live = Live::new(Config::default().origins(Origins::Any).limits(limits));
    let pubsub = live.pubsub().clone();
    let views = LiveRoutes::new(&live, ()).route::<Counter>("/counter").limits(limits).build();
    let router = views.router().route("/ws", live.endpoint(|_| Chat)).route("/sse", live.endpoint(|_| Chat)).route(
        "/post",
        axum::routing::post(move |axum::Json(post): axum::Json<Post>| {
            let pubsub = pubsub.clone();
            async move {
                let name = post.name.as_deref().unwrap_or("Anonymous");
                pubsub.publish("chat", livehtml::Frame::fragments(&[line(name, &post.message)]));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    (live, router)
}
