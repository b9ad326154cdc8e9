//! The axum integration: live endpoints, the client script, origin checks, graceful shutdown.
//! Only this module knows axum's router types.

mod client;
mod forward;
mod listener;
mod origin;
mod poll;
mod serve;
mod shutdown;
mod sse;
pub(crate) mod upgrade;
mod views;

#[cfg(test)]
mod fuzz;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use futures_util::FutureExt;
use futures_util::future::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use listener::{Connection as ListenerConnection, Listener, Peer};
pub use origin::Origins;
pub use serve::{Serve, serve};
pub use shutdown::shutdown_signal;
pub use sse::STREAM_HEADER;
pub use views::{LiveRoutes, Views};

use crate::observe::{self, Rejected};
use crate::protocol::{Since, close, datastar, names};
use crate::pubsub::PubSub;
use crate::session::{Connect, Context, Session};
use crate::transport::Limits;
use crate::transport::outbox::{self, Framing, Registry};
use crate::transport::socket::Socket;
use crate::transport::ws::Connection;
use crate::view::token::Signer;

/// Process-wide settings of a [`Live`].
#[derive(Debug, Clone)]
pub struct Config {
    limits: Limits,
    origins: Origins,
    shutdown_code: u16,
    secret: Option<Vec<u8>>,
    forwarded_proto: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            origins: Origins::default(),
            shutdown_code: close::RESTART,
            secret: None,
            forwarded_proto: false,
        }
    }
}

impl Config {
    /// Default transport limits for endpoints made with [`Live::endpoint`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Which page origins may connect (default: the same origin only: the same scheme, host
    /// and port).
    pub fn origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// Trust the `X-Forwarded-Proto` header for the request's scheme (default: no, the scheme
    /// is `http`). Turn it on only behind a proxy that terminates TLS and sets the header
    /// itself: a page on `https://` is then the same origin.
    pub fn trust_forwarded_proto(mut self, trust: bool) -> Self {
        self.forwarded_proto = trust;
        self
    }

    /// The key that signs view tokens. Without one, a random key is made per process: pages
    /// rendered by one process cannot join a live view on another, or after a restart (they
    /// then get a fresh render). Give every process of a deployment the same secret.
    pub fn secret(mut self, key: impl AsRef<[u8]>) -> Self {
        self.secret = Some(key.as_ref().to_vec());
        self
    }

    /// The close code sent to every connection on shutdown: 1012 (restart, the default) or
    /// 1001 (going away). Both tell clients to reconnect with jitter.
    pub fn shutdown_code(mut self, code: u16) -> Self {
        self.shutdown_code = code;
        self
    }
}

/// The live side of an app: its endpoints, its pub/sub, its connections.
///
/// Cheap to clone; clones share everything. Keep one per process and put it in your app state.
///
/// ```
/// use axum::Router;
/// use livehtml::{Context, Event, Fragment, Html, Live, Session, SessionError};
///
/// struct Chat;
///
/// impl Session for Chat {
///     async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
///         ctx.subscribe("chat");
///         Ok(())
///     }
///
///     async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
///         let text = event.value("message").unwrap_or_default();
///         ctx.broadcast("chat", &[Fragment::append("messages", Html::escape(text))]);
///         Ok(())
///     }
/// }
///
/// let live = Live::default();
/// let app: Router = Router::new()
///     .route("/ws/chat", live.endpoint(|_connect| Chat))
///     .merge(live.client_script());
/// # async {
/// // `livehtml::serve` is `axum::serve` with every request head timed and sized; its
/// // `Listener` lets an event stream leave hyper after its head (`axum::serve` works too).
/// let listener = livehtml::Listener::bind("127.0.0.1:0").await.unwrap();
/// livehtml::serve(listener, app)
///     .with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal()))
///     .await
///     .unwrap();
/// live.drain(std::time::Duration::from_secs(10)).await;
/// # };
/// ```
#[derive(Debug, Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    pubsub: PubSub,
    shutdown: CancellationToken,
    connections: TaskTracker,
    /// One per heartbeat period in use, with the timer that pings its connections.
    heartbeats: Mutex<HashMap<Duration, Arc<Registry>>>,
    next_id: AtomicU64,
    signer: Signer,
    /// Open SSE streams and long-poll sessions, for their posts.
    streams: sse::Streams,
    /// Long-poll sessions, for their polls.
    polls: poll::Polls,
}

