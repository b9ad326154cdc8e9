//! `/notifications`: the seed's notification feed on plain htmx 2 (`sse-swap`): a badge count
//! and a toast list, fed by the form on the page (a plain `hx-post`) and by chat messages that
//! mention `@name`. The page keeps at most [`KEPT`] toasts: each new one removes the one that
//! many before it, by an out-of-band delete in the same event.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use livehtml::{Context, Event, Frame, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::htmx_page;

const TOPIC: &str = "notifications";
/// Toasts a page keeps.
pub const KEPT: u64 = 50;
const MAX_TEXT: usize = 200;

/// How many notifications were sent.
#[derive(Debug, Default)]
pub struct Feed {
    count: AtomicU64,
}

/// Sends a notification to every open feed: the new count and the toast.
pub(crate) fn notify(state: &AppState, text: &str) {
    let n = state.feed.count.fetch_add(1, Ordering::Relaxed) + 1;
    let text: String = text.chars().take(MAX_TEXT).collect();
    let toast = html! {
        div.toast id=(format!("toast-{n}")) role="alert" { (text) }
        @if n > KEPT {
            div id=(format!("toast-{}", n - KEPT)) hx-swap-oob="delete" {}
        }
    };
    state.live.pubsub().publish(TOPIC, Frame::event("notification-count", n.to_string()));
    state.live.pubsub().publish(TOPIC, Frame::event("new-notification", toast.into_string()));
}

/// Chat messages that mention `@name` notify.
pub(crate) fn mentions(state: &AppState, from: &str, body: &str) {
    let mentioned: Vec<&str> = body
        .split_whitespace()
        .filter_map(|w| w.strip_prefix('@'))
        .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    for name in mentioned {
        notify(state, &format!("{from} mentioned @{name} in the chat: {body}"));
    }
}

struct FeedSession {
    state: AppState,
}

impl Session for FeedSession {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe(TOPIC);
        let count = self.state.feed.count.load(Ordering::Relaxed);
        ctx.push_frame(Frame::event("notification-count", count.to_string()));
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

async fn feed_page(State(state): State<AppState>) -> Markup {
    let count = state.feed.count.load(Ordering::Relaxed);
    htmx_page(
        "Notifications",
        html! {
            div hx-ext="sse" sse-connect="/sse/notifications" {
                h1 { "Notifications " span #notif-count.badge sse-swap="notification-count" hx-swap="innerHTML" { (count) } }
                form #notify hx-post="/notifications" hx-swap="none" hx-on--after-request="this.reset()" {
                    input name="text" placeholder="Send a notification to every open feed" required;
                    button type="submit" { "Notify" }
                }
                div #toast-container sse-swap="new-notification" hx-swap="afterbegin" {}
            }
        },
    )
}

#[derive(Debug, serde::Deserialize)]
struct Notify {
    text: String,
}

async fn post_notification(State(state): State<AppState>, form: axum::Form<Notify>) -> StatusCode {
    let text = form.text.trim();
    if text.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    notify(&state, text);
    StatusCode::NO_CONTENT
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/notifications", get(feed_page).post(post_notification))
        .route("/sse/notifications", state.live.endpoint(move |_| FeedSession { state: s.clone() }))
        .with_state(state.clone())
}
