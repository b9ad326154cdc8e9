//! The outbound side of one connection: its bounded queue, the socket it writes to, and the
//! switch that closes it.
//!
//! # Writing from the publisher
//!
//! A broadcast does not wake a task per subscriber. The publisher writes the frame to each
//! subscriber's socket itself (a non-blocking write of bytes framed once for everybody), the way
//! uWebSockets and Bun write from their event loop. Only what the socket does not take is left in
//! the queue, and only then is the connection's task woken to finish the write when the socket
//! drains. While a connection task is being polled (a pass over what its client sent), its
//! publishes are *corked*: frames are queued, and at the end of the pass each subscriber gets one
//! vectored write of everything queued for it, so a burst of messages costs a syscall per
//! subscriber per pass rather than per message.
//!
//! # Why hand-written
//!
//! A tokio `mpsc` channel allocates a 32-slot block per channel up front and needs a task to
//! drain it, and tungstenite frames and copies every message for every socket. Here the queue is
//! an empty `VecDeque` while idle (no allocation), the socket is shared by the publisher and the
//! connection's task under one lock, and frames are written from their shared bytes.
//!
//! The socket's write readiness has one waker slot. A non-blocking write from a publisher
//! registers a no-op waker, so a publisher that leaves bytes behind hands the queue to the task
//! (`task_owns`) and wakes it; until the queue is empty again only the task writes.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::protocol::{Frame, close};
use crate::pubsub::{Info, Offer, Subscriber, SubscriberRef};

/// The socket under the WebSocket protocol.
pub(crate) type Wire = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// Most frames gathered into one vectored write (IOV_MAX is 1024). Larger writes mean fewer
/// syscalls and, on the receiving side, fewer wake-ups: 64 frames of a burst gave 2.4 M
/// deliveries/s here, 256 gave 3.1 M (BENCHMARKS.md).
const BATCH: usize = 256;

const NOT_CORKED: u32 = u32::MAX;

/// The connection task's half. Dropping it closes the queue to publishers.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

/// The stream tungstenite reads from and writes its control frames to. Its writes join the
/// same queue as everything else, so frames never interleave on the wire.
#[derive(Debug)]
pub(crate) struct Io {
    shared: Arc<Shared>,
    waker: Waker,
}

/// One connection's queue and socket: the [`Subscriber`] that topics and the session offer to.
#[derive(Debug)]
struct Shared {
    /// This connection itself, for the cork to hold while a pass lasts.
    me: Weak<Shared>,
    out: Mutex<Out>,
    waker: AtomicWaker,
    close_code: AtomicU16,
    /// Set by the [`Registry`]'s heartbeat; taken by the task.
    ping_due: AtomicBool,
}

struct Out {
    frames: VecDeque<Frame>,
    /// Bytes of the first frame already on the wire.
    written: usize,
    infos: VecDeque<Info>,
    capacity: usize,
    closed: bool,
    /// Where this connection's first frame of the current corked pass waits in that thread's
    /// cork list ([`NOT_CORKED`] if it does not). Until the pass ends nothing is written here,
    /// so that frame goes out first.
    cork_slot: u32,
    /// Which thread's cork that is ([`cork::current`]).
    cork_thread: u32,
    /// The task has been told to finish writing; nobody else writes until the queue is empty.
    task_owns: bool,
    /// The socket; `None` for a queue that never had one (tests), or once `gone`.
    wire: Option<Wire>,
    /// The peer is gone (a write failed) or the connection dropped its socket: nothing is
    /// queued or written any more, and the task ends. Every path that finds this must end the
    /// connection, never wait for a socket that will not come back.
    gone: bool,
    /// Bumped whenever bytes reach the socket; the write deadline compares it.
    progress: u32,
    /// The task has been told of a write that could not finish, and watches its deadline.
    watched: bool,
    /// Bytes read from the socket that tungstenite has not taken yet; `None` while there are
    /// none, so an idle connection holds no read buffer (see `Io`'s `read`).
    unread: Option<Bytes>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("frames", &self.frames.len()).field("infos", &self.infos.len()).finish()
    }
}

/// What the connection's task should do next.
#[derive(Debug, Clone)]
pub(crate) enum Ready {
    /// Run the session's `on_info`.
    Info(Info),
    /// Close with this code.
    Close(u16),
    /// The heartbeat ticked: check the client was heard from, and ping it.
    Ping,
    /// The socket stopped taking bytes with a write unfinished, at this count of writes that
    /// made progress: start the write deadline. Said once per stall.
    Stalled(u32),
    /// The peer is gone (a write failed, or the socket was dropped): end the connection.
    Gone,
}

