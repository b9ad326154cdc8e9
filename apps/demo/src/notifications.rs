//! `/notifications`: the seed's notification feed on plain htmx 2 (`sse-swap`): a badge count
//! and a toast list, fed by the form on the page (a plain `hx-post`) and by chat messages that
//! mention `@name`. The page keeps at most [`KEPT`] toasts: each new one removes the one that
//! many before it, by an out-of-band delete in the same event.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use livehtml::pubsub::{History, Recovery};
use livehtml::{Context, Event, Frame, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::htmx_page;

const TOPIC: &str = "notifications";
/// Toasts a page keeps.
pub const KEPT: u64 = 50;
const MAX_TEXT: usize = 200;

/// What the topic keeps for feeds that reconnect (two messages a notification): a feed away
/// for longer is sent its toasts again.
pub(crate) fn history() -> History {
    History::new(2 * KEPT as usize).max_age(std::time::Duration::from_secs(120))
}

/// How many notifications were sent, and the last [`KEPT`] of them (what a feed that missed
/// too much is sent again).
#[derive(Debug, Default)]
pub struct Feed {
    count: AtomicU64,
    recent: Mutex<VecDeque<(u64, String)>>,
}

fn toast(n: u64, text: &str) -> Markup {
    html! { div.toast id=(format!("toast-{n}")) role="alert" { (text) } }
}

/// Sends a notification to every open feed: the new count and the toast.
pub(crate) fn notify(state: &AppState, text: &str) {
    let text: String = text.chars().take(MAX_TEXT).collect();
    // Numbered and published under one lock: feeds see the toasts in their order.
    let mut recent = state.feed.recent.lock().unwrap_or_else(|e| e.into_inner());
    let n = state.feed.count.fetch_add(1, Ordering::Relaxed) + 1;
    let new = html! {
        (toast(n, &text))
        @if n > KEPT {
            div id=(format!("toast-{}", n - KEPT)) hx-swap-oob="delete" {}
        }
    };
    state.live.pubsub().publish(TOPIC, Frame::event("notification-count", n.to_string()));
    state.live.pubsub().publish(TOPIC, Frame::event("new-notification", new.into_string()));
    recent.push_back((n, text));
    if recent.len() > KEPT as usize {
        recent.pop_front();
    }
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
        // A feed that reconnects (its `Last-Event-ID`) gets the toasts it missed, replayed; one
        // that missed more than the topic keeps gets the whole list again.
        let recovery = ctx.subscribe(TOPIC);
        let recent = self.state.feed.recent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let count = recent.back().map_or(0, |(n, _)| *n);
        ctx.push_frame(Frame::event("notification-count", count.to_string()));
        if recovery == Recovery::Lost {
            let list = html! {
                div #toast-container hx-swap-oob="innerHTML" {
                    @for (n, text) in recent.iter().rev() { (toast(*n, text)) }
                }
            };
            ctx.push_frame(Frame::event("new-notification", list.into_string()));
        }
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
