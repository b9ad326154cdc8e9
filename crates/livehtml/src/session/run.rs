//! The session loop: one page's connection, from join to leave, on any transport.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::rate::{Bucket, Verdict};
use super::{Context, Session, SessionError};
use crate::link::{Link, Next};
use crate::observe;
use crate::protocol::{Inbound, close};

/// Runs `session` over `link` to its end: `on_join`, then each message and info in order, then
/// `on_leave`, then the close.
///
/// Not an `async fn`: those store their by-value arguments twice in their state
/// (rust-lang/rust#62958), which costs every idle connection about 600 bytes. An `async move`
/// block uses what it captured in place. Await points that are rare or of unknown size (the
/// app's handlers, the close) are boxed, so the task of an idle connection stays small.
#[allow(clippy::manual_async_fn)] // deliberate: see above
pub(crate) fn run<S: Session, L: Link>(
    mut session: S,
    mut ctx: Context,
    mut link: L,
) -> impl Future<Output = ()> + Send {
    async move {
        observe::opened(link.transport());
        drive(&mut session, &mut ctx, &mut link).await;
        // Taken after the loop's future is gone, not returned by it: a value an await returns
        // is written while its future still exists, so the two could not share the task's
        // memory, and the request would take a slot of its own in every idle connection.
        let requested = ctx.take_close();
        Box::pin(session.on_leave(&mut ctx)).await;
        ctx.end();
        let transport = link.transport();
        let code = Box::pin(link.close(requested)).await;
        observe::closed(transport, code);
    }
}

/// A handler's future, boxed: rare next to the wait, and of a size only the app knows.
type Handling<'a> = Pin<Box<dyn Future<Output = Result<(), SessionError>> + Send + 'a>>;

/// The loop, until the connection ends or is to be closed (the close request is left in `ctx`).
///
/// An idle connection's task holds the largest of this future's states, so each keeps little:
/// not an `async fn` (its arguments would be stored twice, as in [`run`]), the join's result
/// dropped before the loop, and a handler's future built from the link's message before it is
/// awaited, so the message is not kept beside it.
#[allow(clippy::manual_async_fn)] // deliberate: see above
fn drive<'a, S: Session, L: Link>(
    session: &'a mut S,
    ctx: &'a mut Context,
    link: &'a mut L,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        {
            let joined = Box::pin(session.on_join(ctx)).await;
            ctx.joined();
            // What a handler pushed before failing still goes out first.
            ctx.send_pushed();
            if let Err(e) = joined {
                return failed(ctx, e);
            }
        }
        let mut bucket = Bucket::new(link.rate());
        loop {
            if ctx.close_requested() {
                return;
            }
            // A connection with work always ready (a flood of messages or infos) still lets the
            // worker thread serve others: this yields once tokio's budget for the task is spent.
            tokio::task::coop::consume_budget().await;
            let handling: Handling<'_> = match std::future::poll_fn(|cx| link.poll_next(cx)).await {
                None => return,
                Some(Next::Message(message)) => {
                    // Measured by value: a borrow here would keep the message's slot in every
                    // idle connection's task.
                    let message = observe_in(message);
                    // Binary messages are not counted: a live view takes them only as pieces of
                    // files its page declared in (counted) events, within their sizes, and a
                    // session refuses them (1003) unless it reads raw messages itself (then its
                    // own limits apply).
                    let verdict =
                        if matches!(message, Inbound::Binary(_)) { Verdict::Handle } else { bucket.take(link.rate()) };
                    match verdict {
                        // Timed inside the box: the clock is not in every idle connection's task.
                        Verdict::Handle => Box::pin(async {
                            let started = Instant::now();
                            let handled = session.on_message(ctx, message).await;
                            observe::handled(started.elapsed());
                            handled
                        }),
                        Verdict::Drop => {
                            observe::rate_limited();
                            continue;
                        }
                        Verdict::Close => {
                            observe::rate_limited();
                            return ctx.request_close(close::POLICY, Cow::Borrowed("rate limit"));
                        }
                    }
                }
                Some(Next::Info(info)) => Box::pin(session.on_info(ctx, info)),
            };
            let handled = handling.await;
            ctx.send_pushed();
            if let Err(e) = handled {
                return failed(ctx, e);
            }
        }
    }
}

/// A handler failed: the connection closes with the error's code, whatever the session asked.
fn failed(ctx: &mut Context, e: SessionError) {
    if let Some(source) = e.source() {
        tracing::error!(error = %source, "live session failed");
    }
    ctx.request_close(e.code(), Cow::Owned(e.reason().to_owned()));
}

/// Counts a page's message and its payload bytes; gives it back.
fn observe_in(message: crate::protocol::Inbound) -> crate::protocol::Inbound {
    observe::message_in(match &message {
        crate::protocol::Inbound::Text(text) => text.len(),
        crate::protocol::Inbound::Binary(bytes) => bytes.len(),
    });
    message
}
