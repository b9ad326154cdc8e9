//! `/lobby`: the htmx game-lobby example. Players join with a name and toggle ready; each change
//! is one message that updates three regions: the player list, the status line and the log.

use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use livehtml::{Context, Event, Fragment, Session, SessionError};
use maud::{Markup, html};

use crate::AppState;
use crate::layout::page;

const TOPIC: &str = "lobby";
const MAX_NAME: usize = 24;

/// The players currently in the lobby.
#[derive(Debug, Default)]
pub struct Lobby {
    players: Mutex<Vec<Player>>,
}

#[derive(Debug, Clone)]
struct Player {
    conn: u64,
    name: String,
    ready: bool,
}

impl Lobby {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Player>) -> R) -> R {
        f(&mut self.players.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn snapshot(&self) -> Vec<Player> {
        self.with(|p| p.clone())
    }
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
    joined: bool,
}

impl LobbySession {
    fn broadcast(&self, ctx: &Context, log: &str) {
        let players = self.state.lobby.snapshot();
        ctx.broadcast(TOPIC, &update(&players, log));
    }
}

impl Session for LobbySession {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe(TOPIC);
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let conn = ctx.id();
        match event.name.as_deref() {
            Some("join") if !self.joined => {
                let name: String = event.value("name").unwrap_or_default().trim().chars().take(MAX_NAME).collect();
                let name = if name.is_empty() { format!("Player {conn}") } else { name };
                self.state.lobby.with(|p| p.push(Player { conn, name: name.clone(), ready: false }));
                self.joined = true;
                // The join form turns into the ready toggle for this page only.
                ctx.push(Fragment::inner(
                    "controls",
                    html! {
                        button #ready type="button" lh-send="ready" { "Toggle ready" }
                    },
                ));
                self.broadcast(ctx, &format!("{name} has joined the lobby."));
            }
            Some("ready") if self.joined => {
                let change = self.state.lobby.with(|players| {
                    players.iter_mut().find(|p| p.conn == conn).map(|p| {
                        p.ready = !p.ready;
                        (p.name.clone(), p.ready)
                    })
                });
                if let Some((name, ready)) = change {
                    self.broadcast(ctx, &format!("{name} is {}.", if ready { "ready" } else { "not ready" }));
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut Context) {
        let conn = ctx.id();
        let left = self.state.lobby.with(|players| {
            let i = players.iter().position(|p| p.conn == conn)?;
            Some(players.remove(i).name)
        });
        if let Some(name) = left {
            self.broadcast(ctx, &format!("{name} has left the lobby."));
        }
    }
}

async fn lobby_page(State(state): State<AppState>) -> Markup {
    let players = state.lobby.snapshot();
    page(
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
    )
}

pub(crate) fn routes(state: &AppState) -> Router {
    let s = state.clone();
    Router::new()
        .route("/lobby", get(lobby_page))
        .route("/ws/lobby", state.live.endpoint(move |_| LobbySession { state: s.clone(), joined: false }))
        .with_state(state.clone())
}
