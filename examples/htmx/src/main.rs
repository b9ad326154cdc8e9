//! A livehtml endpoint driven by plain htmx: the same room served to an htmx 2 page
//! (`htmx-ext-ws`: `ws-connect`, `ws-send`) and an htmx 4 page (`hx-ws:connect`, `hx-ws:send`).
//! Both pages get the same bytes: fragments with an explicit `hx-swap-oob`. A page cut off
//! gets the room's whole log again when it comes back (its socket URL carries where its first
//! render left it): plain htmx misses nothing either.
//!
//! htmx itself is not committed: install it from npm first, then
//! run with: `cargo run -p example-htmx -- --vendor e2e/node_modules`
//! and open <http://127.0.0.1:3001/>, which links every page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use livehtml::pubsub::{History, Recovery};
use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Fragment, Frame, Html, Limits, Live, LiveRoutes, Page, Session, SessionError};
use maud::{DOCTYPE, Markup, html};
use tower_http::services::ServeDir;

#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3001")]
    addr: SocketAddr,
    /// A node_modules folder holding `htmx2` (htmx.org@2), `htmx4` (htmx.org@4) and `htmx-ext-ws`.
    #[arg(long, default_value = "e2e/node_modules")]
    vendor: PathBuf,
}

/// The room's last messages: what a page renders first, and is sent again when it comes back
/// from a gap (a plain htmx page cannot say which messages it has).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

/// Messages a room's page shows at most.
const KEPT: usize = 100;

impl Log {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn log_items(lines: &[String]) -> Markup {
    html! { @for line in lines { li { (line) } } }
}

/// One room: every message is broadcast, escaped, to every page in it.
struct Room {
    log: Log,
}

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        // A page that comes back (its URL says where its first render left it) and missed
        // something is sent the whole log again: never a silent gap.
        if ctx.subscribe("room") == Recovery::Lost {
            ctx.push(Fragment::inner("log", log_items(&self.log.lines())).tag("ul"));
        }
        // Tells the page it is in the room: from here on it receives every broadcast.
        ctx.push(Fragment::inner("status", html! { "joined" }));
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let text = event.value("message").unwrap_or_default();
        let from = format!("{:?}", event.dialect);
        // Logged and broadcast under one lock: the log's order is the topic's.
        let mut log = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
        match event.name.as_deref() {
            // A Datastar `@query`: how many messages there are, for this page only.
            Some("query") => {
                ctx.push(Fragment::inner("count", html! { (log.len()) " messages" }));
                return Ok(());
            }
            // A Datastar `@delete`: the room starts over, on every page.
            Some("delete") => {
                log.clear();
                ctx.broadcast("room", &[Fragment::inner("log", html! {}).tag("ul")]);
                return Ok(());
            }
            _ => {}
        }
        log.push(text.to_owned());
        if log.len() > KEPT {
            log.remove(0);
        }
        ctx.broadcast(
            "room",
            &[
                Fragment::append("log", html! { li { (text) } }).tag("ul"),
                Fragment::inner("last-dialect", html! { (from) }),
            ],
        );
        Ok(())
    }
}

/// Where the room's socket is, for a page rendered now: with the room's position, so that its
/// connection (and every reconnect) knows what the page was rendered with.
fn room_url(live: &Live) -> String {
    match live.pubsub().position("room") {
        Some(at) => format!("/ws/room?lh-since={at}"),
        None => "/ws/room".to_owned(),
    }
}

/// How many times a page joined the flood endpoint, in this process.
static JOINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A page that asks for more than it can read: `flood` pushes 16 MB in one go to a queue of 8
/// messages, so the server cuts the page off as a slow consumer (1013, which plain htmx 2 and 4
/// retry), and the page comes back by itself: its status shows a new join.
struct Flood;

impl Session for Flood {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        let n = JOINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        ctx.push(Fragment::inner("status", html! { "joined " (n) }));
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, _: Event) -> Result<(), SessionError> {
        let block = "x".repeat(64 * 1024);
        for _ in 0..256 {
            // One message each (the fragments of `push` would go out together as one).
            ctx.push_frame(Frame::fragments(&[Fragment::inner("flood", html! { (block) })]));
        }
        Ok(())
    }
}

/// The flood page for htmx 2 or htmx 4.
async fn flood(version: &str) -> Markup {
    let htmx2 = version == "htmx2";
    let scripts: &[&str] = if htmx2 {
        &["/vendor/htmx2/dist/htmx.min.js", "/vendor/htmx-ext-ws/dist/ws.js"]
    } else {
        &["/vendor/htmx4/dist/htmx.min.js", "/vendor/htmx4/dist/ext/hx-ws.js"]
    };
    let inner = html! {
        p { "Status: " span #status { "connecting" } }
        @if htmx2 {
            form #flood-form ws-send { button type="submit" { "Flood" } }
        } @else {
            form #flood-form "hx-ws:send" { button type="submit" { "Flood" } }
        }
        div #flood {}
    };
    let body = if htmx2 {
        html! { div hx-ext="ws" ws-connect="/ws/flood" { (inner) } }
    } else {
        html! { div "hx-ws:connect"="/ws/flood" { (inner) } }
    };
    page(&format!("{version}: a slow consumer comes back"), scripts, body)
}

/// The look of the demo's pages, short.
const STYLE: &str = "body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; \
                     padding: 0 1rem; color: #222; } input, button { font: inherit; } li { margin: .3rem 0; }";

/// The pages this example serves, each with what it shows.
const PAGES: &[(&str, &str)] = &[
    ("/htmx2", "htmx 2 + htmx-ext-ws: a room (ws-connect, ws-send); cut it off and it comes back whole"),
    ("/htmx4", "htmx 4 (hx-ws:connect, hx-ws:send): the same room, the same bytes"),
    ("/htmx4-sse", "htmx 4 over Server-Sent Events (hx-sse:connect): the same room"),
    ("/htmx2/live", "a live view (clicks counted on the server) on plain htmx 2"),
    ("/htmx2/flood", "htmx 2: a page that asks for more than it reads is cut off (1013) and comes back"),
    ("/htmx4/flood", "the same on htmx 4"),
];

/// `/`: every page, linked.
async fn index() -> Markup {
    page(
        "livehtml with plain htmx",
        &[],
        html! {
            p { "One livehtml session, driven by htmx's own extensions (htmx itself from npm: "
                code { "--vendor" } ")." }
            ul { @for (path, what) in PAGES { li { a href=(path) { (path) } " — " (what) } } }
        },
    )
}

fn page(title: &str, scripts: &[&str], body: Markup) -> Markup {
    html_page(title, scripts, body)
}

fn html_page(title: &str, scripts: &[&str], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
                @for src in scripts { script src=(src) {} }
            }
            body { nav { a href="/" { "All pages" } } h1 { (title) } (body) }
        }
    }
}

