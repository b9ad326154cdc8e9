//! A worker process: holds its share of the clients and reports to the coordinator in JSON
//! lines on stdout; takes commands (`ping N`, `stats`, `stop`) on stdin.
//!
//! The clients run on one thread: one `mio` poll over every socket, each socket a sync
//! tungstenite `WebSocket` in non-blocking mode (tungstenite's documented way to run over an
//! event loop). The generator shares the machine with the server under test, so what it spends
//! per delivery is taken from the server: a task, a waker and a `select!` per client per
//! message (the first version, on tokio-tungstenite) cost about as much CPU as the server spent
//! sending. Here a delivery costs one `recv` and a parse.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::client::ClientHandshake;
use tokio_tungstenite::tungstenite::handshake::{HandshakeError, MidHandshake};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use crate::dialect::{Dialect, EngineIo, engine_io};
use crate::sse_body::{self, Body};
use crate::tally::{Stats, emit};

/// Connections set up at once; more would overflow the server's listen backlog.
pub(crate) const CONNECTING_AT_ONCE: usize = 128;

/// tungstenite's read buffer per client. Its default, 128 KiB, is zeroed before every read
/// (`FrameCodec::read_in` resizes the buffer to its capacity) and reallocated as received
/// payloads are split off: with thousands of clients that made the generator spend more CPU
/// zeroing memory (38% of the machine's time at 5,000 clients, by `perf record -a`) than
/// the server spent serving. The generator's messages are a few hundred bytes; the socket is
/// read through [`RECV_BUFFER`].
pub(crate) const READ_BUFFER: usize = 1024;

/// Bytes one `recv` may take: a burst's backlog comes in a few calls.
const RECV_BUFFER: usize = 64 * 1024;

/// The token of the stdin thread's wake-ups; clients are numbered from 0.
const COMMANDS: Token = Token(usize::MAX);

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkerArgs {
    #[arg(long)]
    pub(crate) url: String,
    #[arg(long)]
    pub(crate) addr: SocketAddr,
    #[arg(long, value_enum)]
    pub(crate) dialect: Dialect,
    #[arg(long)]
    pub(crate) conns: u32,
    #[arg(long)]
    pub(crate) messages: u64,
    #[arg(long)]
    pub(crate) source_ip: IpAddr,
    /// How the clients are run.
    #[arg(long, value_enum, default_value = "mio")]
    pub(crate) engine: Engine,
}

/// A worker's client engine.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Engine {
    /// Every client on one `mio` poll, read through one 64 KiB buffer (this module).
    #[default]
    Mio,
    /// A tokio task per client on tokio-tungstenite's defaults (`crate::tokio_worker`).
    Tokio,
}

thread_local! {
    /// The one receive buffer of the worker's thread.
    static RECEIVED: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; RECV_BUFFER].into_boxed_slice());
}

/// A client's socket as tungstenite reads it.
///
/// It receives through the thread's 64 KiB buffer and keeps what tungstenite's small buffer
/// did not take, so a burst costs a `recv` per 64 KiB rather than per 1 KiB. It reports "would
/// block" after a short read until the poll says it is readable again: edge-triggered readiness
/// fires for every arrival, so a read that did not fill the buffer drained the socket, and the
/// `recv` that would only return `EAGAIN` after every message is saved (tokio does the same).
struct Sock {
    tcp: TcpStream,
    drained: bool,
    /// Received bytes tungstenite has not taken yet (empty, unallocated, between bursts).
    unread: Vec<u8>,
    taken: usize,
}

