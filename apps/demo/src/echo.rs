//! `/echo`: the Tornado echo example, the livehtml way.

use axum::Router;
use axum::routing::get;
use livehtml::{Context, Event, Fragment, Live, Session, SessionError};
use maud::{Markup, html};

use crate::layout::page;

struct Echo;

impl Session for Echo {
    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let text = event.value("message").unwrap_or_default();
        if text.is_empty() {
            return Ok(());
        }
        ctx.push(Fragment::append(
            "chatbox",
            html! {
                p.sent { "You sent: " (text) }
                p.echoed { "Server echoed: " (text) }
            },
        ));
        Ok(())
    }
}

async fn echo_page() -> Markup {
    page(
        "Echo",
        html! {
            h1 { "Echo" }
            div lh-connect="/ws/echo" {
                p.status { "Status: " }
                div #chatbox {}
                form #conversation lh-send lh-reset="message" {
                    input #message name="message" autocomplete="off" autofocus;
                    button type="submit" { "Send" }
                }
            }
        },
    )
}

pub(crate) fn routes(live: &Live) -> Router {
    Router::new().route("/echo", get(echo_page)).route("/ws/echo", live.endpoint(|_| Echo))
}
