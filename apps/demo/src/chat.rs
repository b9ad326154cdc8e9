//! `/chat`: the FastAPI chat room of the seed article, the livehtml way. The server stamps each
//! message with its local time, stores it in the database (SQLite in the data directory, or
//! PostgreSQL by `DATABASE_URL`) and broadcasts one rendered fragment.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use livehtml::pubsub::{History, PresenceDiff, Recovery};
use livehtml::{Connect, Context, Event, Fragment, Frame, Info, Session, SessionError};
use maud::{Markup, html};
use sqlx::AnyPool;

use crate::AppState;
use crate::layout::page;

const TOPIC: &str = "chat";
/// How many messages the first render shows.
const HISTORY: i64 = 50;

/// What the chat topic keeps for pages that reconnect: a page away for longer, or that missed
/// more, is sent the last [`HISTORY`] messages again instead.
pub(crate) fn history() -> History {
    History::new(200).max_age(std::time::Duration::from_secs(120))
}
/// How many messages a page keeps: older ones leave the page as new ones arrive.
const KEPT: usize = 100;
const MAX_NAME: usize = 40;
const MAX_MESSAGE: usize = 2000;

/// One stored chat message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Server time, `HH:MM:SS`.
    pub time: String,
    /// Who wrote it.
    pub name: String,
    /// What they wrote, as typed.
    pub body: String,
}

/// Chat messages, in the demo's database (every process of a cluster shares it).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Creates the table on `pool` (`postgres`: its dialect) if it is not there.
    pub async fn open(pool: AnyPool, postgres: bool) -> Result<Self, sqlx::Error> {
        let id = if postgres { "BIGSERIAL PRIMARY KEY" } else { "INTEGER PRIMARY KEY AUTOINCREMENT" };
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS chat_messages (id {id}, time TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL)"
        ))
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Stores a message.
    pub async fn insert(&self, message: &Message) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO chat_messages (time, name, body) VALUES ($1, $2, $3)")
            .bind(&message.time)
            .bind(&message.name)
            .bind(&message.body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest messages, oldest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT time, name, body FROM chat_messages ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().rev().map(|(time, name, body)| Message { time, name, body }).collect())
    }
}

fn online_fragment(online: usize) -> Fragment {
    Fragment::inner("online", html! { (online) " online" }).tag("span")
}

/// `/chat?transport=sse` runs the page over Server-Sent Events.
#[derive(Debug, serde::Deserialize)]
struct ChatQuery {
    transport: Option<String>,
}

fn render_message(m: &Message) -> Markup {
    html! { li { "[" (m.time) "] " strong { (m.name) } ": " (m.body) } }
}

struct ChatSession {
    state: AppState,
    /// Who this is: the browser's cookie (a page without one counts alone).
    user: String,
}

impl ChatSession {
    fn new(state: AppState, connect: &Connect) -> Self {
        Self { state, user: crate::user::of_connection(connect) }
    }
}

impl Session for ChatSession {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        if ctx.subscribe(TOPIC) == Recovery::Lost {
            // What the page missed is no longer known whole: it gets the list again.
            let recent = self.state.chat.recent(HISTORY).await?;
            ctx.push(Fragment::inner("messages", html! { @for m in &recent { (render_message(m)) } }).tag("ul"));
        }
        // Online: people, not tabs; a page back within the grace period never left.
        ctx.track(TOPIC, &self.user, "");
        ctx.push(online_fragment(ctx.pubsub().member_count(TOPIC)));
        Ok(())
    }

    async fn on_info(&mut self, ctx: &mut Context, info: Info) -> Result<(), SessionError> {
        if info.get::<PresenceDiff>().is_some() {
            ctx.push(online_fragment(ctx.pubsub().member_count(TOPIC)));
        }
        Ok(())
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), SessionError> {
        post(&self.state, event.value("name"), event.value("message").unwrap_or_default()).await?;
        Ok(())
    }
}

/// Stores a message and shows it on every page (an empty one is ignored).
async fn post(state: &AppState, name: Option<&str>, body: &str) -> Result<(), sqlx::Error> {
    let body = body.trim();
    if body.is_empty() {
        return Ok(());
    }
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("Anonymous");
    let now = time::OffsetDateTime::now_utc().to_offset(state.offset);
    let message = Message {
        time: now.format(time::macros::format_description!("[hour]:[minute]:[second]")).unwrap_or_default(),
        name: name.chars().take(MAX_NAME).collect(),
        body: body.chars().take(MAX_MESSAGE).collect(),
    };
    // Stored before it is shown: a message anyone saw survives a restart.
    state.chat.insert(&message).await?;
    let line = Fragment::append("messages", render_message(&message)).tag("ul");
    state.live.pubsub().publish(TOPIC, Frame::fragments([&line]));
    crate::notifications::mentions(state, &message.name, &message.body);
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
struct PlainPost {
    name: Option<String>,
    message: String,
}

/// The chat form posted by the browser itself (livehtml.js did not load): stored and shown as
/// over the socket, and the page is loaded again with it.
async fn plain_post(
    State(state): State<AppState>,
    form: axum::Form<PlainPost>,
) -> Result<Redirect, (axum::http::StatusCode, &'static str)> {
    post(&state, form.name.as_deref(), &form.message).await.map_err(|e| {
        tracing::error!(error = %e, "storing a chat message");
        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "could not store the message")
    })?;
    Ok(Redirect::to("/chat"))
}

async fn chat_page(
    State(state): State<AppState>,
    Query(query): Query<ChatQuery>,
    headers: HeaderMap,
) -> Result<(HeaderMap, Markup), (axum::http::StatusCode, &'static str)> {
    let set = crate::user::cookie(&headers);
    // Taken before the messages are read: what is published after it reaches the page when it
    // connects (a message stored and published in between may show twice, never not at all).
    let since = state.live.pubsub().position(TOPIC);
    let history = state.chat.recent(HISTORY).await.map_err(|e| {
        tracing::error!(error = %e, "loading chat history");
        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "could not load the chat history")
    })?;
    Ok((
        set,
        page(
            "Chat",
            html! {
                h1 { "Chatting with WebSockets" }
                // The same endpoint serves a WebSocket and, with `?transport=sse`, Server-Sent Events.
                div lh-connect="/ws/chat" lh-transport=[query.transport.as_deref()] lh-since=[since] {
                    p.status { span #online { "" } " · " }
                    // A plain form too: without livehtml.js the browser posts it itself.
                    form #chat-form method="post" action="/chat" lh-send lh-reset="message" {
                        input #name name="name" type="text" placeholder="Your name" value="Anonymous";
                        br;
                        // Enter sends (the demo's script), Shift+Enter makes a new line.
                        textarea #message name="message" autocomplete="off" autofocus rows="4" data-enter-sends {}
                        br;
                        button #send type="submit" { "Send" }
                    }
                    // The page keeps the newest KEPT messages (livehtml.js trims the rest).
                    ul #messages .log lh-stream=(KEPT) {
                        @for m in &history { (render_message(m)) }
                    }
                }
            },
        ),
    ))
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/chat", get(chat_page).post(plain_post))
        .route("/ws/chat", state.live.endpoint(move |connect| ChatSession::new(s.clone(), connect)))
        .with_state(state.clone())
}
