//! Connections whose page posts its messages (SSE): what it posted waits here for the session.
//! Their frames are written to a socket taken from hyper ([`attach_push`], written like a
//! WebSocket's), or taken by a reader ([`attach_pull`]: a response body that hyper writes, where
//! the app serves without [`crate::Listener`]). The queue, its bound, the close signal and the
//! heartbeat registry are the WebSocket's own.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

use super::{Framing, Inbox, READ_BUFFER, Shared, Wire, new_shared};
use crate::protocol::{Frame, Inbound};
use crate::pubsub::SubscriberRef;

/// Most posted messages waiting for the session; a POST beyond it is refused (busy).
const MAX_INBOUND: usize = 64;

/// The reader's side of a pull connection, kept in its queue.
#[derive(Debug)]
pub(super) struct Pull {
    /// Wakes the reader (the response body's task) when there is something to take; `None`
    /// where frames are written to a socket instead.
    pub(super) reader: Option<Waker>,
    /// What the page posted, for the session loop.
    pub(super) inbound: VecDeque<Inbound>,
    /// A heartbeat is due on the stream.
    heartbeat: bool,
}

/// A connection whose frames `Reader` takes: the handle topics and the session offer to, the
/// session loop's half, the reader, and where the page's posts go.
pub(crate) fn attach_pull(capacity: usize) -> (SubscriberRef, Inbox, Reader, Poster) {
    let pull = Pull { reader: Some(Waker::noop().clone()), inbound: VecDeque::new(), heartbeat: false };
    let shared = new_shared(capacity, None, Some(Box::new(pull)), Framing::Pulled);
    let poster = Poster { shared: Arc::downgrade(&shared) };
    (shared.clone(), Inbox { shared: shared.clone() }, Reader { shared }, poster)
}

/// A connection whose frames are written to `wire` as `framing` says (SSE events): the handle
/// topics and the session offer to, the session loop's half, and where the page's posts go.
/// `first` is written before anything else.
pub(crate) fn attach_push(
    capacity: usize,
    wire: Wire,
    framing: Framing,
    first: Frame,
) -> (SubscriberRef, Inbox, Poster) {
    let pull = Pull { reader: None, inbound: VecDeque::new(), heartbeat: false };
    let shared = new_shared(capacity, Some(wire), Some(Box::new(pull)), framing);
    shared.out().frames.push_back(first);
    let poster = Poster { shared: Arc::downgrade(&shared) };
    (shared.clone(), Inbox { shared }, poster)
}

/// What a reader took.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Frames for the page, in order, and whether a heartbeat is due.
    Frames(VecDeque<Frame>, bool),
    /// Nothing more will come: the connection ended and everything was taken.
    End,
}

/// Takes what is queued for the page. Dropping it (the client went away) ends the connection.
#[derive(Debug)]
pub(crate) struct Reader {
    shared: Arc<Shared>,
}

impl Reader {
    /// Everything queued, or `Pending` with `cx` registered until more comes.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut out = self.shared.out();
        let out = &mut *out;
        let Some(pull) = out.pull.as_mut() else { return Poll::Ready(Taken::End) };
        if !out.frames.is_empty() || pull.heartbeat {
            let heartbeat = std::mem::take(&mut pull.heartbeat);
            return Poll::Ready(Taken::Frames(std::mem::take(&mut out.frames), heartbeat));
        }
        if out.closed || out.gone {
            return Poll::Ready(Taken::End);
        }
        match &mut pull.reader {
            Some(reader) if reader.will_wake(cx.waker()) => {}
            reader => *reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut out = self.shared.out();
        out.gone = true;
        out.frames = VecDeque::new();
        drop(out);
        // The session loop hears of it and ends.
        self.shared.waker.wake();
    }
}

impl Inbox {
    /// A heartbeat is due (the registry's tick): `comment` is written on the socket behind
    /// what is queued (the task's next poll writes it), or the reader is told to write its own.
    pub(crate) fn heartbeat(&self, comment: impl FnOnce() -> Frame) {
        let mut out = self.shared.out();
        let out = &mut *out;
        let Some(pull) = out.pull.as_mut() else { return };
        match &pull.reader {
            Some(reader) => {
                pull.heartbeat = true;
                reader.wake_by_ref();
            }
            None if out.wire.is_some() => out.frames.push_back(comment()),
            None => {}
        }
    }

    /// Ready once the client of a stream on its own socket hangs up (its end of the stream, or
    /// an error), or the socket is gone; what the client sends meanwhile is read and dropped
    /// (an SSE client sends nothing after its request).
    pub(crate) fn poll_hangup(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut out = self.shared.out();
        let Some(wire) = out.wire.as_mut() else { return Poll::Ready(()) };
        let hung_up = READ_BUFFER.with(|ahead| {
            let mut ahead = ahead.borrow_mut();
            loop {
                let mut ahead = ReadBuf::new(&mut ahead[..]);
                // Counts against tokio's budget: a client that never stops sending yields.
                match Pin::new(&mut *wire).poll_read(cx, &mut ahead) {
                    Poll::Ready(Ok(())) if !ahead.filled().is_empty() => continue,
                    Poll::Ready(_) => return true,
                    Poll::Pending => return false,
                }
            }
        });
        if !hung_up {
            return Poll::Pending;
        }
        out.drop_wire();
        Poll::Ready(())
    }

    /// Drops the socket of a stream whose client stopped reading: nothing more is written.
    pub(crate) fn hang_up(&self) {
        let mut out = self.shared.out();
        out.discard_unsent();
        out.drop_wire();
    }

    /// Queues a last frame, outside the bound (the close notice, the end of the body).
    pub(crate) fn push_last(&self, frame: Frame) {
        let mut out = self.shared.out();
        let out = &mut *out;
        if let (Some(pull), false) = (&out.pull, out.gone) {
            out.frames.push_back(frame);
            if let Some(reader) = &pull.reader {
                reader.wake_by_ref();
            }
        }
    }
}

/// Why a post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostError {
    /// The connection ended.
    Gone,
    /// Too many posts wait for the session already.
    Busy,
}

/// Where the page's posts go: a weak handle, kept by the endpoint's table of streams.
#[derive(Debug, Clone)]
pub(crate) struct Poster {
    shared: Weak<Shared>,
}

impl Poster {
    /// Hands `message` to the session loop.
    pub(crate) fn post(&self, message: Inbound) -> Result<(), PostError> {
        let shared = self.shared.upgrade().ok_or(PostError::Gone)?;
        let mut out = shared.out();
        if out.closed || out.gone {
            return Err(PostError::Gone);
        }
        let pull = out.pull.as_mut().ok_or(PostError::Gone)?;
        if pull.inbound.len() >= MAX_INBOUND {
            return Err(PostError::Busy);
        }
        pull.inbound.push_back(message);
        drop(out);
        shared.waker.wake();
        Ok(())
    }

    /// Asks the connection to close with `code` (the page opened another one in its place).
    pub(crate) fn close(&self, code: u16) {
        if let Some(shared) = self.shared.upgrade() {
            shared.request_close(code);
        }
    }

    /// Whether the connection ended.
    pub(crate) fn is_gone(&self) -> bool {
        self.shared.upgrade().is_none_or(|s| {
            let out = s.out();
            out.closed || out.gone
        })
    }
}
