//! examples/quickstart/src/main.rs: a chat every open tab shares, on http://127.0.0.1:3000
use axum::{Router, routing::get};
use livehtml::{Context, Event, Fragment, Live, Session, SessionError};
use maud::{Markup, html};

/// One per connected page: its fields would be that page's state.
struct Chat;

impl Session for Chat {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("chat");
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        // maud escapes the text: a typed <script> shows up as text.
        let line = html! { li { (event.value("message").unwrap_or_default()) } };
        ctx.broadcast("chat", &[Fragment::append("messages", line).tag("ul")]);
        Ok(())
    }
}

async fn page() -> Markup {
    html! {
        script src=(livehtml::SCRIPT_URL) defer {}
        div lh-connect="/ws/chat" {
            form lh-send lh-reset="message" { input name="message"; button { "Send" } }
            ul #messages {}
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let live = Live::default();
    let app = Router::new()
        .route("/", get(page))
        .route("/ws/chat", live.endpoint(|_connect| Chat))
        .merge(live.client_script());
    let listener = livehtml::Listener::bind("127.0.0.1:3000").await?;
    livehtml::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await
}
