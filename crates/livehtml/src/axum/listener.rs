//! A TCP listener for `axum::serve` that lets an SSE stream leave hyper after its response head.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every HTTP/1.1 connection, and
//! a connection task, for as long as a response body streams: an idle event stream cost 22 KB
//! where an idle WebSocket (which hyper hands over on upgrade) costs under 2 KB. A plain `200`
//! response cannot be upgraded, so this listener gives each connection a handle
//! ([`Peer`], in the request's `ConnectInfo`) through which an SSE endpoint asks for the socket:
//! hyper writes the response head as usual (with every header the app's layers added), the
//! socket is handed over once that head is flushed, and hyper's connection ends. From then on the
//! stream is written like a WebSocket: from the publisher, no task woken per event.
//!
//! Hand-written because no crate does it: hyper has no way to give up a connection whose
//! response is not a 101.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::observe::{self, Rejected};

/// A TCP listener whose connections can hand an event stream over to livehtml.
///
/// Serve the app with the [`Peer`] connect info, and every SSE endpoint's idle stream costs as
/// little as an idle WebSocket. With a plain `TcpListener` everything works the same, and event
/// streams stay inside hyper.
///
/// ```no_run
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// let listener = livehtml::Listener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<livehtml::Peer>()).await
/// # }
/// ```
///
/// It also bounds what a client may cost before it has sent a request: the first request head
/// must arrive whole within [`Listener::head_timeout`] (10 s by default), or the connection is
/// closed (a half-open handshake, a head trickled a byte at a time, a connection that sends
/// nothing); and at most [`Listener::max_pending`] connections may wait for their first head at
/// once, from one address and in all, beyond which new connections are closed at once; a first
/// head over [`Listener::max_head_bytes`] closes its connection too; and one address may open
/// at most [`Listener::connection_rate`] new connections a second. (hyper's own header timeout
/// is off unless a timer is configured, which `axum::serve` does not: serve with
/// [`crate::serve`] and every later head of a keep-alive connection is timed too, and a head
/// over the limit is answered 431.) Its connections send without delay (`TCP_NODELAY`): with a
/// plain `TcpListener`, set it yourself (`axum::serve::ListenerExt::tap_io`).
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    pub(super) head_timeout: Duration,
    pub(super) max_head: usize,
    /// Added to `max_head` for the listener's own cut-off, when hyper answers first (431).
    slack: usize,
    pending: Arc<Pending>,
    /// New connections per second allowed from one address; `None`: no limit. Shared with
    /// the connections' requests: a long-poll session opened on a kept-alive connection counts
    /// as a new connection ([`Peer::admit_session`]).
    rate: Option<Arc<Arrivals>>,
}

/// New connections by address: a keyed token bucket (governor's), swept of quiet addresses
/// every [`SWEEP`] accepts so a scan of many addresses does not grow it for ever.
pub(super) struct Arrivals {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    accepted: std::sync::atomic::AtomicU32,
}

const SWEEP: u32 = 4096;

impl std::fmt::Debug for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrivals").field("addresses", &self.limiter.len()).finish()
    }
}

impl Arrivals {
    fn new(per_second: u32, burst: u32) -> Option<Arc<Self>> {
        let per_second = std::num::NonZeroU32::new(per_second)?;
        let burst = std::num::NonZeroU32::new(burst).unwrap_or(per_second);
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        Some(Arc::new(Self { limiter: governor::RateLimiter::keyed(quota), accepted: Default::default() }))
    }

    fn admit(&self, ip: IpAddr) -> bool {
        let accepted = self.accepted.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if accepted.is_multiple_of(SWEEP) {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&ip).is_ok()
    }
}