impl Default for Live {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Live {
    /// A live runtime with these settings.
    pub fn new(config: Config) -> Self {
        let signer = config.secret.as_deref().map_or_else(Signer::random, Signer::new);
        let live = Self {
            inner: Arc::new(Inner {
                config,
                pubsub: PubSub::default(),
                shutdown: CancellationToken::new(),
                connections: TaskTracker::new(),
                heartbeats: Mutex::default(),
                next_id: AtomicU64::new(0),
                signer,
                streams: Default::default(),
                polls: Default::default(),
            }),
        };
        // Requests for this process's streams and long-poll sessions that reached another one.
        let weak = Arc::downgrade(&live.inner);
        live.inner.pubsub.serve_requests(Arc::new(move |body| {
            let live = weak.upgrade().map(|inner| Live { inner });
            Box::pin(async move {
                match live {
                    Some(live) => live.answer_forwarded(body).await,
                    None => bytes::Bytes::new(),
                }
            })
        }));
        live
    }

    /// The process's pub/sub: publish to topics from anywhere in the app.
    pub fn pubsub(&self) -> &PubSub {
        &self.inner.pubsub
    }

    /// A live endpoint: a fresh session from `factory` for each page that connects, over a
    /// WebSocket or over Server-Sent Events, with the default [`Limits`]. The session does not
    /// know which.
    ///
    /// * **WebSocket**: a `GET` that asks for the upgrade. A foreign `Origin` gets 403; a request
    ///   during shutdown gets 503; a request that is not a valid upgrade gets 400, 405 or 426
    ///   with the reason in the body.
    /// * **Server-Sent Events**: a `GET` that accepts `text/event-stream` (EventSource, htmx 2's
    ///   `sse-connect`, htmx 4's `hx-sse:connect`, livehtml.js's `lh-transport="sse"`) opens a
    ///   stream. Its first event, `lh-stream`, carries a signed id; the page's events are
    ///   `POST`ed to the same path with it, in the `LH-Stream` header ([`crate::STREAM_HEADER`])
    ///   or the `lh-stream` query parameter, in any dialect the socket takes (htmx JSON,
    ///   livehtml.js, a form): 204 when the stream took it, 400 for a body that is not an event,
    ///   403 for a forged id or a foreign `Origin`, 410 for a stream that has ended, 413 over the
    ///   size limit, 429 when the stream is behind. Fragments go out as unnamed events (what
    ///   htmx 2's `sse-swap="message"`, htmx 4 and livehtml.js swap by `hx-swap-oob`);
    ///   [`crate::Frame::event`] sends a named one. Every event has an `id:`; a `: heartbeat`
    ///   comment comes every [`Limits::sse_heartbeat`]. A stream the server ends gets a last
    ///   `lh-close` event with a close code (`{"code": 1012, ...}` at shutdown) and ends.
    ///   Browsers allow six HTTP/1.1 connections per origin: one stream per tab (or HTTP/2).
    /// * **Datastar 1.0** (`Datastar-Request` header): `@get` opens the stream (its id arrives as
    ///   the `lhStream` signal, and events go out as `datastar-patch-elements`); a page's events
    ///   come with every signal, by `@post`, `@put`, `@patch` (a JSON body), `@delete` (1.0.4:
    ///   the signals in `?datastar=`) or `@query` (HTTP `QUERY`, a JSON body). An event not sent
    ///   by `POST` is named after its method (`"delete"`) unless an `LH-Event` header names it.
    ///   Datastar 1.0.4 aborts a request in flight when the page sends another with the same
    ///   method and URL: a second `@get` of the stream's URL replaces the stream (the old one,
    ///   named by the `lhStream` signal it carries, is closed at once).
    pub fn endpoint<S, F, T>(&self, factory: F) -> MethodRouter<T>
    where
        S: Session,
        F: Fn(&Connect) -> S + Clone + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
    {
        self.endpoint_with(self.inner.config.limits, factory)
    }

