use std::borrow::Cow;

use axum::http::{HeaderMap, Uri};

use std::any::Any;
use std::time::Duration;

use super::task::Tasks;
use crate::protocol::names::{self, control};
use crate::protocol::{Fragment, Frame, ParseLimits, Since};
use crate::pubsub::{Info, Offer, PubSub, Recovery, SubscriberRef, Subscription, Tracked};

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
    /// A number unique to this connection across a cluster: its high 32 bits are its
    /// process's tag ([`crate::PubSub::node`], random per process), its low 32 bits count the
    /// process's connections. Two processes' connections never share one (but for a 1 in 2³²
    /// chance that two processes draw the same tag), so it may key presence or anything else
    /// the cluster shares.
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
    parse: Parse,
    pending: String,
    frames: Vec<Frame>,
    subscriptions: Vec<Subscription>,
    /// What few connections need, boxed: every idle connection carries the field.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Default)]
struct Rare {
    /// The session asked to close.
    close: Option<(u16, Cow<'static, str>)>,
    /// A page that came back, until its `on_join` returns: what it saw, and what its topics'
    /// recovery found.
    rejoin: Option<Rejoin>,
    /// This connection's presence on topics.
    tracked: Vec<Tracked>,
    /// Tasks started with `spawn` (cancelled when dropped).
    tasks: Tasks,
    /// The event being handled was refused, with this message (for its reply).
    refused: Option<String>,
}

/// [`ParseLimits`] in half the space (every idle connection's task holds one): a limit past
/// `u32::MAX` is taken as `u32::MAX`, more than a message can be (tungstenite's frame and
/// message limits are far below it).
#[derive(Debug, Clone, Copy)]
struct Parse {
    max_bytes: u32,
    max_depth: u32,
    max_fields: u32,
}

impl Parse {
    fn new(limits: ParseLimits) -> Self {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            max_bytes: narrow(limits.max_bytes),
            max_depth: narrow(limits.max_depth),
            max_fields: narrow(limits.max_fields),
        }
    }

    fn limits(self) -> ParseLimits {
        let widen = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        ParseLimits {
            max_bytes: widen(self.max_bytes),
            max_depth: widen(self.max_depth),
            max_fields: widen(self.max_fields),
        }
    }
}

/// A reconnecting page's claim and what became of it.
#[derive(Debug)]
struct Rejoin {
    since: Since,
    /// The page runs livehtml.js: it is told what happened (`lh:recovered`, `lh:resynced`).
    told: bool,
    subscribed: bool,
    replayed: usize,
    lost: bool,
}

impl Context {
    pub(crate) fn new(id: u64, outbox: SubscriberRef, pubsub: PubSub, parse: ParseLimits) -> Self {
        Self {
            id,
            outbox,
            pubsub,
            parse: Parse::new(parse),
            pending: String::new(),
            frames: Vec::new(),
            subscriptions: Vec::new(),
            rare: None,
        }
    }

