//! The bounded outbound queue of one connection, and the switch that closes it.
//!
//! Hand-written rather than a tokio `mpsc` channel because an idle connection must cost almost
//! nothing: `mpsc` allocates a 32-slot block per channel up front (1.3 KB with our frames),
//! where an empty `VecDeque` allocates nothing. One `Arc` holds the queue, the waker of the
//! connection's task and the close request, so each connection makes one allocation here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::Frame;
use crate::protocol::close;
use crate::pubsub::Info;

/// One queued item: bytes for the socket, or a value for the session's `on_info`.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    Frame(Frame),
    Info(Info),
}

/// The sending half, cloned into every topic the connection subscribes to.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving half, owned by the connection's task. Dropping it closes the queue.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    waker: AtomicWaker,
    close_code: AtomicU16,
}

#[derive(Debug)]
struct Queue {
    frames: VecDeque<Outbound>,
    capacity: usize,
    closed: bool,
}

/// What happened to an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// The queue was full: the connection is being closed as a slow consumer.
    Overflowed,
    /// The connection is gone.
    Closed,
}

/// What the connection's task should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Frames are waiting.
    Frames,
    /// Close with this code.
    Close(u16),
}

pub(crate) fn outbox(capacity: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue { frames: VecDeque::new(), capacity: capacity.max(1), closed: false }),
        waker: AtomicWaker::new(),
        close_code: AtomicU16::new(0),
    });
    (Outbox { shared: shared.clone() }, Inbox { shared })
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_close(&self, code: u16) {
        // The first code asked for wins.
        if self.close_code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.waker.wake();
        }
    }
}

impl Outbox {
    /// Queues `frame` without waiting. A full queue means the client reads slower than we write:
    /// it is closed with [`close::SLOW_CONSUMER`] instead of slowing the sender down.
    pub(crate) fn offer(&self, frame: Frame) -> Offer {
        self.offer_item(Outbound::Frame(frame))
    }

    /// Queues a value for the session's `on_info`, with the same bound as frames.
    pub(crate) fn offer_info(&self, info: Info) -> Offer {
        self.offer_item(Outbound::Info(info))
    }

    fn offer_item(&self, item: Outbound) -> Offer {
        let mut queue = self.shared.queue();
        if queue.closed {
            return Offer::Closed;
        }
        if queue.frames.len() >= queue.capacity {
            drop(queue);
            self.shared.request_close(close::SLOW_CONSUMER);
            return Offer::Overflowed;
        }
        let was_empty = queue.frames.is_empty();
        queue.frames.push_back(item);
        drop(queue);
        // The task drains the queue before it waits again, so only the first frame of a batch
        // needs to wake it: a wake per frame was the most expensive line of a broadcast.
        if was_empty {
            self.shared.waker.wake();
        }
        Offer::Queued
    }

    /// Asks the connection to close with `code`; the first request wins.
    #[cfg(test)]
    pub(crate) fn close(&self, code: u16) {
        self.shared.request_close(code);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.queue().closed
    }
}

impl Inbox {
    /// Ready when frames are queued or a close was requested (a close request wins).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        self.shared.waker.register(cx.waker());
        if let Some(code) = self.close_requested() {
            return Poll::Ready(Ready::Close(code));
        }
        if self.shared.queue().frames.is_empty() { Poll::Pending } else { Poll::Ready(Ready::Frames) }
    }

    pub(crate) async fn ready(&self) -> Ready {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// Resolves once a close is requested.
    pub(crate) async fn close_requested_wait(&self) -> u16 {
        std::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            self.close_requested().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    pub(crate) fn close_requested(&self) -> Option<u16> {
        match self.shared.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Takes the oldest queued frame. When that empties a queue that had grown (after a burst),
    /// its memory is given back.
    pub(crate) fn pop(&self) -> Option<Outbound> {
        let mut queue = self.shared.queue();
        let frame = queue.frames.pop_front();
        if queue.frames.is_empty() && queue.frames.capacity() > 16 {
            queue.frames = VecDeque::new();
        }
        frame
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut queue = self.shared.queue();
        queue.closed = true;
        queue.frames = VecDeque::new();
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
        assert_eq!(inbox.ready().await, Ready::Close(close::SLOW_CONSUMER));
        assert!(matches!(inbox.pop(), Some(Outbound::Frame(f)) if f == Frame::text("1")));
        drop(inbox);
        assert_eq!(outbox.offer(Frame::text("4")), Offer::Closed);
        assert!(outbox.is_closed());
    }

    #[tokio::test]
    async fn first_close_code_wins() {
        let (outbox, inbox) = outbox(1);
        outbox.close(close::RESTART);
        outbox.close(close::SLOW_CONSUMER);
        assert_eq!(inbox.close_requested_wait().await, close::RESTART);
    }

    #[tokio::test]
    async fn a_queued_frame_wakes_the_waiting_task() {
        let (outbox, inbox) = outbox(4);
        let waiter = tokio::spawn(async move {
            assert_eq!(inbox.ready().await, Ready::Frames);
            inbox.pop()
        });
        tokio::task::yield_now().await;
        outbox.offer(Frame::text("x"));
        assert!(matches!(waiter.await.unwrap(), Some(Outbound::Frame(f)) if f == Frame::text("x")));
    }

    #[test]
    fn an_empty_queue_holds_no_buffer() {
        let (outbox, inbox) = outbox(1024);
        for i in 0..100 {
            outbox.offer(Frame::text(i.to_string()));
        }
        while inbox.pop().is_some() {}
        assert_eq!(inbox.shared.queue().frames.capacity(), 0);
    }
}
