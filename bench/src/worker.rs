//! A worker process: holds its share of the clients on one thread and reports to the
//! coordinator in JSON lines on stdout; takes commands (`ping N`, `stats`, `stop`) on stdin.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::dialect::{self, Dialect};

/// Connections set up at once; more would overflow the server's listen backlog.
const CONNECTING_AT_ONCE: usize = 128;

/// tungstenite's read buffer per client. Its default, 128 KiB, is zeroed before every read
/// (`FrameCodec::read_in` resizes the buffer to its capacity) and reallocated as received
/// payloads are split off: with thousands of clients that made the generator spend more CPU
/// zeroing memory (38% of the machine's time at 5,000 clients, by `perf record -a`) than
/// the server spent serving. The generator's messages are a few hundred bytes.
pub(crate) const READ_BUFFER: usize = 4096;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkerArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum)]
    dialect: Dialect,
    #[arg(long)]
    conns: u32,
    #[arg(long)]
    messages: u64,
    #[arg(long)]
    source_ip: IpAddr,
}

struct Shared {
    args: WorkerArgs,
    per_seq: Vec<Cell<u32>>,
    warm: Cell<u32>,
    delivered: Cell<u64>,
    bytes: Cell<u64>,
    latency_us: RefCell<Histogram<u64>>,
    open: Cell<u32>,
    failed: Cell<u32>,
    dropped: Cell<u32>,
    pong_round: Cell<u64>,
    pongs: Cell<u32>,
    ping: watch::Sender<u64>,
    errors: RefCell<Vec<String>>,
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

impl Shared {
    fn on_payload(&self, payload: &[u8], warmed: &mut bool) {
        let Some((seq, sent)) = dialect::marker(payload) else { return };
        if seq == 0 {
            if !*warmed {
                *warmed = true;
                self.warm.set(self.warm.get() + 1);
                if self.warm.get() == self.open.get() {
                    emit(json!({"ev": "warm"}));
                }
            }
            return;
        }
        let latency_us = dialect::now_nanos().saturating_sub(sent) / 1000;
        let _ = self.latency_us.borrow_mut().record(latency_us.max(1));
        self.delivered.set(self.delivered.get() + 1);
        self.bytes.set(self.bytes.get() + payload.len() as u64);
        if let Some(count) = self.per_seq.get(seq as usize) {
            count.set(count.get() + 1);
            if count.get() == self.open.get() {
                emit(json!({"ev": "all", "seq": seq}));
            }
        }
        if self.delivered.get() == u64::from(self.open.get()) * self.args.messages {
            emit(json!({"ev": "done"}));
        }
    }

    fn error(&self, e: impl std::fmt::Display) {
        let mut errors = self.errors.borrow_mut();
        if errors.len() < 5 {
            errors.push(e.to_string());
        }
    }

    fn stats(&self) -> serde_json::Value {
        let mut buf = Vec::new();
        let _ = V2Serializer::new().serialize(&self.latency_us.borrow(), &mut buf);
        json!({
            "ev": "stats",
            "open": self.open.get(),
            "failed": self.failed.get(),
            "dropped": self.dropped.get(),
            "delivered": self.delivered.get(),
            "bytes": self.bytes.get(),
            "pongs": self.pongs.get(),
            "hist": base64::engine::general_purpose::STANDARD.encode(buf),
            "errors": *self.errors.borrow(),
        })
    }

    fn connect_settled(&self) {
        if self.open.get() + self.failed.get() == self.args.conns {
            emit(json!({"ev": "connected", "open": self.open.get(), "failed": self.failed.get()}));
        }
    }
}

pub(crate) fn run(args: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, work(args))
}

async fn work(args: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (ping, _) = watch::channel(0u64);
    let shared = Rc::new(Shared {
        per_seq: (0..=args.messages).map(|_| Cell::new(0)).collect(),
        args,
        warm: Cell::new(0),
        delivered: Cell::new(0),
        bytes: Cell::new(0),
        latency_us: RefCell::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        open: Cell::new(0),
        failed: Cell::new(0),
        dropped: Cell::new(0),
        pong_round: Cell::new(0),
        pongs: Cell::new(0),
        ping,
        errors: RefCell::new(Vec::new()),
    });
    let gate = Rc::new(Semaphore::new(CONNECTING_AT_ONCE));
    for _ in 0..shared.args.conns {
        tokio::task::spawn_local(client(shared.clone(), gate.clone()));
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ping") => {
                let round: u64 = words.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                shared.pong_round.set(round);
                shared.pongs.set(0);
                let _ = shared.ping.send(round);
            }
            Some("stats") => emit(shared.stats()),
            Some("stop") => break,
            _ => {}
        }
    }
    emit(shared.stats());
    Ok(())
}

async fn client(shared: Rc<Shared>, gate: Rc<Semaphore>) {
    let args = &shared.args;
    let permit = gate.acquire().await;
    let connected = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(args.source_ip, 0))?;
        let stream = socket.connect(args.addr).await?;
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(args.url.as_str(), stream, Some(config)).await?;
        if args.dialect == Dialect::Socketio {
            socketio_handshake(&mut ws).await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(ws)
    }
    .await;
    drop(permit);
    let mut ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            shared.error(e);
            shared.failed.set(shared.failed.get() + 1);
            shared.connect_settled();
            return;
        }
    };
    shared.open.set(shared.open.get() + 1);
    shared.connect_settled();

    let mut ping = shared.ping.subscribe();
    let mut warmed = false;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(t))) => {
                    if args.dialect == Dialect::Socketio && t.as_str() == "2" {
                        // Engine.IO heartbeat: answer or the server drops us.
                        if ws.send(Message::text("3")).await.is_err() { break }
                        continue;
                    }
                    shared.on_payload(t.as_bytes(), &mut warmed);
                }
                Some(Ok(Message::Binary(b))) => shared.on_payload(&b, &mut warmed),
                Some(Ok(Message::Pong(p))) => {
                    let round = p.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
                    if round == Some(shared.pong_round.get()) {
                        shared.pongs.set(shared.pongs.get() + 1);
                        if shared.pongs.get() == shared.open.get() {
                            emit(json!({"ev": "pongs", "round": shared.pong_round.get()}));
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => { shared.error(e); break }
                None => break,
            },
            Ok(()) = ping.changed() => {
                let round = *ping.borrow_and_update();
                if ws.send(Message::Ping(round.to_be_bytes().to_vec().into())).await.is_err() { break }
            }
        }
    }
    shared.open.set(shared.open.get() - 1);
    shared.dropped.set(shared.dropped.get() + 1);
}

/// Engine.IO open packet, then the Socket.IO connect to the default namespace.
async fn socketio_handshake<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<(), Box<dyn std::error::Error>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut opened = false;
    while let Some(message) = ws.next().await {
        if let Message::Text(t) = message? {
            if !opened && t.starts_with('0') {
                opened = true;
                ws.send(Message::text("40")).await?;
            } else if t.starts_with("40") {
                return Ok(());
            }
        }
    }
    Err("socket.io handshake did not complete".into())
}