/// What a write deadline found when it expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The backlog was written: no deadline any more.
    Cleared,
    /// Bytes went out since; the deadline starts again from this progress.
    Progressed(u32),
    /// Not one byte went out: the peer is not reading.
    Stuck,
}

/// A queue with no socket behind it: frames stay queued until [`Inbox::pop`] takes them.
#[cfg(test)]
pub(crate) fn outbox(capacity: usize) -> (SubscriberRef, Inbox) {
    let (outbox, inbox, _) = attach(capacity, None);
    (outbox, inbox)
}

/// A queue writing to `wire`: the handle topics and the session offer to, the task's half, and
/// the stream tungstenite reads through.
pub(crate) fn attach(capacity: usize, wire: Option<Wire>) -> (SubscriberRef, Inbox, Io) {
    let shared = Arc::new_cyclic(|me| Shared {
        me: me.clone(),
        out: Mutex::new(Out {
            frames: VecDeque::new(),
            written: 0,
            infos: VecDeque::new(),
            capacity: capacity.max(1),
            closed: false,
            cork_slot: NOT_CORKED,
            cork_thread: 0,
            task_owns: false,
            wire,
            gone: false,
            progress: 0,
            watched: false,
            unread: None,
        }),
        waker: AtomicWaker::new(),
        close_code: AtomicU16::new(0),
        ping_due: AtomicBool::new(false),
    });
    let waker = Waker::from(shared.clone());
    (shared.clone(), Inbox { shared: shared.clone() }, Io { shared, waker })
}

impl Out {
    fn queued(&self) -> usize {
        self.frames.len() + self.infos.len()
    }