impl Sock {
    fn new(tcp: TcpStream) -> Self {
        Self { tcp, drained: false, unread: Vec::new(), taken: 0 }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.taken < self.unread.len() {
            let n = buf.len().min(self.unread.len() - self.taken);
            buf[..n].copy_from_slice(&self.unread[self.taken..self.taken + n]);
            self.taken += n;
            if self.taken == self.unread.len() {
                self.unread = Vec::new();
                self.taken = 0;
            }
            return Ok(n);
        }
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        RECEIVED.with(|received| {
            let mut received = received.borrow_mut();
            let n = self.tcp.read(&mut received)?;
            if n < received.len() {
                self.drained = true;
            }
            let k = n.min(buf.len());
            buf[..k].copy_from_slice(&received[..k]);
            if n > k {
                self.unread = received[k..n].to_vec();
            }
            Ok(k)
        })
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

enum State {
    /// The TCP connect is under way.
    Connecting(Sock),
    Handshaking(MidHandshake<ClientHandshake<Sock>>),
    /// Upgraded; `joined` once Socket.IO's namespace connect is done (at once for the others).
    Open {
        ws: Box<WebSocket<Sock>>,
        joined: bool,
        warmed: bool,
    },
    /// An SSE stream (the `sse` dialect): its request sent, reading events.
    Stream(Box<EventStream>),
    Gone,
}

/// One SSE client: reads `GET /sse`'s response, de-chunks it, and hands each event (the text up
/// to a blank line) to the stats, which find the message's marker in it.
struct EventStream {
    sock: Sock,
    /// The response head has been read (the client counts as joined).
    head: bool,
    body: Body,
    warmed: bool,
}

struct Worker {
    args: WorkerArgs,
    poll: Poll,
    clients: Vec<State>,
    /// Clients not yet started.
    pending: VecDeque<usize>,
    connecting: usize,
    stats: Stats,
}

pub(crate) fn run(args: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.engine == Engine::Tokio {
        return crate::tokio_worker::run(args);
    }
    let poll = Poll::new()?;
    let commands = spawn_stdin(Waker::new(poll.registry(), COMMANDS)?);
    let conns = args.conns as usize;
    let mut worker = Worker {
        stats: Stats::new(args.messages)?,
        args,
        poll,
        clients: (0..conns).map(|_| State::Gone).collect(),
        pending: (0..conns).collect(),
        connecting: 0,
    };
    worker.start_connects();
    worker.connect_settled();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = worker.poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for event in &events {
            if event.token() == COMMANDS {
                continue;
            }
            worker.on_ready(event.token().0, event.is_readable());
        }
        while let Ok(line) = commands.try_recv() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("ping") => worker.ping(words.next().and_then(|r| r.parse().ok()).unwrap_or(0)),
                Some("stats") => emit(worker.stats.json()),
                Some("stop") => {
                    emit(worker.stats.json());
                    return Ok(());
                }
                _ => {}
            }
        }
        worker.start_connects();
    }
}

/// Reads commands on a thread of their own and wakes the poll for each; end of input is `stop`.
fn spawn_stdin(waker: Waker) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                return;
            }
            let _ = waker.wake();
        }
        let _ = tx.send("stop".to_owned());
        let _ = waker.wake();
    });
    rx
}

impl Worker {
    fn start_connects(&mut self) {
        while self.connecting < CONNECTING_AT_ONCE {
            let Some(i) = self.pending.pop_front() else { return };
            self.connecting += 1;
            match self.connect(i) {
                Ok(sock) => self.clients[i] = State::Connecting(sock),
                Err(e) => self.fail(i, e),
            }
        }
    }