/// Connections waiting for their first request head, in all and by address.
#[derive(Debug)]
struct Pending {
    per_address: usize,
    total: usize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Pending {
    fn by_address(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip`, unless a cap is reached.
    fn admit(&self, ip: IpAddr) -> bool {
        let mut by_address = self.by_address();
        let total: usize = by_address.values().sum();
        let mine = by_address.entry(ip).or_default();
        if *mine >= self.per_address || total >= self.total {
            if *mine == 0 {
                by_address.remove(&ip);
            }
            return false;
        }
        *mine += 1;
        true
    }

    fn done(&self, ip: IpAddr) {
        let mut by_address = self.by_address();
        if let Some(n) = by_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                by_address.remove(&ip);
            }
        }
    }
}

impl Listener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        let pending = Pending { per_address: 4096, total: 16_384, by_address: Mutex::default() };
        Self {
            inner,
            head_timeout: Duration::from_secs(10),
            max_head: 32 * 1024,
            slack: 0,
            pending: Arc::new(pending),
            rate: Arrivals::new(200, 1000),
        }
    }

    /// How many new connections one address may open: `per_second`, with bursts of `burst`
    /// (default 200/s, bursts of 1,000: a browser opens a handful, an office behind one NAT a
    /// few hundred). Beyond it a connection is closed as soon as it is accepted, without an
    /// answer, and the address's open connections are untouched. `per_second` 0: no limit
    /// (a load generator's peer).
    pub fn connection_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.rate = Arrivals::new(per_second, burst);
        self
    }

    /// Under [`crate::serve`], hyper answers a head over the limit with 431: the listener's
    /// own cut-off moves above it (a head is a few hundred bytes longer on the wire than hyper
    /// counts it), left for heads that keep coming after the answer.
    pub(super) fn answer_oversize(&mut self) {
        self.slack = self.max_head.max(4096);
    }

    /// The most bytes a connection's first request head may take (default 32 KiB: far above
    /// what browsers send, cookies and all); beyond it the connection is closed.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// How long a connection may take to send its first request head whole (default 10 s).
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// How many connections may wait for their first request head at once: from one address
    /// (default 4,096) and in all (default 16,384). A legitimate client sends its head at once,
    /// so only a flood of new connections (or of half-open ones) waits long enough to count;
    /// the defaults leave room for a load generator on one address.
    pub fn max_pending(mut self, per_address: usize, total: usize) -> Self {
        self.pending = Arc::new(Pending { per_address, total, by_address: Mutex::default() });
        self
    }

    /// Binds a listener to `addr`.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::new(TcpListener::bind(addr).await?))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if self.rate.as_ref().is_some_and(|rate| !rate.admit(addr.ip())) {
                tracing::debug!(%addr, "closed a connection: its address opens too many");
                observe::rejected(Rejected::ConnectionRate);
                continue;
            }
            if !self.pending.admit(addr.ip()) {
                tracing::debug!(%addr, "closed a connection: too many are waiting for their first request");
                observe::rejected(Rejected::Pending);
                continue;
            }
            // Live frames are small and must go out when written: without this, Nagle's
            // algorithm holds a frame written while an earlier one is unacknowledged until the
            // client's (delayed) ACK. Every real-time server turns it off (Go by default).
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%addr, error = %e, "could not set TCP_NODELAY");
            }
            let head = Head::Waiting(Box::new(Waiting {
                deadline: Box::pin(tokio::time::sleep(self.head_timeout)),
                matched: 0,
                left: self.max_head + self.slack,
                pending: self.pending.clone(),
                ip: addr.ip(),
            }));
            let handoff = Arc::new(Handoff::default());
            let rate = self.rate.clone();
            let connection = Connection { stream: Some(stream), handoff, wrote: false, head, rate };
            return (connection, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One accepted connection, as hyper reads and writes it.
#[derive(Debug)]
pub struct Connection {
    /// `None` once handed over.
    stream: Option<TcpStream>,
    handoff: Arc<Handoff>,
    /// Bytes were written since the handoff was armed: the next flush ends the response head.
    wrote: bool,
    head: Head,
    /// The listener's new connections by address, for the requests that open sessions.
    rate: Option<Arc<Arrivals>>,
}

/// The first request head: still awaited (boxed: most of a connection's life is after it), or
/// read.
#[derive(Debug)]
enum Head {
    Waiting(Box<Waiting>),
    Read,
}

#[derive(Debug)]
struct Waiting {
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// How much of the blank line that ends a head (`\r\n\r\n`) the last bytes were.
    matched: u8,
    /// Bytes the head may still take.
    left: usize,
    pending: Arc<Pending>,
    ip: IpAddr,
}

impl Head {
    /// Follows the bytes just read: `Some(true)` once the head's blank line is among them,
    /// `None` when the head is over its size.
    fn read(waiting: &mut Waiting, bytes: &[u8]) -> Option<bool> {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            waiting.left = waiting.left.checked_sub(1)?;
            waiting.matched = if b == END[usize::from(waiting.matched)] {
                waiting.matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if waiting.matched == 4 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn finish(&mut self) {
        if let Self::Waiting(waiting) = std::mem::replace(self, Self::Read) {
            waiting.pending.done(waiting.ip);
        }
    }
}

/// The request's view of its connection: the client's address, and the way to take the socket
/// for an event stream. Put in each request by `into_make_service_with_connect_info::<Peer>()`.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: SocketAddr,
    handoff: Arc<Handoff>,
    rate: Option<Arc<Arrivals>>,
}

impl Peer {
    pub(super) fn new(addr: SocketAddr, connection: &Connection) -> Self {
        Self { addr, handoff: connection.handoff.clone(), rate: connection.rate.clone() }
    }

    /// Whether this address may open one more long-poll session: it counts as a new
    /// connection against [`Listener::connection_rate`], as a WebSocket's connection does (a
    /// session costs what a connection costs, however many one kept-alive connection opens).
    pub(crate) fn admit_session(&self) -> bool {
        self.rate.as_ref().is_none_or(|rate| rate.admit(self.addr.ip()))
    }

    /// The client's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arms the handoff: the socket goes to the returned receiver as soon as the response to
    /// this request has had its head flushed; the response's body must be the returned
    /// [`Released`], which ends hyper's side then. `None` if the connection was taken already.
    pub(crate) fn take_over(&self) -> Option<(Released, oneshot::Receiver<TcpStream>)> {
        let mut state = self.handoff.state();
        if !matches!(*state, State::Idle) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        *state = State::Armed(tx);
        self.handoff.armed.store(true, Ordering::Release);
        Some((Released { handoff: self.handoff.clone() }, rx))
    }
}

impl Connected<IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        Self { addr: *stream.remote_addr(), handoff: stream.io().handoff.clone(), rate: stream.io().rate.clone() }
    }
}

#[derive(Debug, Default)]
struct Handoff {
    /// Checked on every write and flush; the state is locked only once this is set.
    armed: AtomicBool,
    state: Mutex<State>,
    /// The response body, which ends hyper's connection once the socket is handed over.
    body: AtomicWaker,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    Armed(oneshot::Sender<TcpStream>),
    Done,
}

impl Handoff {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `stream` to the armed receiver (if it is still waiting) and ends the response body.
    fn release(&self, stream: Option<TcpStream>) {
        if let (State::Armed(tx), Some(stream)) = (std::mem::replace(&mut *self.state(), State::Done), stream) {
            // A receiver that went away drops the socket: the client sees it close.
            let _ = tx.send(stream);
        }
        self.body.wake();
    }
}

impl Connection {
    /// The socket, out of this wrapper (after a WebSocket upgrade: no head or hand-off is left
    /// to watch). `None` once an event stream took it.
    pub(crate) fn into_stream(mut self) -> Option<TcpStream> {
        self.stream.take()
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream.as_mut().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn note_write(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) && self.handoff.armed.load(Ordering::Acquire) {
            self.wrote = true;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.head.finish();
        if self.handoff.armed.load(Ordering::Acquire) {
            // hyper gave up before the head went out: the waiting stream hears of it.
            self.handoff.release(None);
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(self.stream()?).poll_read(cx, buf);
        let this = &mut *self;
        let Head::Waiting(waiting) = &mut this.head else { return read };
        if let Poll::Ready(Ok(())) = read {
            match Head::read(waiting, &buf.filled()[before..]) {
                Some(true) => {
                    this.head.finish();
                    return read;
                }
                Some(false) => {}
                None => {
                    tracing::debug!("closed a connection whose request head was too large");
                    observe::rejected(Rejected::HeadTooLarge);
                    return Poll::Ready(Err(io::ErrorKind::InvalidData.into()));
                }
            }
        }
        // Still no whole head: the deadline stands, whether bytes came or not.
        if std::future::Future::poll(waiting.deadline.as_mut(), cx).is_ready() {
            tracing::debug!("closed a connection that did not send its request head in time");
            observe::rejected(Rejected::HeadTimeout);
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(self.stream()?).poll_write(cx, buf);
        self.note_write(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(self.stream()?).poll_write_vectored(cx, bufs);
        self.note_write(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// hyper flushes once everything it buffered is written: after an armed handoff's first
    /// write, that is the end of the response head, and the socket changes hands.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(self.stream()?).poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        if self.wrote {
            let stream = self.stream.take();
            self.handoff.release(stream);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            // Handed over: the socket is not hyper's to shut down.
            None => Poll::Ready(Ok(())),
        }
    }
}

/// The body of a response whose socket is handed over: it never yields data, and fails once
/// the handoff is done, which makes hyper drop its side of the connection (and its buffers).
#[derive(Debug)]
pub(crate) struct Released {
    handoff: Arc<Handoff>,
}

/// Why hyper's connection ended: not an error anyone sees.
#[derive(Debug)]
pub(crate) struct HandedOver;

impl std::fmt::Display for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connection was handed over to an event stream")
    }
}

impl std::error::Error for HandedOver {}

impl http_body::Body for Released {
    type Data = Bytes;
    type Error = HandedOver;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HandedOver>>> {
        self.handoff.body.register(cx.waker());
        if matches!(*self.handoff.state(), State::Done) {
            return Poll::Ready(Some(Err(HandedOver)));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small frames go out when written: with Nagle's algorithm a frame written while an earlier
    /// one is unacknowledged waits for that ACK, which a client may delay by 40 ms or more.
    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let mut listener = Listener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_client, (connection, _)) =
            tokio::join!(TcpStream::connect(addr), axum::serve::Listener::accept(&mut listener));
        assert!(connection.stream.as_ref().unwrap().nodelay().unwrap());
    }
}
