//! # livehtml
//!
//! Live HTML over WebSockets for [axum](https://docs.rs/axum): the server renders HTML, the browser swaps it in.
//! Works with plain htmx 2 and htmx 4 (`ws-connect`, `ws-send`, `hx-ws:*`, `hx-swap-oob`) and
//! with livehtml.js, the small client this crate serves at [`SCRIPT_PATH`].
//!
//! The parts, one module each:
//!
//! * `asset`: livehtml.js as built (minified and precompressed by `build.rs`, named by its
//!   content's hash): [`SCRIPT_URL`] is what pages link.
//! * [`protocol`]: the wire vocabulary as plain data: inbound [`Event`]s from every client,
//!   outbound [`Fragment`]s and [`Frame`]s, close codes and what a client does after each.
//! * `render`: region fingerprints and diffs of a rendered view. Pure code.
//! * [`pubsub`]: topics and broadcast, and what a subscriber is (a connection's queue, whatever
//!   its transport).
//! * `observe`: what livehtml measures, named once (the `metrics` facade: connections,
//!   closes by code, rejections by reason, messages, deliveries, handler latency, topics,
//!   broker state). Everything below `axum` may record; it uses only `protocol`'s close codes.
//! * `link`: the transport-neutral connection interface the session loop drives.
//! * [`session`]: the [`Session`] trait an app implements, one instance per connected page,
//!   and the session loop, which never knows its transport.
//! * [`view`]: live views (the LiveView model) on top of sessions.
//! * [`transport`]: WebSocket framing, limits, heartbeats, bounded outbound queues, corked
//!   writes; a connection is a subscriber and a link.
//! * the axum integration ([`Live`]): endpoints, the client script, origin checks, shutdown.
//!
//! Dependencies point one way (an arrow reads "uses"; `tests/layers.rs` keeps this true):
//!
//! ```text
//! axum ──▶ everything below
//! view ──▶ session ──▶ link ──▶ pubsub ──▶ protocol
//!   │         │                   ▲           ▲
//!   └─────────┴──▶ render ────────┼───────────┘
//! transport ──▶ link, pubsub, protocol
//! (every module but protocol) ──▶ observe ──▶ protocol
//! ```
//!
//! See [`Live`] for a complete chat endpoint.

mod asset;
mod link;
mod observe;
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

/// The README's example, compiled as a doc test so it keeps working.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
