//! Transports: how frames reach a page and events come back: WebSocket and SSE. A
//! connection is a [`crate::pubsub`] subscriber (topics and its session offer it frames) and a
//! link the session loop reads [`crate::Inbound`] messages from; neither side knows the other's
//! transport, so SSE and long-polling slot in beside it.
//!
//! How a WebSocket connection is built, for a fan-out server that must be lean when idle and
//! cheap per delivery:
//!
//! * A [`crate::Frame`] is framed for the wire once; a broadcast's bytes are shared by every
//!   subscriber and written from where they are.
//! * The publisher writes to each subscriber's socket itself (`outbox`); the connection's task
//!   is woken only to finish a write the socket could not take. While a task is polled, what it
//!   publishes is corked and written once per subscriber when the poll ends.
//! * tungstenite parses frames and answers control frames, driven directly over the
//!   connection's queue (`outbox::Io`), with a small parser buffer: sockets are read through one
//!   64 KiB buffer per thread. Its state exists only while a message is part-way read
//!   (`socket`): an idle connection holds none.
//! * One timer per heartbeat period pings every connection, and shutdown goes through the same
//!   registry: an idle connection holds no timer and no cancellation future.
//! * Every wait on a peer is bounded. A write that makes no progress for
//!   [`Limits::write_timeout`] closes the connection (the timer exists only while a write is
//!   stalled); closing handshakes wait at most the close timeout; after failing a connection the
//!   server closes TCP first. A socket found gone (a failed write, a dropped socket) ends its
//!   connection: its queue refuses everything, and the task is told so instead of being handed
//!   frames it cannot write.
//!
//! An SSE stream on a socket taken from hyper (see [`crate::Listener`]) is written the same way,
//! its frames as chunks of events (`outbox::Framing`); without that listener, hyper writes it
//! as a response body that takes what is queued.

mod deadline;
mod limits;
pub(crate) mod outbox;
pub(crate) mod socket;
pub(crate) mod sse;
pub(crate) mod ws;

pub use limits::Limits;
