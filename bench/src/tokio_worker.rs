//! The second client engine (`--engine tokio`): what a Rust user's client looks like. One
//! current-thread tokio runtime per worker process, one task per client, each a
//! tokio-tungstenite `WebSocketStream` with its default settings (128 KiB read buffer, Nagle's
//! algorithm on) or, for the `sse` dialect, a `TcpStream` read with `read().await`. A client
//! reads in a `select!` with the worker's ping rounds: a task, a waker and a select per client
//! per message, which the mio engine (`crate::worker`) was written to avoid. The two engines
//! read the same server differently; the benchmarks report both.
//!
//! Same protocol with the coordinator as the mio engine: JSON lines through [`crate::tally`],
//! commands (`ping N`, `stats`, `stop`) on stdin.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::dialect::{Dialect, EngineIo, engine_io};
use crate::sse_body::{self, Body};
use crate::tally::{Stats, emit};
use crate::worker::{CONNECTING_AT_ONCE, WorkerArgs};

type Error = Box<dyn std::error::Error>;

/// What every client task of the worker shares (one thread: no locks).
struct Shared {
    args: WorkerArgs,
    stats: RefCell<Stats>,
}

impl Shared {
    fn joined(&self) {
        let mut stats = self.stats.borrow_mut();
        stats.open += 1;
        self.settled(&stats);
    }

    /// A client that never joined.
    fn failed(&self, e: impl std::fmt::Display) {
        let mut stats = self.stats.borrow_mut();
        stats.error(e);
        stats.failed += 1;
        self.settled(&stats);
    }

    /// A joined client's connection ended.
    fn lost(&self, e: impl std::fmt::Display) {
        let mut stats = self.stats.borrow_mut();
        stats.error(e);
        stats.open -= 1;
        stats.dropped += 1;
    }

    fn settled(&self, stats: &Stats) {
        if stats.open + stats.failed == self.args.conns {
            emit(json!({"ev": "connected", "open": stats.open, "failed": stats.failed}));
        }
    }

    fn payload(&self, payload: &[u8], warmed: &mut bool) {
        self.stats.borrow_mut().on_payload(payload, warmed, self.args.messages);
    }
}

/// Runs the worker until `stop` (or the end of stdin).
pub(crate) fn run(args: WorkerArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(args))
}

async fn serve(args: WorkerArgs) -> Result<(), Error> {
    let stats = RefCell::new(Stats::new(args.messages)?);
    let shared = Rc::new(Shared { args, stats });
    let (pings, rounds) = watch::channel(0u64);
    // Connections set up a bounded number at a time, as the mio engine does.
    let connecting = Rc::new(Semaphore::new(CONNECTING_AT_ONCE));
    for _ in 0..shared.args.conns {
        tokio::task::spawn_local(client(shared.clone(), connecting.clone(), rounds.clone()));
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ping") => {
                let round = words.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                {
                    let mut stats = shared.stats.borrow_mut();
                    stats.pong_round = round;
                    stats.pongs = 0;
                }
                let _ = pings.send(round);
            }
            Some("stats") => emit(shared.stats.borrow().json()),
            Some("stop") => break,
            _ => {}
        }
    }
    emit(shared.stats.borrow().json());
    Ok(())
}

/// A TCP connection from the worker's own source address.
async fn connect(args: &WorkerArgs) -> std::io::Result<TcpStream> {
    let socket = if args.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(args.source_ip, 0))?;
    socket.connect(args.addr).await
}

async fn client(shared: Rc<Shared>, connecting: Rc<Semaphore>, rounds: watch::Receiver<u64>) {
    let Ok(permit) = connecting.acquire().await else { return };
    let stream = match connect(&shared.args).await {
        Ok(stream) => stream,
        Err(e) => return shared.failed(e),
    };
    if shared.args.dialect == Dialect::Sse {
        return sse(&shared, stream, permit).await;
    }
    let (mut ws, _) = match tokio_tungstenite::client_async(shared.args.url.as_str(), stream).await {
        Ok(open) => open,
        Err(e) => return shared.failed(e),
    };
    let socketio = shared.args.dialect == Dialect::Socketio;
    let mut joined = !socketio;
    // Held until the client has joined (Socket.IO: its namespace).
    let mut permit = Some(permit);
    if joined {
        shared.joined();
        drop(permit.take());
    }
    let mut rounds = rounds;
    let mut warmed = false;
    loop {
        tokio::select! {
            message = ws.next() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return end(&shared, joined, e),
                    None => return end(&shared, joined, "the server closed the connection"),
                };
                let reply = match message {
                    Message::Text(t) if socketio => match engine_io(&t, joined) {
                        EngineIo::Send(reply) => Some(Message::text(reply)),
                        EngineIo::Joined => {
                            joined = true;
                            shared.joined();
                            drop(permit.take());
                            None
                        }
                        EngineIo::Payload => { shared.payload(t.as_bytes(), &mut warmed); None }
                        EngineIo::Ignore => None,
                    },
                    Message::Text(t) => { shared.payload(t.as_bytes(), &mut warmed); None }
                    Message::Binary(b) => { shared.payload(&b, &mut warmed); None }
                    Message::Pong(p) => { shared.stats.borrow_mut().on_pong(&p); None }
                    Message::Close(_) => return end(&shared, joined, "closed by the server"),
                    Message::Ping(_) | Message::Frame(_) => None,
                };
                if let Some(reply) = reply && let Err(e) = ws.send(reply).await {
                    return end(&shared, joined, e);
                }
            }
            Ok(()) = rounds.changed() => {
                let round = *rounds.borrow_and_update();
                if let Err(e) = ws.send(Message::Ping(round.to_be_bytes().to_vec().into())).await {
                    return end(&shared, joined, e);
                }
            }
        }
    }
}

/// A client's connection ended: lost if it had joined, failed if not.
fn end(shared: &Shared, joined: bool, e: impl std::fmt::Display) {
    if joined { shared.lost(e) } else { shared.failed(e) }
}

/// An SSE client: `GET /sse`, then events until the stream ends.
async fn sse(shared: &Shared, mut stream: TcpStream, permit: tokio::sync::SemaphorePermit<'_>) {
    if let Err(e) = stream.write_all(sse_body::request(shared.args.addr).as_bytes()).await {
        return shared.failed(e);
    }
    let mut body = Body::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = false;
    let mut warmed = false;
    let mut permit = Some(permit);
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return end(shared, head, "the stream ended"),
            Ok(n) => n,
            Err(e) => return end(shared, head, e),
        };
        body.raw.extend_from_slice(&buf[..n]);
        if !head {
            match body.take_head() {
                Ok(false) => continue,
                Ok(true) => {}
                Err(refused) => return shared.failed(refused),
            }
            head = true;
            shared.joined();
            drop(permit.take());
        }
        if !body.events(|event| shared.payload(event, &mut warmed)) {
            return shared.lost("the stream ended");
        }
    }
}