    /// Like [`Live::endpoint`] with limits of its own.
    pub fn endpoint_with<S, F, T>(&self, limits: Limits, factory: F) -> MethodRouter<T>
    where
        S: Session,
        F: Fn(&Connect) -> S + Clone + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
    {
        let live = self.clone();
        let poster = self.clone();
        // One copy per endpoint: each WebSocket connection holds a pointer to it.
        let shared = Arc::new(limits);
        get(move |req: Request| {
            let live = live.clone();
            let factory = factory.clone();
            let shared = shared.clone();
            async move {
                match poll::ask(req.uri().query()) {
                    Some(poll::Ask::Open) => return live.open_poll(*shared, req, factory),
                    Some(poll::Ask::Poll { id, ack }) => return live.poll(*shared, &id, ack).await,
                    None => {}
                }
                if sse::wants_event_stream(req.headers()) {
                    live.open_stream(shared, req, factory)
                } else {
                    live.upgrade(shared, req, factory)
                }
            }
        })
        // A page's events: POST (htmx, livehtml.js, Datastar's @post), and the other methods
        // Datastar's actions send (@put, @patch, @delete, and @query's HTTP QUERY).
        .on(MethodFilter::POST.or(MethodFilter::PUT).or(MethodFilter::PATCH).or(MethodFilter::DELETE), {
            let live = poster.clone();
            move |req: Request| {
                let live = live.clone();
                async move { live.post_event(limits, req).await }
            }
        })
        .fallback(move |req: Request| {
            let live = poster.clone();
            async move {
                if req.method().as_str() != datastar::QUERY_METHOD {
                    return StatusCode::METHOD_NOT_ALLOWED.into_response();
                }
                live.post_event(limits, req).await
            }
        })
    }

    fn upgrade<S, F>(&self, shared_limits: Arc<Limits>, mut req: Request, factory: F) -> Response
    where
        S: Session,
        F: Fn(&Connect) -> S + Send + 'static,
    {
        let limits = *shared_limits;
        let mut handshake = match upgrade::Handshake::from_request(&mut req) {
            Ok(h) => h,
            Err(rejection) => {
                observe::rejected(Rejected::Handshake);
                return rejection.into_response();
            }
        };
        if let Some(refused) = self.refusal(req.headers(), &limits, "a WebSocket") {
            return refused;
        }
        let id = self.next_id();
        let (parts, _body) = req.into_parts();
        let span = connection_span(id, "ws", parts.uri.path());
        // Boxed, and the limits read through their `Arc` below: the task is allocated for its
        // largest state, and what waits for the upgrade must not outweigh an idle connection.
        let connect = Box::new(Connect { id, uri: parts.uri, headers: parts.headers });
        let live = self.clone();
        // Counted from the upgrade on, so a drain also waits for sockets still being set up.
        let token = self.inner.connections.token();
        let heartbeat = self.heartbeat(limits.ping_interval);
        if !limits.compression {
            handshake.deflate = None;
        }
        let deflate = handshake.deflate;
        let (response, wire) = handshake.accept();
        // Once upgraded, the task's state is the connection's future and nothing else.
        let task = wire.then(move |wire| {
            let Some((wire, ahead)) = wire else { return Either::Left(std::future::ready(())) };
            let session = factory(&connect);
            let (since, lh) = rejoin(&connect);
            // The header values are slices of hyper's request buffer (16 KB): holding them
            // for the life of the socket would pin that buffer per idle connection.
            drop(connect);
            let framing = match deflate {
                Some(agreed) => {
                    let max = u32::try_from(shared_limits.max_message_bytes).unwrap_or(u32::MAX);
                    Framing::Deflate { stamped: lh, window: agreed.window, max }
                }
                None if lh => Framing::Stamped,
                None => Framing::WebSocket,
            };
            let (outbox, inbox, io) = outbox::attach(shared_limits.outbound_queue, Some(wire), framing);
            io.read_ahead(&ahead);
            let ctx = Context::new(id, outbox, live.inner.pubsub.clone(), shared_limits.parse()).rejoining(since, lh);
            let socket = Socket::new(io);
            heartbeat.add(&inbox);
            // Registered before this check, so `shutdown` either finds it or is seen here.
            if live.inner.shutdown.is_cancelled() {
                inbox.close(live.inner.config.shutdown_code);
            }
            let connection = Connection {
                socket,
                _token: token,
                inbox,
                limits: shared_limits,
                heard_since_ping: true,
                draining: false,
                deadline: None,
                closing: None,
            };
            Either::Right(crate::session::run(session, ctx, connection))
        });
        spawn_connection(span, task);
        response
    }