    fn connect(&mut self, i: usize) -> io::Result<Sock> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.bind(&SocketAddr::new(self.args.source_ip, 0).into())?;
        match socket.connect(&self.args.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let mut tcp = TcpStream::from_std(socket.into());
        self.poll.registry().register(&mut tcp, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        Ok(Sock::new(tcp))
    }

    /// A connection attempt ended without an open socket.
    fn fail(&mut self, i: usize, e: impl std::fmt::Display) {
        self.stats.error(e);
        self.stats.failed += 1;
        self.connecting -= 1;
        self.clients[i] = State::Gone;
        self.connect_settled();
    }

    fn connect_settled(&self) {
        if self.stats.open + self.stats.failed == self.args.conns {
            emit(json!({"ev": "connected", "open": self.stats.open, "failed": self.stats.failed}));
        }
    }

    fn on_ready(&mut self, i: usize, readable: bool) {
        let state = std::mem::replace(&mut self.clients[i], State::Gone);
        self.clients[i] = match state {
            State::Connecting(mut sock) => {
                // Writable (or an error): the connect finished one way or the other.
                if let Some(e) = sock.tcp.take_error().ok().flatten() {
                    return self.fail(i, e);
                }
                if let Err(e) = sock.tcp.peer_addr() {
                    if e.kind() == io::ErrorKind::NotConnected {
                        self.clients[i] = State::Connecting(sock);
                        return;
                    }
                    return self.fail(i, e);
                }
                sock.drained = false;
                if self.args.dialect == Dialect::Sse {
                    return self.open_stream(i, sock);
                }
                let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
                self.handshake(i, tungstenite::client::client_with_config(self.args.url.as_str(), sock, Some(config)))
            }
            State::Handshaking(mid) => {
                let mut mid = mid;
                if readable {
                    mid.get_mut().get_mut().drained = false;
                }
                self.handshake(i, mid.handshake())
            }
            State::Open { mut ws, joined, warmed } => {
                if readable {
                    ws.get_mut().drained = false;
                }
                // Writable again: what a ping or a reply left behind goes now.
                let flushed = match ws.flush() {
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                    other => other,
                };
                self.open_or_lost(flushed, ws, joined, warmed)
            }
            State::Stream(mut stream) => {
                if readable {
                    stream.sock.drained = false;
                }
                self.read_stream(stream)
            }
            State::Gone => State::Gone,
        };
    }

    /// Sends the stream's `GET` (a few dozen bytes: a fresh socket takes them whole).
    fn open_stream(&mut self, i: usize, mut sock: Sock) {
        if let Err(e) = sock.tcp.write_all(sse_body::request(self.args.addr).as_bytes()) {
            return self.fail(i, e);
        }
        let stream = EventStream { sock, head: false, body: Body::default(), warmed: false };
        self.clients[i] = self.read_stream(Box::new(stream));
    }

    /// Reads what the stream has: its head first, then whole events.
    fn read_stream(&mut self, mut stream: Box<EventStream>) -> State {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.sock.read(&mut buf) {
                Ok(0) => {
                    self.stats.error("the stream ended");
                    self.lost(stream.head);
                    return State::Gone;
                }
                Ok(n) => stream.body.raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.stats.error(e);
                    self.lost(stream.head);
                    return State::Gone;
                }
            }
        }
        if !stream.head {
            match stream.body.take_head() {
                Ok(false) => return State::Stream(stream),
                Ok(true) => {}
                Err(refused) => {
                    self.stats.error(refused);
                    self.connecting -= 1;
                    self.stats.failed += 1;
                    self.connect_settled();
                    return State::Gone;
                }
            }
            stream.head = true;
            self.connecting -= 1;
            self.joined();
        }
        let (stats, warmed, messages) = (&mut self.stats, &mut stream.warmed, self.args.messages);
        let open = stream.body.events(|event| stats.on_payload(event, warmed, messages));
        if !open {
            self.stats.error("the stream ended");
            self.lost(true);
            return State::Gone;
        }
        State::Stream(stream)
    }

    fn handshake(
        &mut self,
        i: usize,
        result: Result<
            (WebSocket<Sock>, tungstenite::handshake::client::Response),
            HandshakeError<ClientHandshake<Sock>>,
        >,
    ) -> State {
        match result {
            Ok((ws, _)) => {
                let joined = self.args.dialect != Dialect::Socketio;
                self.connecting -= 1;
                if joined {
                    self.joined();
                }
                // Frames may have come right behind the response.
                self.open_or_lost(Ok(()), Box::new(ws), joined, false)
            }
            Err(HandshakeError::Interrupted(mid)) => State::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => {
                self.fail(i, e);
                State::Gone
            }
        }
    }

    /// After `before` (a flush), reads what the socket has: the client stays open, or is lost.
    fn open_or_lost(
        &mut self,
        before: tungstenite::Result<()>,
        mut ws: Box<WebSocket<Sock>>,
        mut joined: bool,
        mut warmed: bool,
    ) -> State {
        match before.and_then(|()| self.read(&mut ws, &mut joined, &mut warmed)) {
            Ok(()) => State::Open { ws, joined, warmed },
            Err(e) => {
                self.stats.error(e);
                self.lost(joined);
                State::Gone
            }
        }
    }

    fn joined(&mut self) {
        self.stats.open += 1;
        self.connect_settled();
    }

    /// An upgraded connection ended.
    fn lost(&mut self, joined: bool) {
        if joined {
            self.stats.open -= 1;
            self.stats.dropped += 1;
        } else {
            self.stats.failed += 1;
            self.connect_settled();
        }
    }

    /// Reads every message the socket has; `Ok` when it would block.
    fn read(&mut self, ws: &mut WebSocket<Sock>, joined: &mut bool, warmed: &mut bool) -> tungstenite::Result<()> {
        loop {
            let message = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            match message {
                Message::Text(t) if self.args.dialect == Dialect::Socketio => match engine_io(&t, *joined) {
                    EngineIo::Send(reply) => send(ws, Message::text(reply))?,
                    EngineIo::Joined => {
                        *joined = true;
                        self.joined();
                    }
                    EngineIo::Payload => self.stats.on_payload(t.as_bytes(), warmed, self.args.messages),
                    EngineIo::Ignore => {}
                },
                Message::Text(t) => self.stats.on_payload(t.as_bytes(), warmed, self.args.messages),
                Message::Binary(b) => self.stats.on_payload(&b, warmed, self.args.messages),
                Message::Pong(p) => self.stats.on_pong(&p),
                Message::Close(_) => return Err(tungstenite::Error::ConnectionClosed),
                Message::Ping(_) | Message::Frame(_) => {}
            }
        }
    }

    fn ping(&mut self, round: u64) {
        self.stats.pong_round = round;
        self.stats.pongs = 0;
        for i in 0..self.clients.len() {
            if let State::Open { ws, .. } = &mut self.clients[i]
                && let Err(e) = send(ws, Message::Ping(round.to_be_bytes().to_vec().into()))
            {
                self.stats.error(e);
                self.clients[i] = State::Gone;
                self.lost(true);
            }
        }
    }
}

/// Sends a message; what the socket does not take now goes when it is writable (tungstenite
/// keeps it, and every later read or write retries).
fn send(ws: &mut WebSocket<Sock>, message: Message) -> tungstenite::Result<()> {
    match ws.send(message) {
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}
