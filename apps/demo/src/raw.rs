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

pub(crate) fn routes(live: &Live) -> Router {
    Router::new().route(
        "/ws/raw",
        live.endpoint_with(Limits::default().max_message_bytes(MAX_MESSAGE).no_rate_limit(), |_| RawEcho),
    )
}
