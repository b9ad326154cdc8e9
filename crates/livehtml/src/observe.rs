//! What livehtml measures, named once, through the [`metrics`] facade: the app installs a
//! recorder (the demo: `metrics-exporter-prometheus` at `/metrics`) and every name below shows
//! up there; without one, each call is a load and a branch. Nothing here is called by an app:
//! this page is the list of metrics (a test checks that it names every one the crate records).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `livehtml_connections` | gauge: open connections | `transport` (`ws`, `sse`, `poll`) |
//! | `livehtml_connections_opened_total` | counter | `transport` |
//! | `livehtml_connections_closed_total` | counter | `transport`, `code` (below) |
//! | `livehtml_rejected_total` | counter: connections and requests refused before a session | `reason` (below) |
//! | `livehtml_messages_in_total` / `livehtml_bytes_in_total` | counters: messages from pages (handled or not), their payload bytes | |
//! | `livehtml_pushed_total` / `livehtml_pushed_bytes_total` | counters: messages a session sent its own page, their payload bytes | |
//! | `livehtml_rate_limited_total` | counter: messages dropped over a page's allowance | |
//! | `livehtml_event_duration_seconds` | histogram: a handler's time on one message | |
//! | `livehtml_deliveries_total` / `livehtml_delivered_bytes_total` | counters: published messages offered to subscribers, their payload bytes (before compression) | |
//! | `livehtml_published_total` | counter: messages published | |
//! | `livehtml_slow_consumers_total` | counter: connections cut off with a full queue | |
//! | `livehtml_topics` / `livehtml_subscriptions` | gauges | |
//! | `livehtml_broker_connected` | gauge: 1 while the cluster's broker is reachable | |
//! | `livehtml_broker_refused_total` | counter: publishes the broker queue refused | |
//! | `livehtml_forwarded_total` | counter: SSE posts and long-polls carried to the process holding their session | |
//!
//! A close's `code` is the close code sent (`1000`, `1001`, `1002`, `1003`, `1007`, `1008`,
//! `1009`, `1011`, `1012`, `1013`, `4001`, `4002`, or `other`), or `client`: the client closed or
//! left. A refusal's `reason` is one of `connection_rate`, `pending`, `head_timeout`,
//! `head_too_large`, `headers_too_large`, `origin`, `handshake`, `shutting_down`,
//! `forged_stream`, `token`.
//!
//! Per-delivery work is counted per publish (one increment by the number of subscribers), so
//! the broadcast path costs no more with a recorder than without.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Which transport carries a connection: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    WebSocket,
    Sse,
    Poll,
}

impl Transport {
    const fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "ws",
            Self::Sse => "sse",
            Self::Poll => "poll",
        }
    }
}

/// Why a connection or request was refused before it had a session: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Its address opened too many connections (`Listener::connection_rate`).
    ConnectionRate,
    /// Too many connections were waiting for a first request head.
    Pending,
    /// The first request head did not arrive in time.
    HeadTimeout,
    /// The first request head was over the listener's limit.
    HeadTooLarge,
    /// A live endpoint's request with headers over `Limits::max_head_bytes`.
    HeadersTooLarge,
    /// A foreign `Origin`.
    Origin,
    /// A WebSocket handshake that is not one (key, version, upgrade headers).
    Handshake,
    /// The server is shutting down.
    ShuttingDown,
    /// A POST to a stream: a forged or foreign id.
    ForgedStream,
    /// A view token that failed to verify.
    Token,
}

impl Rejected {
    const fn label(self) -> &'static str {
        match self {
            Self::ConnectionRate => "connection_rate",
            Self::Pending => "pending",
            Self::HeadTimeout => "head_timeout",
            Self::HeadTooLarge => "head_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Origin => "origin",
            Self::Handshake => "handshake",
            Self::ShuttingDown => "shutting_down",
            Self::ForgedStream => "forged_stream",
            Self::Token => "token",
        }
    }
}

pub(crate) fn opened(transport: Transport) {
    counter!("livehtml_connections_opened_total", "transport" => transport.label()).increment(1);
    gauge!("livehtml_connections", "transport" => transport.label()).increment(1.0);
}

/// A connection ended: with the close code the server sent, or `None` when the client closed
/// or left.
pub(crate) fn closed(transport: Transport, code: Option<u16>) {
    gauge!("livehtml_connections", "transport" => transport.label()).decrement(1.0);
    counter!("livehtml_connections_closed_total", "transport" => transport.label(), "code" => code_label(code))
        .increment(1);
}

/// The close codes livehtml sends, as label values (a label is a fixed set, not any number).
const fn code_label(code: Option<u16>) -> &'static str {
    use crate::protocol::close;
    match code {
        None => "client",
        Some(close::NORMAL) => "1000",
        Some(close::GOING_AWAY) => "1001",
        Some(close::PROTOCOL_ERROR) => "1002",
        Some(close::UNSUPPORTED) => "1003",
        Some(close::INVALID_DATA) => "1007",
        Some(close::POLICY) => "1008",
        Some(close::TOO_BIG) => "1009",
        Some(close::INTERNAL) => "1011",
        Some(close::RESTART) => "1012",
        Some(close::SLOW_CONSUMER) => "1013",
        Some(close::HEARTBEAT_TIMEOUT) => "4001",
        Some(close::STALE_VIEW) => "4002",
        Some(_) => "other",
    }
}

pub(crate) fn rejected(reason: Rejected) {
    counter!("livehtml_rejected_total", "reason" => reason.label()).increment(1);
}

pub(crate) fn message_in(bytes: usize) {
    counter!("livehtml_messages_in_total").increment(1);
    counter!("livehtml_bytes_in_total").increment(bytes as u64);
}

/// A session sent its own page a message of `bytes`.
pub(crate) fn pushed(bytes: usize) {
    counter!("livehtml_pushed_total").increment(1);
    counter!("livehtml_pushed_bytes_total").increment(bytes as u64);
}

pub(crate) fn rate_limited() {
    counter!("livehtml_rate_limited_total").increment(1);
}

pub(crate) fn handled(took: Duration) {
    histogram!("livehtml_event_duration_seconds").record(took.as_secs_f64());
}

/// One message of `bytes` published, offered to `subscribers`.
pub(crate) fn published(subscribers: usize, bytes: usize) {
    counter!("livehtml_published_total").increment(1);
    counter!("livehtml_deliveries_total").increment(subscribers as u64);
    counter!("livehtml_delivered_bytes_total").increment((subscribers * bytes) as u64);
}

pub(crate) fn slow_consumer() {
    counter!("livehtml_slow_consumers_total").increment(1);
}

pub(crate) fn topics(change: f64) {
    gauge!("livehtml_topics").increment(change);
}

pub(crate) fn subscriptions(change: f64) {
    gauge!("livehtml_subscriptions").increment(change);
}

pub(crate) fn broker_connected(connected: bool) {
    gauge!("livehtml_broker_connected").set(if connected { 1.0 } else { 0.0 });
}

pub(crate) fn broker_refused() {
    counter!("livehtml_broker_refused_total").increment(1);
}

/// A page's request carried to the process that holds its session.
pub(crate) fn forwarded() {
    counter!("livehtml_forwarded_total").increment(1);
}
