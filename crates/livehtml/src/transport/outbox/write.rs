//! The write engine: queued frames out to the socket, from the publisher or the task.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;

use super::{BATCH, Framing, Out, Writer};
use crate::protocol::Frame;

impl Out {
    /// Writes queued frames, up to [`BATCH`] a syscall, until the queue is empty (`Ready(Ok)`)
    /// or the socket is full (`Pending`, with `cx` registered). Without a socket, `Pending`.
    ///
    /// `Pending` hands the queue to the connection's task ([`Writer::Task`], after the pass if
    /// one is corked): whoever gets it either is that task, or wakes it.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let written = self.write_queued(cx);
        if written.is_pending() {
            self.writer = match self.writer {
                Writer::Corked { slot, thread, .. } => Writer::Corked { slot, thread, then_task: true },
                Writer::Anyone | Writer::Task => Writer::Task,
            };
        }
        written
    }

    pub(super) fn write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.corked() {
            // The pass's first frame is still in the cork; its end wakes the task, which
            // owns the queue from here (see `poll_write_out`) and writes it.
            return Poll::Pending;
        }
        if self.gone {
            // No socket will come back: a waiter must end, not wait.
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if self.wire.is_none() {
            return if self.frames.is_empty() { Poll::Ready(Ok(())) } else { Poll::Pending };
        }
        if matches!(self.framing, Framing::Sse { .. }) {
            return self.write_events(cx);
        }
        let Out { frames, written, wire, progress, framing, .. } = self;
        let Some(wire) = wire.as_mut() else { return Poll::Pending };
        while !frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); BATCH];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(frames.iter()) {
                let bytes = framing.websocket(frame);
                *slot = IoSlice::new(if count == 0 { &bytes[*written..] } else { bytes });
                count += 1;
            }
            // One frame is the common case (a closed-loop broadcast): `write` costs the kernel
            // less than a one-element `writev`.
            let wrote = if count == 1 {
                Pin::new(&mut *wire).poll_write(cx, &slices[0])
            } else {
                Pin::new(&mut *wire).poll_write_vectored(cx, &slices[..count])
            };
            let mut n = match wrote {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            };
            *progress = progress.wrapping_add(1);
            while n > 0 {
                let left = framing.websocket(&frames[0]).len() - *written;
                if n < left {
                    *written += n;
                    break;
                }
                n -= left;
                *written = 0;
                frames.pop_front();
            }
        }
        // An idle connection keeps no buffer: a burst's queue is given back once written.
        *frames = VecDeque::new();
        self.writer = Writer::Anyone;
        Poll::Ready(Ok(()))
    }

    /// Writes what it can without waiting, as someone other than the connection's task.
    /// Returns whether the task must be woken to finish.
    pub(super) fn write_now(&mut self) -> bool {
        if self.writer == Writer::Task || self.frames.is_empty() {
            return false;
        }
        match outside_budget(|cx| self.poll_write_out(cx)) {
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(e)) => {
                self.gone(&e);
                true
            }
            // The no-op waker now sits in the socket's write slot: the task takes over.
            Poll::Pending => true,
        }
    }

    /// Writes `frame`, which nothing is queued before, straight from its shared bytes: no
    /// queue, no allocation, unless the socket does not take it whole. Returns whether the task
    /// must be woken to finish.
    pub(super) fn write_single(&mut self, frame: Frame) -> bool {
        debug_assert!(self.frames.is_empty() && self.writer == Writer::Anyone);
        if self.gone {
            // The peer went while the frame waited in a cork: nobody to write it to.
            return false;
        }
        let Some(wire) = self.wire.as_mut() else {
            self.frames.push_back(frame);
            return true;
        };
        let mut total = frame.wire().len();
        let written = match &mut self.framing {
            Framing::WebSocket | Framing::Pulled => outside_budget(|cx| Pin::new(wire).poll_write(cx, frame.wire())),
            framing @ (Framing::Stamped | Framing::Deflate { .. }) => {
                let bytes = framing.websocket(&frame);
                total = bytes.len();
                outside_budget(|cx| Pin::new(wire).poll_write(cx, bytes))
            }
            framing => outside_budget(|cx| {
                let (written, whole) = Out::write_one_event(wire, framing, &frame, cx);
                total = whole;
                written
            }),
        };
        match written {
            Poll::Ready(Ok(n)) if n == total => false,
            Poll::Ready(Ok(0)) => {
                self.gone(&io::ErrorKind::WriteZero.into());
                true
            }
            Poll::Ready(Ok(n)) => {
                self.written = n;
                self.frames.push_back(frame);
                self.writer = Writer::Task;
                true
            }
            Poll::Pending => {
                self.frames.push_back(frame);
                self.writer = Writer::Task;
                true
            }
            Poll::Ready(Err(e)) => {
                self.gone(&e);
                true
            }
        }
    }

    /// The pass that held `first` ended (or its queue grew to a batch): `first` goes in front
    /// of what the pass queued behind it, and out. Returns whether the task must be woken.
    pub(super) fn uncork(&mut self, first: Frame) -> bool {
        let task = matches!(self.writer, Writer::Corked { then_task: true, .. } | Writer::Task);
        self.writer = if task { Writer::Task } else { Writer::Anyone };
        if self.gone {
            return false;
        }
        if self.frames.is_empty() && !task {
            return self.write_single(first);
        }
        // Nothing was written while corked, so no frame in the queue is partly written.
        self.frames.push_front(first);
        task || self.write_now()
    }

    /// The peer is gone: drop the socket (the reader sees the end of the stream) and the queue,
    /// and refuse everything from now on. Whoever finds this wakes the task, whose next
    /// [`Inbox::poll_ready`] answers [`Ready::Gone`].
    pub(super) fn gone(&mut self, e: &io::Error) {
        tracing::debug!(error = %e, "websocket write failed");
        self.drop_wire();
    }

    pub(super) fn drop_wire(&mut self) {
        self.gone = true;
        self.wire = None;
        self.frames = VecDeque::new();
        self.written = 0;
    }

    /// Drops queued frames no byte of which was written (a partly written one is kept so the
    /// stream stays well-formed), before a close that should not wait for them.
    pub(super) fn discard_unsent(&mut self) {
        let keep = usize::from(self.written > 0);
        self.frames.truncate(keep);
        self.infos.clear();
    }
}

/// Runs `write` with a no-op waker, outside tokio's cooperative budget.
///
/// A publisher writes to a thousand sockets in one go. Inside a task, tokio allows 128 I/O
/// operations per poll and then answers `Pending` to force a yield; here that would push every
/// later subscriber's write to its own task, the very wake-ups this module avoids. The budget is
/// for fairness between tasks: a publisher's writes are bounded by its subscribers.
fn outside_budget<T>(write: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
    let mut write = Some(write);
    let mut cx = Context::from_waker(Waker::noop());
    let unconstrained = tokio::task::coop::unconstrained(std::future::poll_fn(|cx| {
        let write = write.take().expect("polled once");
        Poll::Ready(write(cx))
    }));
    match std::pin::pin!(unconstrained).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => unreachable!("the closure is always ready"),
    }
}
