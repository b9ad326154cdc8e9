//! `/dashboard`: the seed's live dashboard on plain htmx 2 (`hx-ext="sse"`, `sse-swap`): cards
//! for open connections (every transport), chat messages in the last minute, uptime and memory,
//! pushed by the server once a second and when a chat message arrives.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use livehtml::{Context, Event, Frame, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::htmx_page;

/// Where each process tells the others how many connections it holds: its name, a space, the
/// count.
const COUNTS: &str = "dashboard:counts";
/// A process's count older than this is of a process that is gone.
const STALE: Duration = Duration::from_secs(3);

/// This process's dashboards' topic: the cards show the whole cluster's counts, and this
/// process's uptime and memory.
fn topic(state: &AppState) -> String {
    format!("dashboard:{}", state.node)
}

/// What the cards count that the server does not know otherwise.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// When recent chat messages arrived (the last minute's).
    messages: Mutex<VecDeque<Instant>>,
    /// Each process's open connections, and when it said so.
    connections: Mutex<std::collections::HashMap<String, (usize, Instant)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { started: Instant::now(), messages: Mutex::default(), connections: Mutex::default() }
    }
}

impl Metrics {
    /// Counts a chat message.
    pub fn message(&self) {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.push_back(Instant::now());
    }

    /// Every process's open connections (this one's as it is now).
    fn connections(&self, node: &str, here: usize) -> usize {
        let mut counts = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        counts.retain(|_, (_, at)| at.elapsed() < STALE);
        here + counts.iter().filter(|(n, _)| n.as_str() != node).map(|(_, (c, _))| c).sum::<usize>()
    }

    fn last_minute(&self) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        while messages.front().is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            messages.pop_front();
        }
        messages.len()
    }
}

/// The cards' current values, one named event each.
fn cards(state: &AppState) -> [Frame; 4] {
    let metric = |value: String| html! { span.metric { (value) } }.into_string();
    let uptime = state.metrics.started.elapsed().as_secs();
    let uptime = format!("{}:{:02}:{:02}", uptime / 3600, uptime / 60 % 60, uptime % 60);
    [
        Frame::event(
            "active-users",
            metric(state.metrics.connections(&state.node, state.live.connection_count()).to_string()),
        ),
        Frame::event("messages", metric(state.metrics.last_minute().to_string())),
        Frame::event("uptime", metric(uptime)),
        Frame::event("memory", metric(memory())),
    ]
}

/// The process's resident memory, from /proc (Linux).
fn memory() -> String {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()));
    pages.map_or_else(|| "n/a".to_owned(), |p| format!("{:.1} MB", p as f64 * 4096.0 / 1e6))
}

/// Pushes every card to every open dashboard.
pub(crate) fn publish(state: &AppState) {
    for card in cards(state) {
        state.live.pubsub().publish(&topic(state), card);
    }
}

/// Counts the cluster's chat messages as they pass, and hears the other processes' counts.
pub(crate) fn follow(state: &AppState) {
    let s = state.clone();
    crate::follow(state.live.pubsub(), "chat", move |tapped| {
        if matches!(tapped, livehtml::pubsub::Tapped::Frame(_)) {
            s.metrics.message();
            publish(&s);
        }
    });
    let metrics = state.metrics.clone();
    crate::follow(state.live.pubsub(), COUNTS, move |tapped| {
        let livehtml::pubsub::Tapped::Info(info) = tapped else { return };
        let Some((node, count)) = info.get::<String>().and_then(|t| t.split_once(' ')) else { return };
        if let Ok(count) = count.parse() {
            metrics
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node.to_owned(), (count, Instant::now()));
        }
    });
}

/// Pushes the cards once a second while the app runs.
pub(crate) fn spawn_clock(state: AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            if state.live.is_shutting_down() {
                return;
            }
            let here = state.live.connection_count();
            state.live.pubsub().publish_text_info(COUNTS, format!("{} {here}", state.node));
            if state.live.pubsub().subscriber_count(&topic(&state)) > 0 {
                publish(&state);
            }
        }
    });
}

struct Dashboard {
    state: AppState,
}

impl Session for Dashboard {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe(&topic(&self.state));
        // A new page does not wait for the next tick; its own count includes itself.
        for card in cards(&self.state) {
            ctx.push_frame(card);
        }
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }
}

async fn dashboard_page(State(state): State<AppState>) -> Markup {
    let card = |title: &str, event: &str| {
        html! {
            div.card {
                h3 { (title) }
                div id=(event) sse-swap=(event) hx-swap="innerHTML" { "Loading…" }
            }
        }
    };
    htmx_page(
        &state.assets,
        "Dashboard",
        html! {
            h1 { "Live dashboard" }
            p.status { "Plain htmx 2 with its SSE extension: each card swaps its own named event." }
            div.cards hx-ext="sse" sse-connect="/sse/dashboard" {
                (card("Open connections", "active-users"))
                (card("Chat messages, last minute", "messages"))
                (card("Uptime", "uptime"))
                (card("Memory", "memory"))
            }
        },
    )
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/dashboard", get(dashboard_page))
        .route("/sse/dashboard", state.live.endpoint(move |_| Dashboard { state: s.clone() }))
        .with_state(state.clone())
}
