//! The transport-neutral connection interface: what the session loop needs of one page's
//! connection, whatever carries it (a WebSocket; an SSE stream with POSTs).
//!
//! The session loop ([`crate::session`]) asks a [`Link`] for the next message from the page or
//! info for the session, runs the handler, and offers what it pushed through the connection's
//! [`crate::pubsub::Subscriber`]. The transport keeps to itself how it reads, writes, pings and
//! closes; it ends the loop by answering `None`.

use std::borrow::Cow;
use std::future::Future;
use std::task::{Context, Poll};

use crate::observe::Transport;
use crate::protocol::Inbound;
use crate::pubsub::Info;

/// One page's connection, as the session loop drives it.
pub(crate) trait Link: Send {
    /// The next thing for the session; `None` once the connection ended (the transport knows
    /// why, and how to close). A poll, not a future: an idle connection's task holds no state
    /// for it beyond the link itself.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>>;

    /// Ends the connection: with the session's own close request (`Some`: code and reason, after
    /// what it pushed), or as the transport decided when `next` answered `None`. Resolves to
    /// the close code sent, `None` when the client closed or left.
    fn close(self, requested: Option<(u16, Cow<'static, str>)>) -> impl Future<Output = Option<u16>> + Send;

    /// Which transport this is, for the metrics.
    fn transport(&self) -> Transport;

    /// How many messages the page may send ([`crate::Limits::rate_limit`]).
    fn rate(&self) -> Rate {
        Rate::NONE
    }
}

/// A page's message allowance: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub(crate) per_second: u32,
    pub(crate) burst: u32,
}

impl Rate {
    /// No limit.
    pub(crate) const NONE: Self = Self { per_second: u32::MAX, burst: u32::MAX };
}

/// What the connection brought.
#[derive(Debug)]
pub(crate) enum Next {
    /// A data message from the page.
    Message(Inbound),
    /// A value from a topic or a timer, for `on_info`.
    Info(Info),
}
