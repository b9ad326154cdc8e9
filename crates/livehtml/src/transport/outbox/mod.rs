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
//! subscriber per pass rather than per message. A publish from anywhere else is corked for its
//! own fan-out ([`Subscriber::batch`]), so that a wide one is written from two threads too.
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
//! (`Writer::Task`) and wakes it; until the queue is empty again only the task writes.
//!
//! The module's parts: this file (the queue, its close signal, what the task is told), `write`
//! (the write engine), `stream` (the stream tungstenite reads through), `cork` (corked passes),
//! `registry` (one heartbeat and shutdown switch for many connections).

use std::collections::VecDeque;
use std::future::Future;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::protocol::{Frame, close};
use crate::pubsub::{Info, Offer, Subscriber, SubscriberRef};

mod cork;
mod events;
mod pull;
mod registry;
mod stream;
mod wire;
mod write;

pub(crate) use cork::Corked;
#[cfg(test)]
pub(crate) use cork::active as corked_now;
pub(crate) use events::{Framing, LAST_CHUNK, chunk};
pub(crate) use pull::{PostError, Poster, Reader, Taken, attach_pull, attach_push};
pub(crate) use registry::Registry;
pub(crate) use stream::Io;
use stream::READ_BUFFER;
pub(crate) use wire::Wire;

/// Most frames gathered into one vectored write (IOV_MAX is 1024). Larger writes mean fewer
/// syscalls and, on the receiving side, fewer wake-ups (BENCHMARKS.md compares batch sizes).
const BATCH: usize = 256;

/// Who may write a connection's queue to its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Whoever holds the lock (a publisher, the task): the queue is empty or being written.
    Anyone,
    /// The task has been told to finish writing; nobody else writes until the queue is empty.
    Task,
    /// The first frame of a corked pass waits in the cork of thread `thread`, at `slot` of its
    /// list. Until the pass ends nothing is written here, so that frame goes out first.
    /// `then_task`: the task owns the queue once the pass ends (it was told to write).
    Corked { slot: u32, thread: u32, then_task: bool },
}

/// The connection task's half. Dropping it closes the queue to publishers.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
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
    writer: Writer,
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
    /// Bytes read from the socket that tungstenite has not taken yet, from `unread_at` on;
    /// `None` while there are none, so an idle connection holds no read buffer (see `Io`'s
    /// `read`). A boxed slice and a `u32` rather than `Bytes`: 16 bytes less in every
    /// connection's queue, which then fits a smaller allocation.
    unread: Option<Box<[u8]>>,
    /// Where tungstenite is in `unread` (0 while it is `None`).
    unread_at: u32,
    /// permessage-deflate: the client's frames being rewritten for tungstenite (a compressed
    /// message collected, a frame not yet whole); `None` while there is nothing.
    inflater: Option<Box<crate::protocol::deflate::Inflater>>,
    /// For a connection whose page posts its messages (SSE): what it posted, and the reader
    /// that takes its frames where they are not written to a socket (an SSE response body that
    /// hyper writes). Boxed: a WebSocket has none.
    pull: Option<Box<pull::Pull>>,
    /// How frames go on the socket.
    framing: Framing,
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
    /// The page posted a message (a connection whose frames a reader takes: SSE).
    Message(crate::protocol::Inbound),
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
    let (outbox, inbox, _) = attach(capacity, None, Framing::WebSocket);
    (outbox, inbox)
}

/// A queue writing to `wire`: the handle topics and the session offer to, the task's half, and
/// the stream tungstenite reads through.
/// `framing`: [`Framing::WebSocket`], or [`Framing::Stamped`] for livehtml.js.
pub(crate) fn attach(capacity: usize, wire: Option<Wire>, framing: Framing) -> (SubscriberRef, Inbox, Io) {
    let shared = new_shared(capacity, wire, None, framing);
    let waker = Waker::from(shared.clone());
    (shared.clone(), Inbox { shared: shared.clone() }, Io { shared, waker })
}

fn new_shared(capacity: usize, wire: Option<Wire>, pull: Option<Box<pull::Pull>>, framing: Framing) -> Arc<Shared> {
    Arc::new_cyclic(|me| Shared {
        me: me.clone(),
        out: Mutex::new(Out {
            frames: VecDeque::new(),
            written: 0,
            infos: VecDeque::new(),
            capacity: capacity.max(1),
            closed: false,
            writer: Writer::Anyone,
            wire,
            gone: false,
            progress: 0,
            watched: false,
            unread: None,
            unread_at: 0,
            inflater: None,
            pull,
            framing,
        }),
        waker: AtomicWaker::new(),
        close_code: AtomicU16::new(0),
        ping_due: AtomicBool::new(false),
    })
}

impl Out {
    fn queued(&self) -> usize {
        self.frames.len() + self.infos.len()
    }