    /// The answer to a new connection (`what`, for the log) that may not open: headers over
    /// the limit, from a foreign origin, or while shutting down.
    fn refusal(&self, headers: &axum::http::HeaderMap, limits: &Limits, what: &str) -> Option<Response> {
        let head: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
        if head > limits.max_head_bytes {
            tracing::info!(bytes = head, "refused {what}: its headers are too large");
            observe::rejected(Rejected::HeadersTooLarge);
            return Some((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large").into_response());
        }
        if let Err(origin::ForeignOrigin(origin)) =
            self.inner.config.origins.check(headers, self.inner.config.forwarded_proto)
        {
            tracing::info!(%origin, "refused {what} from a foreign origin");
            observe::rejected(Rejected::Origin);
            return Some((StatusCode::FORBIDDEN, "origin not allowed").into_response());
        }
        if self.inner.shutdown.is_cancelled() {
            observe::rejected(Rejected::ShuttingDown);
            return Some((StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response());
        }
        None
    }

    /// A router serving livehtml.js at [`SCRIPT_URL`](crate::SCRIPT_URL) (cached for good) and
    /// [`SCRIPT_PATH`](crate::SCRIPT_PATH) (revalidated), brotli- or gzip-compressed as the
    /// browser accepts; merge it into your app.
    pub fn client_script<T: Clone + Send + Sync + 'static>(&self) -> Router<T> {
        Router::new()
            .route(crate::asset::SCRIPT_PATH, get(client::serve_plain))
            .route("/_livehtml/{file}", get(client::serve_named))
    }

    /// How many live connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.len()
    }

    /// Starts shutting down: new upgrades get 503, and every open connection is sent the
    /// configured close code (1012 by default) and closed.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let heartbeats = self.inner.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        for registry in heartbeats.values() {
            registry.close_all(self.inner.config.shutdown_code);
        }
    }

    /// The registry of connections pinged every `every`, with its timer started on first use.
    fn heartbeat(&self, every: Duration) -> Arc<Registry> {
        let mut heartbeats = self.inner.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        heartbeats
            .entry(every)
            .or_insert_with(|| {
                let registry = Arc::new(Registry::default());
                let weak = Arc::downgrade(&registry);
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        // Ends with the `Live` that owns the registry.
                        let Some(registry) = weak.upgrade() else { return };
                        registry.tick();
                    }
                });
                registry
            })
            .clone()
    }

    /// Whether [`Live::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Resolves once [`Live::shutdown`] has been called: start a deadline from here for what
    /// a shutdown waits on that livehtml does not own, such as axum's graceful shutdown, which
    /// waits for every HTTP connection, however slow its client.
    ///
    /// ```
    /// # async fn serve(live: livehtml::Live, listener: tokio::net::TcpListener, app: axum::Router) {
    /// use std::time::Duration;
    /// let serve = axum::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal()));
    /// let bound = async {
    ///     live.shutdown_started().await;
    ///     tokio::time::sleep(Duration::from_secs(10)).await;
    /// };
    /// tokio::select! {
    ///     _ = serve => {}
    ///     () = bound => {} // HTTP connections still open are dropped with the runtime
    /// }
    /// live.drain(Duration::from_secs(10)).await;
    /// # }
    /// ```
    pub async fn shutdown_started(&self) {
        self.inner.shutdown.cancelled().await;
    }

    /// A future for axum's `with_graceful_shutdown`: waits for `signal`, then calls
    /// [`Live::shutdown`] so live sockets close while axum stops accepting.
    pub fn graceful_shutdown(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let live = self.clone();
        async move {
            signal.await;
            live.shutdown();
        }
    }

    /// Waits until every live connection has closed, at most `timeout`. Returns whether all
    /// closed in time; connections still open after it are dropped with the runtime.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.inner.connections.close();
        tokio::time::timeout(timeout, self.inner.connections.wait()).await.is_ok()
    }
}

