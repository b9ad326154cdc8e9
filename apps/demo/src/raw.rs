//! `/ws/raw`: every text and binary message echoed verbatim (for protocol conformance).

use axum::Router;
use livehtml::{Context, Event, Inbound, Limits, Live, Session, SessionError};

/// Autobahn sends messages up to 16 MiB, and thousands of them as fast as it can (so this
/// endpoint has no message allowance).
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

struct RawEcho;

impl Session for RawEcho {
    async fn on_event(&mut self, _: &mut Context, _: Event) -> Result<(), SessionError> {
        Ok(())
    }

    async fn on_message(&mut self, ctx: &mut Context, message: Inbound) -> Result<(), SessionError> {
        ctx.push_frame(message.into_frame());
        Ok(())
    }
}

/// The conformance runner (kosoku) counts a server ping that arrives inside a compressed-message
/// case (sections 12 and 13) as one of the echoes it waits for, and fails the case: this endpoint
/// pings once an hour, so a run meets none.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

pub(crate) fn routes(live: &Live) -> Router {
    let limits = Limits::default().max_message_bytes(MAX_MESSAGE).no_rate_limit().ping_interval(PING_INTERVAL);
    Router::new().route("/ws/raw", live.endpoint_with(limits, |_| RawEcho))
}
