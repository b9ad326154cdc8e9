//! What a topic delivers to: one connection's queue, whatever its transport. Transports
//! implement [`Subscriber`]; pubsub and the session loop see only this.

use std::sync::Arc;

use super::Info;
use crate::protocol::Frame;

/// One connection's outbound side, as a topic and a session see it.
///
/// Offers never wait. A queue that is full asks its connection to close as a slow consumer and
/// answers [`Offer::Overflowed`]; a connection that ended answers [`Offer::Closed`].
pub(crate) trait Subscriber: Send + Sync + std::fmt::Debug {
    /// Sends `frame` to the page (written at once where the transport can, else queued).
    fn offer(&self, frame: Frame) -> Offer;
    /// Sends `frame`, one of a burst (the topic's publishes follow each other with no pause):
    /// the connection's own task writes it, with whatever else has come by then, in one write,
    /// rather than the publisher at once. The same as `offer` where the transport has nothing
    /// better.
    fn offer_in_burst(&self, frame: Frame) -> Offer {
        self.offer(frame)
    }
    /// Queues `info` for the session's `on_info`.
    fn offer_info(&self, info: Info) -> Offer;
    /// Whether the connection ended (its subscriptions can be forgotten).
    fn is_closed(&self) -> bool;
    /// Ends the connection so that its page reconnects and is resynced: a topic it follows
    /// lost messages it cannot replay (a cluster's broker lost them). The page comes back,
    /// says what it saw, and gets [`super::Recovery::Lost`].
    fn resync(&self);
    /// How many messages a reconnect may be replayed at once (more, and its page is resynced).
    fn room(&self) -> usize {
        usize::MAX
    }
    /// How a fan-out that reaches this subscriber is wrapped, if its transport writes a
    /// fan-out's offers together when it ends rather than one by one (see [`Batch`]).
    fn batch(&self) -> Option<Batch> {
        None
    }
}

/// Runs a fan-out (the closure offers one frame to every subscriber of a topic) so that the
/// offers it makes are written together when it returns, which lets a transport spread the
/// writes of a wide fan-out over more than one core. A topic runs its fan-outs through the
/// batch of the first subscriber it got that has one (a transport's batch covers all of its
/// connections in the fan-out); inside a connection's corked pass, the pass batches already.
pub(crate) type Batch = fn(&mut dyn FnMut());

/// A shared handle on a connection's [`Subscriber`]: what topics hold.
pub(crate) type SubscriberRef = Arc<dyn Subscriber>;

/// What happened to an offered frame or info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// The queue was full: the connection is being closed as a slow consumer.
    Overflowed,
    /// The connection is gone.
    Closed,
}