    /// Writes queued frames, up to [`BATCH`] a syscall, until the queue is empty (`Ready(Ok)`)
    /// or the socket is full (`Pending`, with `cx` registered). Without a socket, `Pending`.
    ///
    /// `Pending` hands the queue to the connection's task (`task_owns`): whoever gets it either
    /// is that task, or wakes it.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let written = self.write_queued(cx);
        if written.is_pending() {
            self.task_owns = true;
        }
        written
    }

    fn write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cork_slot != NOT_CORKED {
            // The pass's first frame is still in the cork; its end wakes the task, which
            // owns the queue from here (see `poll_write_out`) and writes it.
            return Poll::Pending;
        }
        if self.gone {
            // No socket will come back: a waiter must end, not wait.
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let Out { frames, written, wire, progress, .. } = self;
        let Some(wire) = wire.as_mut() else {
            return if frames.is_empty() { Poll::Ready(Ok(())) } else { Poll::Pending };
        };
        while !frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); BATCH];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(frames.iter()) {
                let bytes = frame.wire();
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
                let left = frames[0].wire().len() - *written;
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
        self.task_owns = false;
        Poll::Ready(Ok(()))
    }

    /// Writes what it can without waiting, as someone other than the connection's task.
    /// Returns whether the task must be woken to finish.
    fn write_now(&mut self) -> bool {
        if self.task_owns || self.frames.is_empty() {
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
    fn write_single(&mut self, frame: Frame) -> bool {
        debug_assert!(self.frames.is_empty() && !self.task_owns && self.cork_slot == NOT_CORKED);
        if self.gone {
            // The peer went while the frame waited in a cork: nobody to write it to.
            return false;
        }
        let Some(wire) = self.wire.as_mut() else {
            self.frames.push_back(frame);
            return true;
        };
        match outside_budget(|cx| Pin::new(wire).poll_write(cx, frame.wire())) {
            Poll::Ready(Ok(n)) if n == frame.wire().len() => false,
            Poll::Ready(Ok(0)) => {
                self.gone(&io::ErrorKind::WriteZero.into());
                true
            }
            Poll::Ready(Ok(n)) => {
                self.written = n;
                self.frames.push_back(frame);
                self.task_owns = true;
                true
            }
            Poll::Pending => {
                self.frames.push_back(frame);
                self.task_owns = true;
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
    fn uncork(&mut self, first: Frame) -> bool {
        self.cork_slot = NOT_CORKED;
        if self.gone {
            return false;
        }
        if self.frames.is_empty() && !self.task_owns {
            return self.write_single(first);
        }
        // Nothing was written while corked, so no frame in the queue is partly written.
        self.frames.push_front(first);
        self.task_owns || self.write_now()
    }

    /// The peer is gone: drop the socket (the reader sees the end of the stream) and the queue,
    /// and refuse everything from now on. Whoever finds this wakes the task, whose next
    /// [`Inbox::poll_ready`] answers [`Ready::Gone`].
    fn gone(&mut self, e: &io::Error) {
        tracing::debug!(error = %e, "websocket write failed");
        self.drop_wire();
    }

    fn drop_wire(&mut self) {
        self.gone = true;
        self.wire = None;
        self.frames = VecDeque::new();
        self.written = 0;
    }

    /// Drops queued frames no byte of which was written (a partly written one is kept so the
    /// stream stays well-formed), before a close that should not wait for them.
    fn discard_unsent(&mut self) {
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

impl Shared {
    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_close(&self, code: u16) {
        // The first code asked for wins.
        if self.close_code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.waker.wake();
        }
    }

    /// The queue, if it takes one more item; else why not (a full queue asks for the close).
    fn admit(&self) -> Result<MutexGuard<'_, Out>, Offer> {
        let out = self.out();
        if out.closed || out.gone {
            return Err(Offer::Closed);
        }
        if out.queued() >= out.capacity {
            drop(out);
            self.request_close(close::SLOW_CONSUMER);
            return Err(Offer::Overflowed);
        }
        Ok(out)
    }
}

impl Subscriber for Shared {
    /// Sends `frame` without waiting: written to the socket at once (or at the end of the
    /// current corked pass), queued only where the socket is full. A full queue means the client
    /// reads slower than we write: it is closed with [`close::SLOW_CONSUMER`] instead of slowing
    /// the sender down.
    fn offer(&self, frame: Frame) -> Offer {
        let cork = cork::current();
        let mut out = match self.admit() {
            Ok(out) => out,
            Err(refused) => return refused,
        };
        let wake = if let Some(thread) = cork.filter(|_| out.cork_slot == NOT_CORKED && out.frames.is_empty()) {
            // The pass's first frame for this connection waits in the cork, not in the queue.
            out.cork_slot = cork::hold(self.me.upgrade().expect("a live connection offers"), frame);
            out.cork_thread = thread;
            false
        } else if cork.is_some_and(|thread| out.cork_slot != NOT_CORKED && out.cork_thread == thread) {
            out.frames.push_back(frame);
            // A long pass writes every batch rather than queue it all (and well before the
            // queue's bound, which is for slow clients, not for long passes).
            if out.frames.len() + 1 >= BATCH.min(out.capacity / 2).max(1) {
                let first = cork::take(out.cork_slot);
                out.uncork(first)
            } else {
                false
            }
        } else if out.frames.is_empty() && !out.task_owns && out.cork_slot == NOT_CORKED {
            out.write_single(frame)
        } else {
            // Behind a backlog (the task writes it), or behind another thread's pass.
            out.frames.push_back(frame);
            out.write_now()
        };
        drop(out);
        if wake {
            self.waker.wake();
        }
        Offer::Queued
    }

    /// Queues a value for the session's `on_info`, with the same bound as frames.
    fn offer_info(&self, info: Info) -> Offer {
        let mut out = match self.admit() {
            Ok(out) => out,
            Err(refused) => return refused,
        };
        let was_empty = out.infos.is_empty();
        out.infos.push_back(info);
        drop(out);
        if was_empty {
            self.waker.wake();
        }
        Offer::Queued
    }

    fn is_closed(&self) -> bool {
        self.out().closed
    }
}

impl Inbox {
    /// Writes what is queued as the socket allows, and is ready when the task has something to
    /// do: a close request (which wins), an info for the session, a failed socket.
    ///
    /// Every answer but `Pending` is work the task does before it asks again, and `Pending` is
    /// only answered with a waker registered where the awaited progress happens (the socket, the
    /// queue, a pass's end): asking again without either would spin the worker thread.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        self.shared.waker.register(cx.waker());
        let mut out = self.shared.out();
        if out.gone {
            return Poll::Ready(Ready::Gone);
        }
        if let Some(code) = self.close_requested() {
            return Poll::Ready(Ready::Close(code));
        }
        // Without a socket (a test's queue) frames wait to be popped.
        if !out.frames.is_empty() && out.wire.is_some() {
            match out.poll_write_out(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    out.gone(&e);
                    return Poll::Ready(Ready::Gone);
                }
                // The socket is full (not a pass's cork, which ends by itself): the task starts
                // the write deadline, once per stall.
                Poll::Pending if out.cork_slot == NOT_CORKED && !out.watched => {
                    out.watched = true;
                    return Poll::Ready(Ready::Stalled(out.progress));
                }
                Poll::Pending => {}
            }
        }
        if let Some(info) = out.infos.pop_front() {
            return Poll::Ready(Ready::Info(info));
        }
        drop(out);
        if self.shared.ping_due.swap(false, Ordering::AcqRel) {
            return Poll::Ready(Ready::Ping);
        }
        Poll::Pending
    }

    pub(crate) fn ready(&self) -> impl Future<Output = Ready> + '_ {
        std::future::poll_fn(|cx| self.poll_ready(cx))
    }

    /// What became of a write that stalled at `progress`, now that its deadline expired.
    pub(crate) fn stall(&self, progress: u32) -> Stall {
        let mut out = self.shared.out();
        if out.frames.is_empty() || out.gone {
            out.watched = false;
            Stall::Cleared
        } else if out.progress != progress {
            Stall::Progressed(out.progress)
        } else {
            Stall::Stuck
        }
    }

    /// Resolves once everything queued has been written (or the socket is gone).
    pub(crate) fn flushed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            let mut out = self.shared.out();
            match out.poll_write_out(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(()),
                Poll::Ready(Err(e)) => {
                    out.gone(&e);
                    Poll::Ready(())
                }
                Poll::Pending if out.wire.is_none() => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Resolves once everything queued has been written and the socket's sending side is shut
    /// down (a FIN: the server closes the TCP connection first, RFC 6455 section 7.1.1), or the
    /// socket is gone.
    pub(crate) fn shutdown_write(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            let mut out = self.shared.out();
            match out.poll_write_out(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    out.gone(&e);
                    return Poll::Ready(());
                }
                Poll::Pending if out.wire.is_none() => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
            let Some(wire) = out.wire.as_mut() else { return Poll::Ready(()) };
            Pin::new(wire).poll_shutdown(cx).map(|_| ())
        })
    }

    /// Reads and drops what the peer still sends, until its end of the stream or an error: after
    /// failing a connection, nothing more of the client's is processed (RFC 6455 section 7.1.7),
    /// but closing with unread bytes would reset the connection and could destroy the close
    /// frame on its way. Wrap it in a timeout: a peer may never stop sending.
    pub(crate) fn discard_input(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            let mut out = self.shared.out();
            out.unread = None;
            let Some(wire) = out.wire.as_mut() else { return Poll::Ready(()) };
            READ_BUFFER.with(|ahead| {
                let mut ahead = ahead.borrow_mut();
                loop {
                    let mut ahead = ReadBuf::new(&mut ahead[..]);
                    // A read counts against tokio's budget: a peer that never stops sending
                    // makes this yield, not spin.
                    match Pin::new(&mut *wire).poll_read(cx, &mut ahead) {
                        Poll::Ready(Ok(())) if !ahead.filled().is_empty() => continue,
                        Poll::Ready(_) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
        })
    }

    /// Registers the task's waker: what wakes the inbox, and what `Io`'s reads and writes wake.
    pub(crate) fn register(&self, waker: &Waker) {
        self.shared.waker.register(waker);
    }

    /// Asks this connection to close with `code`; the first request wins.
    pub(crate) fn close(&self, code: u16) {
        self.shared.request_close(code);
    }

    pub(crate) fn close_requested(&self) -> Option<u16> {
        match self.shared.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Queues a control frame of the server's own (a ping): outside the bound, written by the
    /// task's next [`Inbox::poll_ready`].
    pub(crate) fn push_control(&self, frame: Frame) {
        let mut out = self.shared.out();
        if out.wire.is_some() {
            out.frames.push_back(frame);
        }
    }

    /// See [`Out::discard_unsent`].
    pub(crate) fn discard_unsent(&self) {
        self.shared.out().discard_unsent();
    }

    /// Takes the oldest queued frame (for tests, which have no socket).
    #[cfg(test)]
    pub(crate) fn pop(&self) -> Option<Frame> {
        self.shared.out().frames.pop_front()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut out = self.shared.out();
        out.closed = true;
        out.infos = VecDeque::new();
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Closes the TCP connection now, even while a topic or a timer still holds the queue.
        // (A queue that never had a socket stays as it is: its frames wait to be popped.)
        let mut out = self.shared.out();
        if out.wire.is_some() {
            out.drop_wire();
        }
    }
}

impl Io {
    /// Runs `f` on the queue with a context whose waker wakes the connection's task (through the
    /// inbox's waker, which the task registers on every poll).
    fn with<T>(&self, f: impl FnOnce(&mut Out, &mut Context<'_>) -> T) -> T {
        let mut cx = Context::from_waker(&self.waker);
        f(&mut self.shared.out(), &mut cx)
    }
}

/// Wakes whichever task last registered with the connection's inbox.
impl std::task::Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.waker.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.waker.wake();
    }
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// What one read from a socket can bring: one buffer per thread, shared by its connections.
const READ_AHEAD: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_AHEAD].into_boxed_slice());
}