async fn htmx2(State((live, log)): State<(Live, Log)>) -> Markup {
    let (url, lines) = (room_url(&live), log.lines());
    page(
        "htmx 2 + htmx-ext-ws",
        &["/vendor/htmx2/dist/htmx.min.js", "/vendor/htmx-ext-ws/dist/ws.js"],
        html! {
            div hx-ext="ws" ws-connect=(url) {
                form #room-form ws-send {
                    input name="message" autocomplete="off";
                    button type="submit" { "Send" }
                }
                p { "Status: " span #status { "connecting" } " · last sent by: " span #last-dialect {} }
                ul #log { (log_items(&lines)) }
            }
        },
    )
}

async fn htmx4(State((live, log)): State<(Live, Log)>) -> Markup {
    let (url, lines) = (room_url(&live), log.lines());
    page(
        "htmx 4 + hx-ws",
        &["/vendor/htmx4/dist/htmx.min.js", "/vendor/htmx4/dist/ext/hx-ws.js"],
        html! {
            div "hx-ws:connect"=(url) {
                form #room-form "hx-ws:send" {
                    input name="message" autocomplete="off";
                    button type="submit" { "Send" }
                }
                p { "Status: " span #status { "connecting" } " · last sent by: " span #last-dialect {} }
                ul #log { (log_items(&lines)) }
            }
        },
    )
}

/// htmx 4's built-in SSE: the room's fragments arrive as unnamed events (swapped out of band);
/// the form posts to the same endpoint with the stream's id, which the stream's first event
/// (`lh-stream`, a DOM event under htmx 4) hands to the form as its `hx-headers`.
async fn htmx4_sse() -> Markup {
    page(
        "htmx 4 + hx-sse",
        &["/vendor/htmx4/dist/htmx.min.js", "/vendor/htmx4/dist/ext/hx-sse.js"],
        html! {
            div "hx-sse:connect"="/ws/room" hx-swap="none"
                "hx-on:lh-stream"="document.getElementById('room-form').setAttribute('hx-headers', JSON.stringify({'LH-Stream': event.detail.data}))" {
                form #room-form hx-post="/ws/room" hx-swap="none" {
                    input name="message" autocomplete="off";
                    button type="submit" { "Send" }
                }
                p { "Status: " span #status { "connecting" } " · last sent by: " span #last-dialect {} }
                ul #log {}
            }
        },
    )
}

/// A live view driven by a plain htmx 2 page: `ws-send` buttons in, changed regions out.
struct Clicks {
    count: i64,
}

impl LiveView for Clicks {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Self { count: 0 })
    }

    fn title(&self) -> String {
        "htmx 2 live view".into()
    }

    fn render(&self) -> Html {
        html! {
            p { "Clicks: " output #clicks { (self.count) } }
            // htmx 2 names the event by the button's name (HX-Trigger-Name).
            button #inc name="inc" ws-send { "+1" }
            button #reset name="reset" ws-send { "reset" }
        }
        .into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("inc") => self.count += 1,
            Some("reset") => self.count = 0,
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

/// The page around the view: htmx 2 and its ws extension instead of livehtml.js.
fn htmx2_layout(page: &Page) -> Html {
    html_page(
        page.title(),
        &["/vendor/htmx2/dist/htmx.min.js", "/vendor/htmx-ext-ws/dist/ws.js"],
        html! {
            div #lh-flash role="alert" {}
            div #lh-view hx-ext="ws" ws-connect=(page.connect_url()) { (page.content()) }
        },
    )
    .into()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let args = Args::parse();
    let live = Live::default();
    live.pubsub().keep_history("room", History::new(KEPT));
    let log = Log::default();
    let room_log = log.clone();
    let app = Router::new()
        .route("/", get(index))
        .route("/htmx2", get(htmx2))
        .route("/htmx4", get(htmx4))
        .with_state((live.clone(), log))
        .route("/htmx4-sse", get(htmx4_sse))
        .route("/ws/room", live.endpoint(move |_| Room { log: room_log.clone() }))
        .route("/htmx2/flood", get(|| flood("htmx2")))
        .route("/htmx4/flood", get(|| flood("htmx4")))
        // Uncompressed: 16 MB of one letter deflates to a few KB, which the page would take whole
        // and never fall behind.
        .route("/ws/flood", live.endpoint_with(Limits::default().outbound_queue(8).compression(false), |_| Flood))
        .merge(LiveRoutes::new(&live, ()).route::<Clicks>("/htmx2/live").layout(htmx2_layout).build().router())
        .nest_service("/vendor", ServeDir::new(&args.vendor));
    let listener = livehtml::Listener::bind(args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    livehtml::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await?;
    live.drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}
