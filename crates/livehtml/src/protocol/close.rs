//! WebSocket close codes and what a client should do when it sees one.
//!
//! | code | name | reconnect? |
//! |------|------|------------|
//! | 1000 | [`NORMAL`] | no |
//! | 1001 | [`GOING_AWAY`] | yes, with jitter |
//! | 1002 | [`PROTOCOL_ERROR`]: a frame that breaks RFC 6455 | no |
//! | 1003 | [`UNSUPPORTED`]: a binary frame sent to an HTML session | no |
//! | 1007 | [`INVALID_DATA`]: a text message that is not UTF-8 | no |
//! | 1008 | [`POLICY`]: a message that is not a valid event | no |
//! | 1009 | [`TOO_BIG`]: a message over the size limit | no |
//! | 1011 | [`INTERNAL`]: the session failed | yes, with backoff |
//! | 1012 | [`RESTART`]: the server is shutting down or restarting | yes, with jitter |
//! | 1013 | [`SLOW_CONSUMER`]: the outbound queue overflowed, or the socket took no bytes for the write timeout | yes, with backoff |
//! | 4001 | [`HEARTBEAT_TIMEOUT`]: pings went unanswered | yes, with backoff |
//! | 4002 | [`STALE_VIEW`]: the page's live-view token was not accepted | reload the page |
//! | any other (1005, 1006: no close frame came; an app's own) | | yes, with backoff |
//!
//! [`policy`] gives this table as data; livehtml.js keeps the same one, and both are checked
//! against `fixtures/wire.json`.

/// Normal closure; the client should not reconnect.
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (for example the page or the server); reconnect with jitter.
pub const GOING_AWAY: u16 = 1001;
/// The client broke the WebSocket protocol (RFC 6455): a reserved bit, an unknown opcode,
/// a fragmented control frame, an unmasked frame.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text message that is not valid UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// The session cannot take this kind of data (a binary frame sent to an HTML session).
pub const UNSUPPORTED: u16 = 1003;
/// The message broke the protocol (not a valid event); the reason text says why.
pub const POLICY: u16 = 1008;
/// The message exceeded the size limit.
pub const TOO_BIG: u16 = 1009;
/// The session's handler failed.
pub const INTERNAL: u16 = 1011;
/// The server is restarting or shutting down; reconnect with jitter.
pub const RESTART: u16 = 1012;
/// The client did not read fast enough: its bounded outbound queue overflowed, or its socket took
/// no bytes for the write timeout. Others are not slowed down by it; this client may reconnect
/// and, later, resume. 1013 ("try again later", RFC 6455 section 7.4.1's registry) rather than a
/// code of our own: plain htmx 2 (`htmx-ext-ws`) and htmx 4 (`hx-ws`) reconnect after it, and
/// after no 4xxx code, so a plain htmx page cut off as a slow consumer comes back by itself.
pub const SLOW_CONSUMER: u16 = 1013;
/// The client stopped answering pings.
pub const HEARTBEAT_TIMEOUT: u16 = 4001;

/// The page's live-view token was not accepted: expired, signed with another key (a restart
/// without [`crate::Config::secret`]), altered, or for a view that no longer exists. A socket
/// cannot recover from that; the page should reload, which renders the view afresh over HTTP.
pub const STALE_VIEW: u16 = 4002;

/// The reason the server gives with a close it decided itself (empty where the code says all).
pub const fn reason(code: u16) -> &'static str {
    match code {
        SLOW_CONSUMER => "slow consumer: outbound queue overflowed",
        HEARTBEAT_TIMEOUT => "heartbeat timeout",
        RESTART | GOING_AWAY => "server shutting down",
        _ => "",
    }
}

/// What a client does after a close with some code. livehtml.js follows the same table: both
/// are checked against `fixtures/wire.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Stay closed: reconnecting would repeat the failure.
    Stay,
    /// Reconnect, with jittered exponential backoff.
    Reconnect,
    /// Reload the page: only a fresh render over HTTP helps ([`STALE_VIEW`]).
    Reload,
}

/// What a client that saw `code` should do. Codes not listed in the module's table (1005 and
/// 1006, which a client sees when no close frame came; 1013; an app's own 4xxx) reconnect: a
/// live page must not go silently dead.
///
/// ```
/// use livehtml::protocol::close::{self, Policy};
///
/// assert_eq!(close::policy(close::RESTART), Policy::Reconnect);
/// assert_eq!(close::policy(close::PROTOCOL_ERROR), Policy::Stay);
/// ```
pub const fn policy(code: u16) -> Policy {
    match code {
        NORMAL | PROTOCOL_ERROR | UNSUPPORTED | INVALID_DATA | POLICY | TOO_BIG => Policy::Stay,
        STALE_VIEW => Policy::Reload,
        _ => Policy::Reconnect,
    }
}

/// Whether a client that saw `code` should try to reconnect.
pub const fn should_reconnect(code: u16) -> bool {
    matches!(policy(code), Policy::Reconnect)
}