/// Reads through the thread's buffer, as uWebSockets does: a connection keeps only what
/// tungstenite has not taken yet, and nothing while idle. (tungstenite's own buffer stays
/// small, see [`crate::Limits::read_buffer`], and asks for a few bytes at a time; those come
/// from `unread` without a syscall.)
impl io::Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|out, cx| {
            // Reading also moves the queue along (the close handshake reads while it writes).
            if !out.frames.is_empty() {
                let _ = out.poll_write_out(cx);
            }
            if let Some(unread) = out.unread.as_mut() {
                let n = unread.len().min(buf.len());
                buf[..n].copy_from_slice(&unread[..n]);
                bytes::Buf::advance(unread, n);
                if unread.is_empty() {
                    out.unread = None;
                }
                return Ok(n);
            }
            let Some(wire) = out.wire.as_mut() else { return Ok(0) };
            READ_BUFFER.with(|ahead| {
                let mut ahead = ahead.borrow_mut();
                let mut ahead = ReadBuf::new(&mut ahead[..]);
                would_block(Pin::new(wire).poll_read(cx, &mut ahead))?;
                let read = ahead.filled();
                let n = read.len().min(buf.len());
                buf[..n].copy_from_slice(&read[..n]);
                if read.len() > n {
                    out.unread = Some(Bytes::copy_from_slice(&read[n..]));
                }
                Ok(n)
            })
        })
    }
}

