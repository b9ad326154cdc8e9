//! `/lobby`: the htmx game-lobby example. Players join with a name and toggle ready; each change
//! is one message that updates three regions: the player list, the status line and the log.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use livehtml::pubsub::PresenceDiff;
use livehtml::{Connect, Context, Event, Fragment, Info, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::page;

const TOPIC: &str = "lobby";
/// Where a process tells the others who is ready: `1` or `0`, a tab, the player's key.
const READY: &str = "lobby:ready";
const MAX_NAME: usize = 24;

/// Who is ready. The players themselves are the lobby topic's presence: one per browser (its
/// tabs are one player), still there while a page reconnects.
#[derive(Debug, Default)]
pub struct Lobby {
    ready: Mutex<HashMap<String, bool>>,
}

#[derive(Debug, Clone)]
struct Player {
    name: String,
    ready: bool,
}

impl Lobby {
    fn ready(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The players, in the order they joined.
    fn players(&self, live: &livehtml::Live) -> Vec<Player> {
        let ready = self.ready();
        let members = live.pubsub().members(TOPIC);
        members
            .into_iter()
            .map(|m| Player { ready: ready.get(&m.key).copied().unwrap_or(false), name: m.meta })
            .collect()
    }
}

/// Keeps this process's idea of who is ready in step with every other process's toggles.
pub(crate) fn follow(state: &AppState) {
    let lobby = state.lobby.clone();
    crate::follow(state.live.pubsub(), READY, move |tapped| {
        let livehtml::pubsub::Tapped::Info(info) = tapped else { return };
        let Some((ready, key)) = info.get::<String>().and_then(|t| t.split_once('\t')) else { return };
        lobby.ready().insert(key.to_owned(), ready == "1");
    });
}

fn player_list(players: &[Player]) -> Markup {
    html! {
        @for p in players {
            div.player.ready[p.ready] { (p.name) " (" (if p.ready { "Ready" } else { "Not Ready" }) ")" }
        }
    }
}

fn status(players: &[Player]) -> String {
    let n = players.len();
    let noun = if n == 1 { "player" } else { "players" };
    match n {
        0 => "Waiting for players...".to_owned(),
        _ if players.iter().all(|p| p.ready) => format!("{n} {noun} connected — all ready, starting!"),
        _ => format!("{n} {noun} connected — waiting for all to be ready"),
    }
}

/// The three fragments of one lobby update; `log` is escaped like everything else.
fn update(players: &[Player], log: &str) -> [Fragment; 3] {
    [
        Fragment::inner("player-list", player_list(players)),
        Fragment::inner("game-status", html! { (status(players)) }),
        Fragment::append("chat-log", html! { p { em { (log) } } }),
    ]
}

struct LobbySession {
    state: AppState,
    /// This browser (see `user`).
    user: String,
    joined: bool,
}

impl LobbySession {
    /// The ready toggle, for this page once it has joined.
    fn controls(ctx: &mut Context) {
        ctx.push(Fragment::inner("controls", html! { button #ready type="button" lh-send="ready" { "Toggle ready" } }));
    }
}

impl Session for LobbySession {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe(TOPIC);
        // A page of a browser that is a player already (another tab, or this one come back).
        if ctx.pubsub().members(TOPIC).iter().any(|m| m.key == self.user) {
            let name = ctx.pubsub().members(TOPIC).into_iter().find(|m| m.key == self.user).map(|m| m.meta);
            ctx.track(TOPIC, &self.user, &name.unwrap_or_default());
            self.joined = true;
            Self::controls(ctx);
        }
        let players = self.state.lobby.players(&self.state.live);
        ctx.push(Fragment::inner("player-list", player_list(&players)));
        ctx.push(Fragment::inner("game-status", html! { (status(&players)) }));
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        match event.name.as_deref() {
            Some("join") if !self.joined => {
                let name: String = event.value("name").unwrap_or_default().trim().chars().take(MAX_NAME).collect();
                // A name to show, not an identity (that is the key tracked): the connection's
                // count in its process, without the process's tag in front.
                let name = if name.is_empty() { format!("Player {}", ctx.id() & u64::from(u32::MAX)) } else { name };
                self.joined = true;
                // The join form turns into the ready toggle for this page only; every page
                // hears of the new player from the topic's presence.
                Self::controls(ctx);
                ctx.track(TOPIC, &self.user, &name);
            }
            Some("ready") if self.joined => {
                let ready = {
                    let mut ready = self.state.lobby.ready();
                    let entry = ready.entry(self.user.clone()).or_default();
                    *entry = !*entry;
                    *entry
                };
                // Every process of a cluster keeps who is ready (see `follow`).
                ctx.pubsub().publish_text_info(READY, format!("{}\t{}", u8::from(ready), self.user));
                let players = self.state.lobby.players(&self.state.live);
                let name = ctx.pubsub().members(TOPIC).into_iter().find(|m| m.key == self.user).map(|m| m.meta);
                let log = format!("{} is {}.", name.unwrap_or_default(), if ready { "ready" } else { "not ready" });
                ctx.broadcast(TOPIC, &update(&players, &log));
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_info(&mut self, ctx: &mut Context, info: Info) -> Result<(), SessionError> {
        let Some(diff) = info.get::<PresenceDiff>() else { return Ok(()) };
        // Told to every page: each renders its own update (a player who left is forgotten).
        for left in &diff.leaves {
            self.state.lobby.ready().remove(&left.key);
        }
        let players = self.state.lobby.players(&self.state.live);
        for joined in &diff.joins {
            ctx.push_frame(livehtml::Frame::fragments(&update(
                &players,
                &format!("{} has joined the lobby.", joined.meta),
            )));
        }
        for left in &diff.leaves {
            ctx.push_frame(livehtml::Frame::fragments(&update(
                &players,
                &format!("{} has left the lobby.", left.meta),
            )));
        }
        Ok(())
    }
}

async fn lobby_page(State(state): State<AppState>, headers: HeaderMap) -> (HeaderMap, Markup) {
    let players = state.lobby.players(&state.live);
    let markup = page(
        "Lobby",
        html! {
            h1 { "Game lobby" }
            div lh-connect="/ws/lobby" {
                p.status { "Status: " }
                div #controls {
                    form #join lh-send="join" {
                        input name="name" placeholder="Your name" autocomplete="off" required;
                        button type="submit" { "Join" }
                    }
                }
                h2 { "Players" }
                div #player-list { (player_list(&players)) }
                div #game-status { (status(&players)) }
                h2 { "Log" }
                div #chat-log {}
            }
        },
    );
    (crate::user::cookie(&headers), markup)
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/lobby", get(lobby_page))
        .route(
            "/ws/lobby",
            state.live.endpoint(move |connect: &Connect| LobbySession {
                state: s.clone(),
                user: crate::user::of_connection(connect),
                joined: false,
            }),
        )
        .with_state(state.clone())
}
