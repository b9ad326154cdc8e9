use std::borrow::Cow;

use axum::http::{HeaderMap, Uri};

use std::any::Any;
use std::time::Duration;

use crate::protocol::{Fragment, Frame, ParseLimits};
use crate::pubsub::{Info, Offer, PubSub, SubscriberRef, Subscription};

/// What the upgrade request said: given to an endpoint's session factory.
///
/// It is dropped as soon as the factory returns: copy what the session needs (a user id, a
/// cookie's value) into the session itself rather than keeping the whole request around.
#[derive(Debug, Clone)]
pub struct Connect {
    pub(crate) id: u64,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

impl Connect {
    /// A number unique to this connection within the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The request URI of the upgrade (path and query).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The upgrade request's headers (cookies, auth, user agent).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A session's handle on its connection: its own page, its topics, the process's pub/sub.
#[derive(Debug)]
pub struct Context {
    id: u64,
    /// This page's own connection.
    outbox: SubscriberRef,
    pubsub: PubSub,
    parse: ParseLimits,
    pending: String,
    frames: Vec<Frame>,
    subscriptions: Vec<Subscription>,
    /// Boxed: rarely set, and every idle connection carries the field.
    close: Option<Box<(u16, Cow<'static, str>)>>,
}

impl Context {
    pub(crate) fn new(id: u64, outbox: SubscriberRef, pubsub: PubSub, parse: ParseLimits) -> Self {
        Self {
            id,
            outbox,
            pubsub,
            parse,
            pending: String::new(),
            frames: Vec::new(),
            subscriptions: Vec::new(),
            close: None,
        }
    }

    /// This connection's id (the same as [`Connect::id`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a fragment for this page. Everything pushed during one call of a [`crate::Session`]
    /// method goes out as a single message (one WebSocket message, one SSE event) when the call
    /// returns; a handler that sends many large pieces should send them as frames of their own
    /// ([`Context::push_frame`]): clients cap a message's size (tungstenite at 16 MiB a frame).
    pub fn push(&mut self, fragment: Fragment) {
        fragment.encode_into(&mut self.pending);
    }

    /// Queues markup that is already encoded with its `hx-swap-oob` attributes, in the same
    /// message as pushed fragments.
    pub(crate) fn push_encoded(&mut self, html: &str) {
        self.pending.push_str(html);
    }

    /// Queues an already encoded message for this page, after anything pushed before it.
    pub fn push_frame(&mut self, frame: Frame) {
        self.seal_pending();
        self.frames.push(frame);
    }

    /// Subscribes this connection to `topic`: every frame published there is sent to this page,
    /// straight from the publisher, without a round trip through the session. Subscribing twice
    /// to the same topic is a no-op.
    pub fn subscribe(&mut self, topic: &str) {
        if !self.subscriptions.iter().any(|s| s.topic() == topic) {
            // Most pages join one topic or two: no spare capacity per idle connection.
            self.subscriptions.reserve_exact(1);
            self.subscriptions.push(self.pubsub.subscribe(topic, self.outbox.clone()));
        }
    }

    /// Stops receiving `topic`.
    pub fn unsubscribe(&mut self, topic: &str) {
        self.subscriptions.retain(|s| s.topic() != topic);
    }

    /// Stops receiving every topic.
    pub fn unsubscribe_all(&mut self) {
        self.subscriptions.clear();
    }

    /// Delivers `make()` to this session's [`crate::Session::on_info`] every `period`, from a
    /// background task that ends by itself when the connection does (within one period).
    pub fn every<T, F>(&self, period: Duration, make: F)
    where
        T: Any + Send + Sync,
        F: Fn() -> T + Send + 'static,
    {
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                if outbox.offer_info(Info::new("", make())) != Offer::Queued {
                    return;
                }
            }
        });
    }

    /// Renders `fragments` once and publishes the bytes to every subscriber of `topic`, this
    /// page included if it is subscribed. Returns how many connections took it.
    ///
    /// A broadcast goes out as it is made, while what the method [`Context::push`]es goes out
    /// when it returns: a page that broadcasts to its own topic gets the broadcast first.
    pub fn broadcast<'a>(&self, topic: &str, fragments: impl IntoIterator<Item = &'a Fragment>) -> usize {
        self.pubsub.publish(topic, Frame::fragments(fragments))
    }

    /// The process's pub/sub, for publishing frames or counting subscribers.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    /// Ends the connection with `code` and `reason` once the current call returns (after
    /// what it pushed has been sent).
    pub fn close(&mut self, code: u16, reason: impl Into<Cow<'static, str>>) {
        self.close.get_or_insert_with(|| Box::new((code, reason.into())));
    }

    pub(crate) fn parse_limits(&self) -> ParseLimits {
        self.parse
    }

    fn seal_pending(&mut self) {
        if !self.pending.is_empty() {
            self.frames.push(Frame::text(std::mem::take(&mut self.pending)));
        }
    }

    /// Takes what was pushed since the last call, in order.
    pub(crate) fn take_frames(&mut self) -> Vec<Frame> {
        self.seal_pending();
        std::mem::take(&mut self.frames)
    }

    /// Sends what was pushed since the last call to this page, in order.
    pub(crate) fn send_pushed(&mut self) {
        for frame in self.take_frames() {
            if self.outbox.offer(frame) != Offer::Queued {
                break;
            }
        }
    }

    pub(crate) fn take_close(&mut self) -> Option<(u16, Cow<'static, str>)> {
        self.close.take().map(|close| *close)
    }

    pub(crate) fn end(&mut self) {
        self.subscriptions.clear();
    }
}
