//! Transports: how frames reach a page and events come back. This slice has WebSocket;
//! the session sees only [`Inbound`] messages and [`Frame`]s, so SSE and long-polling can
//! slot in beside it.

mod frame;
mod limits;
pub(crate) mod outbox;
pub(crate) mod ws;

pub use frame::{Frame, Inbound};
pub use limits::Limits;
