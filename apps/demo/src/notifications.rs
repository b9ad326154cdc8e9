//! `/notifications`: the seed's notification feed on plain htmx 2 (`sse-swap`): a badge count
//! and a toast list, fed by the form on the page (a plain `hx-post`) and by chat messages that
//! mention `@name`. The page keeps at most [`KEPT`] toasts: each new one removes the one that
//! many before it, by an out-of-band delete in the same event.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use livehtml::pubsub::{History, Recovery};
use livehtml::{Context, Event, Frame, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::htmx_page;

const TOPIC: &str = "notifications";
/// Toasts a page keeps.
pub const KEPT: i64 = 50;
const MAX_TEXT: usize = 200;

/// What the topic keeps for feeds that reconnect (two messages a notification): a feed away
/// for longer is sent its toasts again.
pub(crate) fn history() -> History {
    History::new(2 * KEPT as usize).max_age(std::time::Duration::from_secs(120))
}

/// Numbers this process's notifications and publishes them in that order (the numbers come
/// from the database, which every process of a cluster shares).
#[derive(Debug, Default)]
pub struct Feed {
    publishing: tokio::sync::Mutex<()>,
}

fn toast(n: i64, text: &str) -> Markup {
    html! { div.toast id=(format!("toast-{n}")) role="alert" { (text) } }
}

/// Sends a notification to every open feed: the new count and the toast.
pub(crate) async fn notify(state: &AppState, text: &str) -> Result<(), sqlx::Error> {
    let text: String = text.chars().take(MAX_TEXT).collect();
    // Numbered and published under one lock: this process's feeds see its toasts in order.
    let _publishing = state.feed.publishing.lock().await;
    let n = state.shared.notify(&text).await?;
    let new = html! {
        (toast(n, &text))
        @if n > KEPT {
            div id=(format!("toast-{}", n - KEPT)) hx-swap-oob="delete" {}
        }
    };
    state.live.pubsub().publish(TOPIC, Frame::event("notification-count", n.to_string()));
    state.live.pubsub().publish(TOPIC, Frame::event("new-notification", new.into_string()));
    Ok(())
}

/// Chat messages that mention `@name` notify.
pub(crate) fn mentions(state: &AppState, from: &str, body: &str) {
    let mentioned: Vec<&str> = body
        .split_whitespace()
        .filter_map(|w| w.strip_prefix('@'))
        .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    let texts: Vec<String> =
        mentioned.iter().map(|name| format!("{from} mentioned @{name} in the chat: {body}")).collect();
    if texts.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for text in texts {
            if let Err(e) = notify(&state, &text).await {
                tracing::error!(error = %e, "could not store a notification");
            }
        }
    });
}

struct FeedSession {
    state: AppState,
}

impl Session for FeedSession {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        // A feed that reconnects (its `Last-Event-ID`) gets the toasts it missed, replayed; one
        // that missed more than the topic keeps gets the whole list again.
        let recovery = ctx.subscribe(TOPIC);
        let recent = self.state.shared.notifications(KEPT).await?;
        let count = recent.last().map_or(0, |(n, _)| *n);
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
    // The latest toasts are on the page from the start: it shows them without htmx too (after
    // its plain form posted), and the feed adds what comes next.
    let recent = state.shared.notifications(KEPT).await.unwrap_or_default();
    let count = recent.last().map_or(0, |(n, _)| *n);
    htmx_page(
        &state.assets,
        "Notifications",
        html! {
            div hx-ext="sse" sse-connect="/sse/notifications" {
                h1 { "Notifications " span #notif-count.badge sse-swap="notification-count" hx-swap="innerHTML" { (count) } }
                // A plain form too: where htmx did not load, it posts and comes back to this page.
                form #notify method="post" action="/notifications"
                    hx-post="/notifications" hx-swap="none" data-reset-after {
                    input name="text" placeholder="Send a notification to every open feed" required;
                    button type="submit" { "Notify" }
                }
                div #toast-container sse-swap="new-notification" hx-swap="afterbegin" {
                    @for (n, text) in recent.iter().rev() { (toast(*n, text)) }
                }
            }
        },
    )
}

#[derive(Debug, serde::Deserialize)]
struct Notify {
    text: String,
}

/// htmx's post gets `204`; a plain form's (htmx did not load) is sent back to the page, which
/// shows the notification among the latest.
async fn post_notification(State(state): State<AppState>, headers: HeaderMap, form: axum::Form<Notify>) -> Response {
    let text = form.text.trim();
    if text.is_empty() {
        return (StatusCode::BAD_REQUEST, "a notification needs text").into_response();
    }
    if let Err(e) = notify(&state, text).await {
        tracing::error!(error = %e, "could not store a notification");
        return (StatusCode::INTERNAL_SERVER_ERROR, "could not store the notification").into_response();
    }
    // A browser's own form submission navigates; htmx's and scripts' posts do not.
    if headers.get("sec-fetch-mode").is_some_and(|m| m == "navigate") {
        Redirect::to("/notifications").into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/notifications", get(feed_page).post(post_notification))
        .route("/sse/notifications", state.live.endpoint(move |_| FeedSession { state: s.clone() }))
        .with_state(state.clone())
}
