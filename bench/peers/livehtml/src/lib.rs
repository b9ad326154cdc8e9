//! Benchmark peer: the seed's chat (receive a message, add the server time, send it to every
//! connected client) through the full livehtml stack: an htmx 2 `ws-send` message in, one
//! rendered, escaped HTML fragment out, shared by every subscriber.

use axum::Router;
use livehtml::{Config, Context, Event, Fragment, Limits, Live, Origins, Session, SessionError};
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
        let now = time::OffsetDateTime::now_utc();
        let (h, m, s) = now.to_hms();
        let name = event.value("name").unwrap_or("Anonymous");
        let message = event.value("message").unwrap_or_default();
        let line = html! { li { "[" (format!("{h:02}:{m:02}:{s:02}")) "] " strong { (name) } ": " (message) } };
        ctx.broadcast("chat", &[Fragment::append("messages", line).tag("ul")]);
        Ok(())
    }
}

/// The peer's routes: the chat socket at `/ws`.
pub fn app() -> (Live, Router) {
    let live = Live::new(Config::default().origins(Origins::Any).limits(Limits::default().outbound_queue(QUEUE)));
    let router = Router::new().route("/ws", live.endpoint(|_| Chat));
    (live, router)
}
