//! # livehtml
//!
//! Live HTML over WebSockets and Server-Sent Events for [axum](https://docs.rs/axum): the server
//! renders HTML and pushes fragments, the browser swaps them in. Plain htmx 2 and 4, Datastar 1.0
//! and livehtml.js (the small client this crate serves at [`SCRIPT_URL`]) talk to the same
//! sessions.
//!
//! ## Quick start
//!
//! A chat every open tab shares, as a whole `src/main.rs` (with `axum`, `tokio` and `maud` beside
//! livehtml); open two tabs on <http://127.0.0.1:3000>:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use livehtml::{Context, Event, Fragment, Live, Session, SessionError};
//! use maud::{Markup, html};
//!
//! /// One per connected page: its fields would be that page's state.
//! struct Chat;
//!
//! impl Session for Chat {
//!     async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
//!         ctx.subscribe("chat");
//!         Ok(())
//!     }
//!
//!     async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
//!         // maud escapes the text: a typed <script> shows up as text.
//!         let line = html! { li { (event.value("message").unwrap_or_default()) } };
//!         ctx.broadcast("chat", &[Fragment::append("messages", line).tag("ul")]);
//!         Ok(())
//!     }
//! }
//!
//! async fn page() -> Markup {
//!     html! {
//!         script src=(livehtml::SCRIPT_URL) defer {}
//!         div lh-connect="/ws/chat" {
//!             form lh-send lh-reset="message" { input name="message"; button { "Send" } }
//!             ul #messages {}
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let live = Live::default();
//!     let app = Router::new()
//!         .route("/", get(page))
//!         .route("/ws/chat", live.endpoint(|_connect| Chat))
//!         .merge(live.client_script());
//!     let listener = livehtml::Listener::bind("127.0.0.1:3000").await?;
//!     livehtml::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await
//! }
//! ```
//!
//! ## Where to go next
//!
//! * [`Session`] and [`Context`]: one per connected page; subscribe, push, broadcast, track
//!   presence. [`Live::endpoint`] serves one over every transport and dialect.
//! * [`LiveView`] and [`LiveRoutes`]: the LiveView model, with a test client ([`ViewTest`]).
//! * [`PubSub`]: topics, history, presence, and the [`pubsub::Backend`] seam the Redis and NATS
//!   back ends (`livehtml-redis`, `livehtml-nats`) plug into.
//! * [`Limits`], [`Config`], [`Listener`] and [`serve`]: what a deployment tunes.
//! * [`observe`]: every metric livehtml records.
//! * [`protocol`]: the wire as plain data: events, fragments, frames, close codes.
//!
//! The guide (transports, live views, recovery, clusters, operations, the wire, livehtml.js) is
//! in the repository's `docs/`, each page with an example compiled as a test; ARCHITECTURE.md
//! draws the module graph (`tests/layers.rs` keeps it true).

mod asset;
mod link;
pub mod observe;
pub mod protocol;
pub mod pubsub;
pub(crate) mod render;
pub mod session;
pub mod transport;
pub mod view;

mod axum;

pub use crate::axum::{
    Config, Listener, ListenerConnection, Live, LiveRoutes, Origins, Peer, STREAM_HEADER, Serve, Views, serve,
    shutdown_signal,
};
pub use asset::{SCRIPT, SCRIPT_MINIFIED, SCRIPT_PATH, SCRIPT_URL};
pub use protocol::{Event, Fragment, Frame, Html, Inbound, Swap};
pub use pubsub::{Info, PubSub};
pub use session::{Connect, Context, Session, SessionError};
pub use transport::Limits;
pub use view::runtime::Page;
pub use view::{LiveView, Mount, ViewError, ViewTest};

/// The README's example, compiled as a doc test so it keeps working (it is also
/// `examples/quickstart`, which `tests/docs.rs` keeps the same).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The guide's examples (`docs/`), compiled as doc tests; `docs/clusters.md` is compiled by
/// `livehtml-redis`, whose crate it uses.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../../docs/transports.md")]
    pub struct Transports;
    #[doc = include_str!("../../../docs/views.md")]
    pub struct Views;
    #[doc = include_str!("../../../docs/recovery.md")]
    pub struct Recovery;
    #[doc = include_str!("../../../docs/operations.md")]
    pub struct Operations;
    #[doc = include_str!("../../../docs/wire.md")]
    pub struct Wire;
    #[doc = include_str!("../../../docs/livehtml-js.md")]
    pub struct LivehtmlJs;
}