/// What a connecting page says of itself: where it was in its topics (`lh-since`, or an SSE
/// stream's `Last-Event-ID`), and whether it runs livehtml.js (`client=lh`). A plain htmx page's
/// `lh-since` is where its first render left it, sent again on every reconnect: it does not
/// track, and is resynced on any gap.
/// A connection's span: every line it logs says which connection (`id`, the number
/// [`Connect::id`] and `ctx.id()` give too), on which transport and path.
pub(super) fn connection_span(id: u64, transport: &'static str, path: &str) -> tracing::Span {
    tracing::info_span!("live", id, transport, path)
}

/// Runs a connection's task, corked, inside its span when a tracing subscriber takes it; with
/// none (or one that leaves livehtml's info spans out) the task stores no span.
pub(super) fn spawn_connection(span: tracing::Span, task: impl Future<Output = ()> + Send + 'static) {
    if span.is_disabled() {
        tokio::spawn(outbox::Corked::new(task));
    } else {
        tokio::spawn(outbox::Corked::new(tracing::Instrument::instrument(task, span)));
    }
}

pub(super) fn rejoin(connect: &Connect) -> (Option<Since>, bool) {
    let mut since = None;
    let mut lh = false;
    for (key, value) in form_urlencoded::parse(connect.uri.query().unwrap_or_default().as_bytes()) {
        match &*key {
            names::query::SINCE => since = Some(Since::parse(&value)),
            names::query::CLIENT => lh = value == "lh",
            _ => {}
        }
    }
    match since.as_mut() {
        // A plain htmx socket's `lh-since` is the URL it was rendered with, whatever it saw since.
        Some(since) => since.tracks = lh,
        None => {
            let header = connect.headers.get("last-event-id").and_then(|v| v.to_str().ok());
            since = header.map(Since::parse);
        }
    }
    (since, lh)
}

#[cfg(test)]
mod tests {

    use crate::transport::outbox;
    use crate::transport::ws::Connection;

    struct Idle;

    impl crate::Session for Idle {
        async fn on_event(&mut self, _: &mut crate::Context, _: crate::Event) -> Result<(), crate::SessionError> {
            Ok(())
        }
    }

    /// An idle WebSocket connection's task is the session loop's future: it is most of what an
    /// idle connection costs (BENCHMARKS.md's idle mode), so it must not grow unnoticed.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let (subscriber, inbox, io) = outbox::attach(8, None, outbox::Framing::WebSocket);
        let socket = crate::transport::socket::Socket::new(io);
        let tracker = tokio_util::task::TaskTracker::new();
        let connection = Connection {
            socket,
            _token: tracker.token(),
            inbox,
            limits: std::sync::Arc::new(crate::Limits::default()),
            heard_since_ping: true,
            draining: false,
            deadline: None,
            closing: None,
        };
        let ctx = crate::Context::new(0, subscriber, crate::PubSub::default(), Default::default());
        let task = crate::session::run(Idle, ctx, connection);
        // The bound keeps the future, with tokio's task cell around it (allocated in steps of
        // 128 bytes), in the smallest step it fits today; a session with state of its own adds
        // its size to it. How it got here, and what each step saved, is in BENCHMARKS.md ("How
        // livehtml's transport is built").
        assert!(std::mem::size_of_val(&task) <= 272, "{} bytes", std::mem::size_of_val(&task));
    }
}
