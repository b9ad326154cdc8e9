//! # livehtml
//!
//! Live HTML over WebSockets for [axum]: the server renders HTML, the browser swaps it in.
//! Works with plain htmx 2 and htmx 4 (`ws-connect`, `ws-send`, `hx-ws:*`, `hx-swap-oob`) and
//! with livehtml.js, the small client this crate serves at [`SCRIPT_PATH`].
//!
//! The parts, one module each:
//!
//! * [`protocol`]: the wire dialects as plain data: inbound [`Event`]s from every client,
//!   outbound [`Fragment`]s, close codes.
//! * [`session`]: the [`Session`] trait an app implements, one instance per connected page.
//! * [`transport`]: WebSocket framing, limits, heartbeats, bounded outbound queues.
//! * [`pubsub`]: topics and broadcast.
//! * the axum integration ([`Live`]): endpoints, the client script, origin checks, shutdown.
//!
//! See [`Live`] for a complete chat endpoint.

pub mod protocol;
pub mod pubsub;
pub mod render;
pub mod session;
pub mod transport;
pub mod view;

mod axum;

pub use crate::axum::{Config, Live, LiveRoutes, Origins, SCRIPT, SCRIPT_PATH, Views, shutdown_signal};
pub use protocol::{Event, Fragment, Html, Swap};
pub use pubsub::{Info, PubSub};
pub use session::{Connect, Context, Session, SessionError};
pub use transport::{Frame, Inbound, Limits};
pub use view::runtime::Page;

/// The README's example, compiled as a doc test so it keeps working.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
