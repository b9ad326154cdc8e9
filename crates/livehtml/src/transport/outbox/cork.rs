//! Corked passes: what a connection's task publishes while it is polled is written to each
//! subscriber once, when the poll ends.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::Shared;
use crate::protocol::Frame;

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
        let _cork = Guard::new();
        self.project().inner.poll(cx)
    }
}

/// The current thread's cork: the queues that got frames during the pass, to write when it ends.
/// Thread-local because a pass is one poll of one task, which never leaves its thread.
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

/// Whether a pass is running on this thread (for tests of who corks).
#[cfg(test)]
pub(crate) fn active() -> bool {
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

/// Passes that reach this many connections are written in chunks, the thread yielding its core
/// between them, and from two threads where there are two cores: the thread of the pass and a
/// scoped helper, joined before the poll returns, so a pass still ends with all
/// of its frames handed to the kernel, in order, and nothing outlives it. The writes are
/// kernel time (loopback TCP does the receivers' work too), so a second core shortens the
/// pass (BENCHMARKS.md measures it at 5,000 clients).
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

/// Runs a fan-out corked: its offers are written when it returns ([`crate::pubsub::Batch`]),
/// from two threads when it is wide. A publish from outside a connection's task (an HTTP
/// handler, a background task, a broker's delivery) gets what a corked pass gets.
pub(super) fn batch(fan_out: &mut dyn FnMut()) {
    let _cork = Guard::new();
    fan_out();
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
        if held.len() >= PARALLEL {
            // Both threads take chunks from one iterator: the cost of a write varies (a
            // sleeping reader's wake-up, a full socket), and with fixed halves the thread
            // that finished first waited for the other while a core sat idle.
            let chunks = Mutex::new(held.chunks_mut(CHUNK));
            let work = || {
                loop {
                    // The lock is held to take a chunk, not while writing it.
                    let Some(chunk) = chunks.lock().unwrap_or_else(|e| e.into_inner()).next() else { break };
                    write_out(chunk);
                    // Whatever else is runnable on this core gets a turn between chunks: the
                    // readers of what was just written, other connections' tasks. Without it a
                    // wide pass held both cores until its last write, and what it had written
                    // first was read last (BENCHMARKS.md has the closed loop with and without).
                    // A yield with nothing else to run returns at once.
                    std::thread::yield_now();
                }
            };
            if two_cores() {
                std::thread::scope(|scope| {
                    scope.spawn(work);
                    work();
                });
            } else {
                work();
            }
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