    /// The page says what it saw before (`since`, from `Last-Event-ID` or `lh-since`); `told`:
    /// it runs livehtml.js, which is told how its topics were recovered.
    pub(crate) fn rejoining(mut self, since: Option<Since>, told: bool) -> Self {
        if let Some(since) = since.filter(|s| s.reconnect) {
            self.rare().rejoin = Some(Rejoin { since, told, subscribed: false, replayed: 0, lost: false });
        }
        self
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn rejoin(&mut self) -> Option<&mut Rejoin> {
        self.rare.as_deref_mut()?.rejoin.as_mut()
    }

    /// Subscriptions from here on start fresh (a live view recovers as a whole, by its own
    /// resume or resync, not topic by topic).
    pub(crate) fn forget_since(&mut self) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.rejoin = None;
        }
    }

    /// `on_join` returned: a livehtml.js page that came back is told how its topics were
    /// recovered, after what the session sent.
    pub(crate) fn joined(&mut self) {
        let Some(rare) = self.rare.as_deref_mut() else { return };
        let Some(rejoin) = rare.rejoin.take() else { return };
        if rare.close.is_none() && rare.tracked.is_empty() && rare.tasks.is_empty() {
            self.rare = None;
        }
        if !(rejoin.told && rejoin.subscribed) {
            return;
        }
        let notice = if rejoin.lost {
            serde_json::json!({ (control::KEY): control::RESYNCED })
        } else {
            serde_json::json!({ (control::KEY): control::RECOVERED, "replayed": rejoin.replayed })
        };
        self.push_frame(Frame::text(notice.to_string()));
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
    /// to the same topic is a no-op (and answers [`Recovery::New`]).
    ///
    /// A page that reconnects says what it saw (an SSE stream's `Last-Event-ID`; livehtml.js
    /// over any transport): during [`crate::Session::on_join`], its subscription first sends it
    /// every message it missed, in order ([`Recovery::Replayed`], from the topic's
    /// [history](crate::pubsub::History)), or answers [`Recovery::Lost`]. Then the session
    /// must push what this topic drives on the page in full: nothing else would tell the page
    /// what it missed. (Subscriptions made after `on_join` start fresh.)
    ///
    /// ```
    /// use livehtml::pubsub::Recovery;
    /// use livehtml::{Context, Fragment, Html, SessionError};
    ///
    /// fn join(ctx: &mut Context, all_messages: impl FnOnce() -> Html) -> Result<(), SessionError> {
    ///     if ctx.subscribe("chat") == Recovery::Lost {
    ///         ctx.push(Fragment::inner("messages", all_messages()));
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn subscribe(&mut self, topic: &str) -> Recovery {
        if self.subscriptions.iter().any(|s| s.topic() == topic) {
            return Recovery::New;
        }
        let since = self.rare.as_deref().and_then(|r| r.rejoin.as_ref()).map(|r| &r.since);
        let room = self.outbox.room();
        let (subscription, recovery) = self.pubsub.subscribe(topic, self.outbox.clone(), since, room);
        // Most pages join one topic or two: no spare capacity per idle connection.
        self.subscriptions.reserve_exact(1);
        self.subscriptions.push(subscription);
        if let Some(rejoin) = self.rejoin() {
            rejoin.subscribed = true;
            match recovery {
                Recovery::Replayed(n) => rejoin.replayed += n,
                Recovery::Lost => rejoin.lost = true,
                Recovery::New => {}
            }
        }
        recovery
    }

    /// Counts this connection as member `key` of `topic` (a user id: several tabs of one user
    /// are one member), shown as `meta` (a name), until it ends or [`Context::untrack`]s.
    /// Joins and leaves reach every session subscribed to the topic as a
    /// [`PresenceDiff`](crate::pubsub::PresenceDiff) info; a member whose last connection
    /// drops leaves only after a grace period, so a reconnect is not a leave. Who is there:
    /// [`PubSub::members`].
    ///
    /// ```
    /// use livehtml::pubsub::PresenceDiff;
    /// use livehtml::{Context, Fragment, Html, Info};
    ///
    /// fn join(ctx: &mut Context, user: &str, name: &str) {
    ///     ctx.subscribe("room");
    ///     ctx.track("room", user, name);
    /// }
    ///
    /// fn on_info(ctx: &mut Context, info: &Info) {
    ///     if info.get::<PresenceDiff>().is_some() {
    ///         let online = ctx.pubsub().members("room").len();
    ///         ctx.push(Fragment::inner("online", Html::escape(&format!("{online} online"))));
    ///     }
    /// }
    /// ```
    pub fn track(&mut self, topic: &str, key: &str, meta: &str) {
        if self.rare.as_ref().is_some_and(|r| r.tracked.iter().any(|t| t.topic() == topic)) {
            return;
        }
        let tracked = self.pubsub.track(topic, key, meta);
        self.rare().tracked.push(tracked);
    }

    /// Ends this connection's presence on `topic` (its member leaves after the grace period,
    /// if this was its last connection).
    pub fn untrack(&mut self, topic: &str) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.tracked.retain(|t| t.topic() != topic);
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

    /// Runs `work` in the background and delivers its value to this page's `on_info` as a
    /// [`super::Done`]`<T>` named `name` (a panic becomes its [`super::TaskFailed`]; an error of
    /// your own is a `T` such as a `Result`). Starting a task with a name that runs already
    /// cancels that one (the newest search wins); at most [`super::MAX_TASKS`] run at once (the
    /// oldest is cancelled). Every task is cancelled when the page leaves (its connection ends,
    /// or a live view is navigated away from); a live view kept for a reconnect starts again in
    /// `on_join` what it still waits for.
    ///
    /// ```
    /// # use livehtml::{Context, Event, Html, LiveView, Mount, ViewError, Info};
    /// use livehtml::session::{AsyncValue, Done};
    ///
    /// struct Report {
    ///     total: AsyncValue<u64>,
    /// }
    ///
    /// async fn slow_total() -> u64 {
    ///     42
    /// }
    ///
    /// impl LiveView for Report {
    ///     type State = ();
    ///     async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
    ///         Ok(Report { total: AsyncValue::Loading })
    ///     }
    ///     fn render(&self) -> Html {
    ///         match &self.total {
    ///             AsyncValue::Loading => Html::trusted(r#"<p id="total">Loading…</p>"#),
    ///             AsyncValue::Ready(n) => Html::trusted(format!(r#"<p id="total">{n}</p>"#)),
    ///             AsyncValue::Failed(e) => Html::trusted(format!(r#"<p id="total">{}</p>"#, Html::escape(e))),
    ///         }
    ///     }
    ///     async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
    ///         if self.total.is_loading() {
    ///             ctx.spawn("total", slow_total());
    ///         }
    ///         Ok(())
    ///     }
    ///     async fn on_event(&mut self, _: &mut Context, e: Event) -> Result<(), ViewError> {
    ///         Err(ViewError::unknown_event(&e))
    ///     }
    ///     async fn on_info(&mut self, _: &mut Context, info: Info) -> Result<(), ViewError> {
    ///         if let Ok(done) = info.take::<Done<u64>>() {
    ///             self.total = done.into_result().into();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn spawn<T, F>(&mut self, name: impl Into<String>, work: F)
    where
        T: Any + Send + Sync,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let outbox = self.outbox.clone();
        self.rare().tasks.spawn(outbox, name.into(), work);
    }

    /// Cancels the task started as `name`, if it still runs: its value never arrives.
    pub fn cancel_task(&mut self, name: &str) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.tasks.cancel(name);
        }
    }

    /// Cancels every task this page started.
    pub(crate) fn cancel_tasks(&mut self) {
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.tasks.cancel_all();
        }
    }

    /// Marks the event being handled as refused, with a message for the user: the page's
    /// reply says so, and livehtml.js undoes what it changed optimistically when it sent it
    /// (`lh-optimistic`). A live view's handler that returns an error is refused this way.
    pub fn refuse(&mut self, message: impl Into<String>) {
        self.rare().refused = Some(message.into());
    }

    /// After an event: a page that numbered it (`reference`) is told it is handled, after what
    /// the handler pushed, in the same message.
    pub(crate) fn reply(&mut self, reference: Option<u64>) {
        let refused = self.rare.as_deref_mut().and_then(|r| r.refused.take());
        let Some(reference) = reference else { return };
        let mut out = String::with_capacity(24);
        out.push_str("<!--");
        out.push_str(if refused.is_some() { names::comment::REFUSED } else { names::comment::REPLY });
        out.push(' ');
        out.push_str(itoa::Buffer::new().format(reference));
        if let Some(message) = refused {
            // Percent-encoded: nothing in it can end the comment.
            out.push(' ');
            out.extend(form_urlencoded::byte_serialize(message.as_bytes()));
        }
        out.push_str("-->");
        self.push_encoded(&out);
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
        let rare = self.rare();
        if rare.close.is_none() {
            rare.close = Some((code, reason.into()));
        }
    }

    pub(crate) fn parse_limits(&self) -> ParseLimits {
        self.parse.limits()
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
            crate::observe::pushed(frame.len());
            if self.outbox.offer(frame) != Offer::Queued {
                break;
            }
        }
    }

    pub(crate) fn take_close(&mut self) -> Option<(u16, Cow<'static, str>)> {
        self.rare.as_deref_mut()?.close.take()
    }

    /// Whether the connection is to be closed ([`Context::close`], or the session loop's own
    /// request).
    pub(crate) fn close_requested(&self) -> bool {
        self.rare.as_deref().is_some_and(|rare| rare.close.is_some())
    }

    /// Closes the connection with `code`, replacing what the session asked (the loop's own
    /// reasons: a failed handler, the rate limit).
    pub(crate) fn request_close(&mut self, code: u16, reason: Cow<'static, str>) {
        self.rare().close = Some((code, reason));
    }

    pub(crate) fn end(&mut self) {
        self.subscriptions.clear();
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.tracked.clear();
            rare.tasks.cancel_all();
        }
    }
}