    /// Whether a pass holds this connection's first frame in its cork.
    fn corked(&self) -> bool {
        matches!(self.writer, Writer::Corked { .. })
    }

    /// The cork slot, if the pass on `thread` holds this connection's first frame.
    fn corked_on(&self, thread: u32) -> Option<u32> {
        match self.writer {
            Writer::Corked { slot, thread: t, .. } if t == thread => Some(slot),
            _ => None,
        }
    }
}

impl Shared {
    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_close(&self, code: u16) {
        // The first code asked for wins.
        if self.close_code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            if code == close::SLOW_CONSUMER {
                crate::observe::slow_consumer();
            }
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

    /// Sends `frame` without waiting: written to the socket at once (or at the end of the
    /// current corked pass; or, one of a `burst`, by the task), queued only where the socket is
    /// full. A full queue means the client reads slower than we write: it is closed with
    /// [`close::SLOW_CONSUMER`] instead of slowing the sender down.
    fn offer_frame(&self, frame: Frame, burst: bool) -> Offer {
        let cork = cork::current();
        let mut out = match self.admit() {
            Ok(out) => out,
            Err(refused) => return refused,
        };
        if frame.is_mark() && !out.framing.keeps_marks() {
            // A plain htmx page is not told positions.
            return Offer::Queued;
        }
        if let Some(reader) = out.pull.as_ref().and_then(|pull| pull.reader.as_ref()) {
            // A reader takes it (an SSE body): no socket to write, no cork to wait in.
            reader.wake_by_ref();
            out.frames.push_back(frame);
            return Offer::Queued;
        }
        let wake = if let Some(thread) = cork.filter(|_| !out.corked() && out.frames.is_empty()) {
            // The pass's first frame for this connection waits in the cork, not in the queue.
            let slot = cork::hold(self.me.upgrade().expect("a live connection offers"), frame);
            out.writer = Writer::Corked { slot, thread, then_task: out.writer == Writer::Task };
            false
        } else if let Some(slot) = cork.and_then(|thread| out.corked_on(thread)) {
            out.frames.push_back(frame);
            // A long pass writes every batch rather than queue it all (and well before the
            // queue's bound, which is for slow clients, not for long passes).
            if out.frames.len() + 1 >= BATCH.min(out.capacity / 2).max(1) {
                let first = cork::take(slot);
                out.uncork(first)
            } else {
                false
            }
        } else if burst {
            // One of a burst: the task writes it with whatever follows, one write for many.
            out.frames.push_back(frame);
            let wake = out.writer == Writer::Anyone;
            if wake {
                out.writer = Writer::Task;
            }
            wake
        } else if out.frames.is_empty() && out.writer == Writer::Anyone {
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
}

impl Subscriber for Shared {
    /// See [`Shared::offer_frame`].
    fn offer(&self, frame: Frame) -> Offer {
        self.offer_frame(frame, false)
    }

    /// Outside a corked pass, queued for the task (woken once) to write with what follows.
    fn offer_in_burst(&self, frame: Frame) -> Offer {
        self.offer_frame(frame, true)
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

    /// Fan-outs are corked: see [`cork::batch`].
    fn batch(&self) -> Option<crate::pubsub::Batch> {
        Some(cork::batch)
    }

    /// Closes with 1012, which every client reconnects after.
    fn resync(&self) {
        self.request_close(crate::protocol::close::RESTART);
    }

    /// Half the queue: a replay is never what closes a connection as a slow consumer.
    fn room(&self) -> usize {
        self.out().capacity / 2
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
                Poll::Pending if !out.corked() && !out.watched => {
                    out.watched = true;
                    return Poll::Ready(Ready::Stalled(out.progress));
                }
                Poll::Pending => {}
            }
        }
        if let Some(message) = out.pull.as_mut().and_then(|p| p.inbound.pop_front()) {
            return Poll::Ready(Ready::Message(message));
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

    #[cfg(test)]
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
            out.unread_at = 0;
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

    /// Refuses every offer from now on (topics forget this connection): the connection is about
    /// to send its last frame (a close frame, a last event), after which nothing may follow.
    /// What is already queued still goes out, and the close itself is written by the task.
    pub(crate) fn seal(&self) {
        self.shared.out().closed = true;
    }

    /// Queues a control frame of the server's own (a ping): outside the bound, written by the
    /// task's next [`Inbox::poll_ready`]; not once the connection is sealed.
    pub(crate) fn push_control(&self, frame: Frame) {
        let mut out = self.shared.out();
        if out.wire.is_some() && !out.closed {
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
        // A reader sends what is left and ends.
        if let Some(reader) = out.pull.as_ref().and_then(|pull| pull.reader.as_ref()) {
            reader.wake_by_ref();
        }
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

#[cfg(test)]
mod tests;