impl io::Write for Io {
    /// tungstenite's own frames (pongs, close frames) join the queue whole.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|out, cx| {
            if out.wire.is_none() {
                return Err(io::ErrorKind::NotConnected.into());
            }
            out.frames.push_back(Frame::raw(Bytes::copy_from_slice(buf)));
            let _ = out.poll_write_out(cx);
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|out, cx| would_block(out.poll_write_out(cx)))
    }
}

/// Every connection of one heartbeat period: one timer pings them all, and a shutdown closes
/// them all, so a connection holds no timer and no cancellation future of its own.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    connections: Mutex<Vec<Weak<Shared>>>,
}

impl Registry {
    pub(crate) fn add(&self, inbox: &Inbox) {
        self.list().push(Arc::downgrade(&inbox.shared));
    }

    fn list(&self) -> MutexGuard<'_, Vec<Weak<Shared>>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every open connection to ping its client, forgetting those that ended.
    pub(crate) fn tick(&self) {
        let mut list = self.list();
        list.retain(|weak| match weak.upgrade() {
            Some(shared) if !shared.out().closed => {
                shared.ping_due.store(true, Ordering::Release);
                shared.waker.wake();
                true
            }
            _ => false,
        });
    }

    /// Asks every open connection to close with `code`.
    pub(crate) fn close_all(&self, code: u16) {
        for shared in self.list().iter().filter_map(Weak::upgrade) {
            shared.request_close(code);
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection's future, corked: what it publishes while being polled is written to each
    /// subscriber once, when the poll ends.
    pub(crate) struct Corked<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Corked<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future> Future for Corked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _cork = cork::Guard::new();
        self.project().inner.poll(cx)
    }
}

/// The current thread's cork: the queues that got frames during the pass, to write when it ends.
/// Thread-local because a pass is one poll of one task, which never leaves its thread.
mod cork {
    use super::*;

    struct Cork {
        /// This thread's own number, to tell whose cork holds a connection's frame.
        id: u32,
        depth: u32,
        /// Each connection that got frames in this pass, with the first of them (taken out
        /// when a long pass writes it early).
        held: Vec<Held>,
    }

