//! The session loop: one page's connection, from join to leave, on any transport.

use std::borrow::Cow;
use std::future::Future;
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
        let requested = drive(&mut session, &mut ctx, &mut link).await;
        Box::pin(session.on_leave(&mut ctx)).await;
        ctx.end();
        let transport = link.transport();
        let code = Box::pin(link.close(requested)).await;
        observe::closed(transport, code);
    }
}

/// The loop; returns the session's own close request, or `None` when the connection ended.
async fn drive<S: Session, L: Link>(
    session: &mut S,
    ctx: &mut Context,
    link: &mut L,
) -> Option<(u16, Cow<'static, str>)> {
    let joined = Box::pin(session.on_join(ctx)).await;
    ctx.joined();
    // What a handler pushed before failing still goes out first.
    ctx.send_pushed();
    if let Err(e) = joined {
        return Some(failed(e));
    }
    let mut bucket = Bucket::new(link.rate());
    loop {
        if let Some(c) = ctx.take_close() {
            return Some(c);
        }
        // A connection with work always ready (a flood of messages or infos) still lets the
        // worker thread serve others: this yields once tokio's budget for the task is spent.
        tokio::task::coop::consume_budget().await;
        let handled = match std::future::poll_fn(|cx| link.poll_next(cx)).await? {
            Next::Message(message) => {
                // Measured by value: a borrow here would keep the message's slot in every idle
                // connection's task.
                let message = observe_in(message);
                // Binary messages are not counted: a live view takes them only as pieces of files
                // its page declared in (counted) events, within their sizes, and a session
                // refuses them (1003) unless it reads raw messages itself (then its own limits
                // apply).
                let verdict =
                    if matches!(message, Inbound::Binary(_)) { Verdict::Handle } else { bucket.take(link.rate()) };
                match verdict {
                    // Timed inside the box: the clock is not in every idle connection's task.
                    Verdict::Handle => {
                        Box::pin(async {
                            let started = Instant::now();
                            let handled = session.on_message(ctx, message).await;
                            observe::handled(started.elapsed());
                            handled
                        })
                        .await
                    }
                    Verdict::Drop => {
                        observe::rate_limited();
                        continue;
                    }
                    Verdict::Close => {
                        observe::rate_limited();
                        return Some((close::POLICY, Cow::Borrowed("rate limit")));
                    }
                }
            }
            Next::Info(info) => Box::pin(session.on_info(ctx, info)).await,
        };
        ctx.send_pushed();
        if let Err(e) = handled {
            return Some(failed(e));
        }
    }
}

fn failed(e: SessionError) -> (u16, Cow<'static, str>) {
    if let Some(source) = e.source() {
        tracing::error!(error = %source, "live session failed");
    }
    (e.code(), Cow::Owned(e.reason().to_owned()))
}

/// Counts a page's message and its payload bytes; gives it back.
fn observe_in(message: crate::protocol::Inbound) -> crate::protocol::Inbound {
    observe::message_in(match &message {
        crate::protocol::Inbound::Text(text) => text.len(),
        crate::protocol::Inbound::Binary(bytes) => bytes.len(),
    });
    message
}
