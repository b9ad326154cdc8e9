//! Sessions: one per connected page.
//!
//! An app implements [`Session`] for a plain struct that holds the page's state. The transport
//! calls it with each event the page sends; the session answers through its [`Context`]: pushing
//! fragments to its own page, subscribing to topics, broadcasting to them.
//!
//! ```
//! use livehtml::{Context, Event, Fragment, Html, Session, SessionError};
//!
//! /// Echoes every message back to the page that sent it.
//! struct Echo;
//!
//! impl Session for Echo {
//!     async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
//!         let text = event.value("message").unwrap_or_default();
//!         ctx.push(Fragment::append("log", Html::escape(text)));
//!         Ok(())
//!     }
//! }
//! ```

mod context;
mod error;
mod rate;
mod run;
mod task;

use std::future::Future;

pub use context::{Connect, Context};
pub use error::SessionError;
pub(crate) use run::run;
pub use task::{AsyncValue, Done, MAX_TASKS, TaskFailed};

use crate::protocol::{Event, Inbound, close, parse_event};
use crate::pubsub::Info;

/// The per-page handler of a live endpoint.
///
/// Every method runs on the connection's own task, one call at a time, so `&mut self` is the
/// page's state with no locking. What a method pushes through [`Context::push`] is sent as one
/// WebSocket message when it returns.
///
/// The session is kept inside its connection's task for as long as the page is open, so its
/// size is in every idle connection's memory: a field-less session leaves the task at 384
/// bytes, and tokio allocates tasks in steps of 128. Keep large or rarely used state behind a
/// `Box` (or in an `Arc` shared between pages).
///
/// # Errors
///
/// A method that returns an error closes the connection: [`SessionError::close`] with the code
/// and reason it names, any other error with 1011 (internal error), logged with `tracing`.
pub trait Session: Send + Sized + 'static {
    /// Called once when the socket opens, before any event: subscribe to topics, send the
    /// page what it needs.
    fn on_join(&mut self, ctx: &mut Context) -> impl Future<Output = Result<(), SessionError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Called for each event the page sends, in order.
    fn on_event(&mut self, ctx: &mut Context, event: Event) -> impl Future<Output = Result<(), SessionError>> + Send;

    /// Called for each data message before any parsing. The default parses text as an event
    /// (any dialect of [`crate::protocol`]) and calls [`Session::on_event`]; a message that is
    /// not a valid event closes with 1008 and the parse error as the reason, a binary message
    /// with 1003. Override it to handle raw frames yourself.
    fn on_message(
        &mut self,
        ctx: &mut Context,
        message: Inbound,
    ) -> impl Future<Output = Result<(), SessionError>> + Send {
        async move {
            match message {
                Inbound::Text(text) => text_event(self, ctx, &text).await,
                Inbound::Binary(_) => Err(SessionError::close(close::UNSUPPORTED, "binary messages are not events")),
            }
        }
    }

    /// Called for each value published with [`crate::PubSub::publish_info`] to a topic this
    /// session subscribed to, and for its own timers ([`Context::every`]). Ignored by default.
    fn on_info(&mut self, ctx: &mut Context, info: Info) -> impl Future<Output = Result<(), SessionError>> + Send {
        let _ = (ctx, info);
        async { Ok(()) }
    }

    /// Called once when the connection has ended, for whatever reason. Subscriptions are
    /// dropped right after it returns; nothing pushed here reaches the page.
    fn on_leave(&mut self, ctx: &mut Context) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }
}

/// A text message as an event: parsed, handled, and replied to if the page numbered it.
pub(crate) async fn text_event<S: Session>(session: &mut S, ctx: &mut Context, text: &str) -> Result<(), SessionError> {
    match parse_event(text, &ctx.parse_limits()) {
        Ok(event) => {
            let reference = event.reference;
            let handled = session.on_event(ctx, event).await;
            ctx.reply(reference.filter(|_| handled.is_ok()));
            handled
        }
        Err(e) => Err(SessionError::close(close::POLICY, e.to_string())),
    }
}
