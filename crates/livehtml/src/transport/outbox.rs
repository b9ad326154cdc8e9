//! The bounded outbound queue of one connection, and the switch that closes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::sync::{Notify, mpsc};

use super::Frame;
use crate::protocol::close;

/// The sending half of a connection's outbound queue. Cloned into every topic it subscribes to.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Frame>,
    kill: Arc<Kill>,
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

/// Asks a connection's task to close with a code; the first code asked for wins.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    code: AtomicU16,
    notify: Notify,
}

impl Kill {
    pub(crate) fn request(&self, code: u16) {
        if self.code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // notify_one stores a permit when the task is not waiting yet, so no request is lost.
            self.notify.notify_one();
        }
    }

    /// Resolves with the requested close code.
    pub(crate) async fn requested(&self) -> u16 {
        loop {
            let code = self.code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> (Self, mpsc::Receiver<Frame>, Arc<Kill>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let kill = Arc::new(Kill::default());
        (Self { tx, kill: kill.clone() }, rx, kill)
    }

    /// Queues `frame` without waiting. A full queue means the client reads slower than we write:
    /// it is closed with [`close::SLOW_CONSUMER`] instead of slowing the sender down.
    pub(crate) fn offer(&self, frame: Frame) -> Offer {
        match self.tx.try_send(frame) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.request(close::SLOW_CONSUMER);
                Offer::Overflowed
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_requests_slow_consumer_close() {
        let (outbox, mut rx, kill) = Outbox::new(2);
        assert_eq!(outbox.offer(Frame::text("1")), Offer::Queued);
        assert_eq!(outbox.offer(Frame::text("2")), Offer::Queued);
        assert_eq!(outbox.offer(Frame::text("3")), Offer::Overflowed);
        assert_eq!(kill.requested().await, close::SLOW_CONSUMER);
        assert_eq!(rx.recv().await, Some(Frame::text("1")));
        drop(rx);
        assert_eq!(outbox.offer(Frame::text("4")), Offer::Closed);
    }

    #[tokio::test]
    async fn first_close_code_wins() {
        let kill = Kill::default();
        kill.request(close::RESTART);
        kill.request(close::SLOW_CONSUMER);
        assert_eq!(kill.requested().await, close::RESTART);
    }
}