    thread_local! {
        static CORK: RefCell<Cork> = RefCell::new(Cork {
            id: {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            depth: 0,
            held: Vec::new(),
        });
    }

    /// The current thread's cork, if a pass is running on it.
    pub(super) fn current() -> Option<u32> {
        CORK.with(|c| {
            let c = c.borrow();
            (c.depth > 0).then_some(c.id)
        })
    }

    #[cfg(test)]
    pub(super) fn active() -> bool {
        current().is_some()
    }

    /// Holds `frame` for `shared` until the pass ends; returns its slot.
    pub(super) fn hold(shared: Arc<Shared>, frame: Frame) -> u32 {
        CORK.with(|c| {
            let mut c = c.borrow_mut();
            c.held.push((shared, Some(frame)));
            u32::try_from(c.held.len() - 1).expect("fewer than 4 billion subscribers in a pass")
        })
    }

    /// Takes back the frame held in `slot`.
    pub(super) fn take(slot: u32) -> Frame {
        CORK.with(|c| c.borrow_mut().held[slot as usize].1.take()).expect("a held frame is taken once")
    }

    /// Passes that reach this many connections are written from two threads: the thread of the
    /// pass and a scoped helper, joined before the poll returns, so a pass still ends with all
    /// of its frames handed to the kernel, in order, and nothing outlives it. The writes are
    /// kernel time (loopback TCP does the receivers' work too), so a second core shortens the
    /// pass: with it, livehtml has the lowest closed-loop p99 at 5,000 clients in BENCHMARKS.md.
    /// A thread costs tens of microseconds to start; such a pass costs milliseconds.
    const PARALLEL: usize = 256;

    /// Connections a thread takes at a time from a wide pass.
    const CHUNK: usize = 32;

    type Held = (Arc<Shared>, Option<Frame>);

    fn two_cores() -> bool {
        static CORES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *CORES.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
    }

    fn write_out(held: &mut [Held]) {
        for (shared, first) in held {
            let Some(first) = first.take() else { continue };
            let mut out = shared.out();
            let wake = out.uncork(first);
            drop(out);
            if wake {
                shared.waker.wake();
            }
        }
    }

    /// Corks the thread until dropped; the outermost guard writes everything out, even when
    /// the poll panicked.
    pub(super) struct Guard(());

    impl Guard {
        pub(super) fn new() -> Self {
            CORK.with(|c| c.borrow_mut().depth += 1);
            Self(())
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut held = CORK.with(|c| {
                let mut c = c.borrow_mut();
                c.depth -= 1;
                if c.depth == 0 { std::mem::take(&mut c.held) } else { Vec::new() }
            });
            if held.len() >= PARALLEL && two_cores() {
                // Both threads take chunks from one iterator: the cost of a write varies (a
                // sleeping reader's wake-up, a full socket), and with fixed halves the thread
                // that finished first waited for the other while a core sat idle.
                let chunks = Mutex::new(held.chunks_mut(CHUNK));
                let work = || {
                    loop {
                        // The lock is held to take a chunk, not while writing it.
                        let Some(chunk) = chunks.lock().unwrap_or_else(|e| e.into_inner()).next() else { break };
                        write_out(chunk);
                    }
                };
                std::thread::scope(|scope| {
                    scope.spawn(work);
                    work();
                });
            } else {
                write_out(&mut held);
            }
            held.clear();
            // Keep the list's allocation for the next pass.
            CORK.with(|c| {
                let mut c = c.borrow_mut();
                if c.held.capacity() < held.capacity() {
                    c.held = held;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_requests_slow_consumer_close() {
        let (outbox, inbox) = outbox(2);
        assert_eq!(outbox.offer(Frame::text("1")), Offer::Queued);
        assert_eq!(outbox.offer(Frame::text("2")), Offer::Queued);
        assert_eq!(outbox.offer(Frame::text("3")), Offer::Overflowed);
        assert!(matches!(inbox.ready().await, Ready::Close(close::SLOW_CONSUMER)));
        assert!(matches!(inbox.pop(), Some(f) if f == Frame::text("1")));
        drop(inbox);
        assert_eq!(outbox.offer(Frame::text("4")), Offer::Closed);
        assert!(outbox.is_closed());
    }

    #[tokio::test]
    async fn first_close_code_wins() {
        let (_outbox, inbox) = outbox(1);
        inbox.close(close::RESTART);
        inbox.close(close::SLOW_CONSUMER);
        assert!(matches!(inbox.ready().await, Ready::Close(close::RESTART)));
    }

    #[tokio::test]
    async fn a_queued_info_wakes_the_waiting_task() {
        let (outbox, inbox) = outbox(4);
        let waiter = tokio::spawn(async move { inbox.ready().await });
        tokio::task::yield_now().await;
        outbox.offer_info(Info::new("t", 7u8));
        let Ready::Info(info) = waiter.await.unwrap() else { panic!("an info") };
        assert_eq!(info.get::<u8>(), Some(&7));
    }

    #[tokio::test]
    async fn corked_frames_are_held_until_the_pass_ends() {
        let (outbox, inbox) = outbox(8);
        let during = Corked::new(async {
            outbox.offer(Frame::text("a"));
            outbox.offer(Frame::text("b"));
            cork::active()
        })
        .await;
        assert!(during && !cork::active());
        assert_eq!(inbox.shared.out().cork_slot, NOT_CORKED);
        assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("a")));
        assert!(matches!(inbox.pop(), Some(f) if f.as_text() == Some("b")));
    }

    #[tokio::test]
    async fn a_long_pass_keeps_its_order_across_batches() {
        let (outbox, inbox) = outbox(1024);
        let count = 3 * BATCH + 5;
        Corked::new(async {
            for i in 0..count {
                assert_eq!(outbox.offer(Frame::text(i.to_string())), Offer::Queued);
            }
        })
        .await;
        for i in 0..count {
            let Some(f) = inbox.pop() else { panic!("frame {i}") };
            assert_eq!(f.as_text(), Some(i.to_string().as_str()));
        }
        assert!(inbox.pop().is_none());
    }

    #[tokio::test]
    async fn a_wide_pass_is_written_from_two_threads_in_order() {
        let queues: Vec<_> = (0..600).map(|_| outbox(8)).collect();
        Corked::new(async {
            for i in 0..3 {
                for (outbox, _) in &queues {
                    assert_eq!(outbox.offer(Frame::text(i.to_string())), Offer::Queued);
                }
            }
        })
        .await;
        for (_, inbox) in &queues {
            for i in 0..3 {
                let Some(f) = inbox.pop() else { panic!("frame {i}") };
                assert_eq!(f.as_text(), Some(i.to_string().as_str()));
            }
        }
    }

    /// The livelock of issue 9: frames offered after the socket failed were queued, and the task
    /// was told `Frames` with no socket to write them to, over and over.
    #[tokio::test]
    async fn a_gone_socket_refuses_everything_and_ends_the_task() {
        let (outbox, inbox) = outbox(8);
        inbox.shared.out().wire = None;
        inbox.shared.out().gone(&io::ErrorKind::BrokenPipe.into());
        assert_eq!(outbox.offer(Frame::text("after")), Offer::Closed);
        assert_eq!(outbox.offer_info(Info::new("t", 1u8)), Offer::Closed);
        inbox.push_control(Frame::ping());
        assert!(inbox.pop().is_none(), "nothing queued for a socket that is gone");
        assert!(matches!(inbox.ready().await, Ready::Gone));
        // Waiters on the queue end too.
        inbox.flushed().await;
        inbox.shutdown_write().await;
    }

    #[tokio::test]
    async fn a_stall_is_cleared_progressed_or_stuck() {
        let (outbox, inbox) = outbox(8);
        assert_eq!(inbox.stall(0), Stall::Cleared);
        outbox.offer(Frame::text("a"));
        assert_eq!(inbox.stall(0), Stall::Stuck);
        inbox.shared.out().progress = 3;
        assert_eq!(inbox.stall(0), Stall::Progressed(3));
        assert_eq!(inbox.stall(3), Stall::Stuck);
    }

    #[test]
    fn discarding_keeps_a_partly_written_frame() {
        let (outbox, inbox) = outbox(8);
        outbox.offer(Frame::text("a"));
        outbox.offer(Frame::text("b"));
        inbox.shared.out().written = 1;
        inbox.discard_unsent();
        assert_eq!(inbox.shared.out().frames.len(), 1);
        inbox.shared.out().written = 0;
        inbox.discard_unsent();
        assert!(inbox.pop().is_none());
    }
}
