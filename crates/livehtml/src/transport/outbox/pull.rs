//! Connections whose frames a reader takes instead of a socket: an SSE response body pulls what
//! is queued, and the page's messages arrive by POST. The queue, its bound, the close signal and
//! the heartbeat registry are the WebSocket's own.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use super::{Inbox, Shared, new_shared};
use crate::protocol::{Frame, Inbound};
use crate::pubsub::SubscriberRef;

/// Most posted messages waiting for the session; a POST beyond it is refused (busy).
const MAX_INBOUND: usize = 64;

/// The reader's side of a pull connection, kept in its queue.
#[derive(Debug)]
pub(super) struct Pull {
    /// Wakes the reader (the response body's task) when there is something to take.
    pub(super) reader: Waker,
    /// What the page posted, for the session loop.
    pub(super) inbound: VecDeque<Inbound>,
    /// A heartbeat is due on the stream.
    heartbeat: bool,
}

/// A connection whose frames `Reader` takes: the handle topics and the session offer to, the
/// session loop's half, the reader, and where the page's posts go.
pub(crate) fn attach_pull(capacity: usize) -> (SubscriberRef, Inbox, Reader, Poster) {
    let pull = Pull { reader: Waker::noop().clone(), inbound: VecDeque::new(), heartbeat: false };
    let shared = new_shared(capacity, None, Some(Box::new(pull)));
    let poster = Poster { shared: Arc::downgrade(&shared) };
    (shared.clone(), Inbox { shared: shared.clone() }, Reader { shared }, poster)
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
        if !pull.reader.will_wake(cx.waker()) {
            pull.reader = cx.waker().clone();
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
    /// Tells the reader a heartbeat is due (the registry's tick, for a pull connection).
    pub(crate) fn heartbeat_to_reader(&self) {
        let mut out = self.shared.out();
        if let Some(pull) = out.pull.as_mut() {
            pull.heartbeat = true;
            pull.reader.wake_by_ref();
        }
    }

    /// Queues a last frame for the reader, outside the bound (the close notice).
    pub(crate) fn push_last(&self, frame: Frame) {
        let mut out = self.shared.out();
        let out = &mut *out;
        if let (Some(pull), false) = (&out.pull, out.gone) {
            out.frames.push_back(frame);
            pull.reader.wake_by_ref();
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

    /// Whether the connection ended.
    pub(crate) fn is_gone(&self) -> bool {
        self.shared.upgrade().is_none_or(|s| {
            let out = s.out();
            out.closed || out.gone
        })
    }
}
