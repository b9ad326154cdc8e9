//! The coordinator: starts the peer, spreads clients over worker processes, drives one mode,
//! and reports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::dialect::{self, Dialect, EngineIo};
use crate::proc;
use crate::report::{Latency, Report};
use crate::worker::Engine;

type Error = Box<dyn std::error::Error>;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Fan-out, closed loop: each message is sent after every client got the previous one.
    Closed,
    /// Fan-out, burst: all messages sent at once.
    Burst,
    /// Hold connections open; report the server's memory per connection.
    Idle,
    /// Open as many connections as asked, keep them alive under a ping.
    Capacity,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// The mode to run.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Name of the peer, for the report.
    #[arg(long)]
    name: String,
    /// The peer's wire.
    #[arg(long, value_enum, default_value = "json")]
    dialect: Dialect,
    /// Clients joining the room (not counting the sender).
    #[arg(long, default_value_t = 1000)]
    clients: u32,
    /// Messages sent (closed and burst).
    #[arg(long, default_value_t = 200)]
    messages: u64,
    /// Worker processes holding the clients (each stays under the open-file limit).
    #[arg(long)]
    workers: Option<u32>,
    /// Ping rounds in capacity mode.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Give up on any single wait after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Write the JSON report here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Test an already running server at this base URL (`ws://127.0.0.1:PORT`) instead of starting one.
    #[arg(long, requires = "pid")]
    url: Option<String>,
    /// The pid of that server, for CPU and memory readings.
    #[arg(long)]
    pid: Option<u32>,
    /// Processes of the peer to start (a cluster: give the peer its broker, e.g.
    /// `LIVEHTML_PUBSUB`); the clients are spread over them, the sender on the first.
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// The pid of the cluster's broker, for its share of the CPU.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// The client engine: `mio` (every client of a worker on one poll; the generator's own
    /// way) or `tokio` (a task per client on tokio-tungstenite's defaults: what a Rust user's
    /// client looks like). The sender is the same for both.
    #[arg(long, value_enum, default_value = "mio")]
    engine: Engine,
    /// The peer's command line; it gets a free port in `PORT` and must listen on 127.0.0.1.
    #[arg(last = true)]
    command: Vec<String>,
}

pub(crate) struct Peer {
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    child: Option<Child>,
}

/// The peer's processes (one unless `--nodes`), each listening.
async fn start_peers(args: &RunArgs) -> Result<Vec<Peer>, Error> {
    let mut peers = Vec::new();
    for _ in 0..args.nodes.max(1) {
        peers.push(start_peer(args).await?);
    }
    Ok(peers)
}

/// CPU ticks and resident memory of every process of the peer, summed.
fn read_all(peers: &[Peer]) -> Result<proc::ProcStat, Error> {
    let mut total = proc::read(peers[0].pid)?;
    for peer in &peers[1..] {
        let stat = proc::read(peer.pid)?;
        total.cpu_ticks += stat.cpu_ticks;
        total.rss_kb += stat.rss_kb;
    }
    Ok(total)
}

async fn start_peer(args: &RunArgs) -> Result<Peer, Error> {
    peer(args.url.as_deref(), args.pid, &args.command, args.timeout).await
}

/// The server at `url` (pid `pid`) when given, else `command` started.
pub(crate) async fn peer(url: Option<&str>, pid: Option<u32>, command: &[String], timeout: u64) -> Result<Peer, Error> {
    if let (Some(url), Some(pid)) = (url, pid) {
        let host = url.trim_start_matches("ws://").trim_end_matches('/');
        let addr: SocketAddr = host.parse()?;
        return Ok(Peer { url: url.to_owned(), addr, pid, child: None });
    }
    spawn_peer(command, timeout).await
}

/// Starts the peer's `command` with a free port in `PORT`; resolves once it listens.
pub(crate) async fn spawn_peer(command: &[String], timeout: u64) -> Result<Peer, Error> {
    let (program, rest) = command.split_first().ok_or("give --url and --pid, or the peer's command after --")?;
    // A free port: bind 0, note the number, release it for the peer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let child = Command::new(program)
        .args(rest)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("peer exited at once")?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("peer {program} did not listen on {addr}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Peer { url: format!("ws://{addr}"), addr, pid, child: Some(child) })
}

struct Workers {
    stdin: Vec<ChildStdin>,
    events: mpsc::UnboundedReceiver<(usize, Value)>,
    _children: Vec<Child>,
}

impl Workers {
    async fn tell(&mut self, command: &str) -> Result<(), Error> {
        for s in &mut self.stdin {
            s.write_all(format!("{command}\n").as_bytes()).await?;
            s.flush().await?;
        }
        Ok(())
    }

    /// Waits until every worker sent an event that `pick` accepts; returns those events.
    async fn each(&mut self, timeout: Duration, mut pick: impl FnMut(&Value) -> bool) -> Result<Vec<Value>, Error> {
        let mut got: Vec<Option<Value>> = vec![None; self.stdin.len()];
        let deadline = tokio::time::Instant::now() + timeout;
        while got.iter().any(Option::is_none) {
            let (i, v) = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| "timed out waiting for the workers")?
                .ok_or("a worker exited")?;
            if pick(&v) {
                got[i] = Some(v);
            }
        }
        Ok(got.into_iter().flatten().collect())
    }
}

async fn spawn_workers(args: &RunArgs, peers: &[Peer], count: u32) -> Result<Workers, Error> {
    let (tx, events) = mpsc::unbounded_channel();
    let exe = std::env::current_exe()?;
    let mut stdin = Vec::new();
    let mut children = Vec::new();
    for i in 0..count {
        // Workers take the peer's processes in turn.
        let peer = &peers[i as usize % peers.len()];
        let url = args.dialect.url(&peer.url);
        let conns = args.clients / count + u32::from(i < args.clients % count);
        // Each worker on its own loopback source address: its own range of ephemeral ports.
        let source = Ipv4Addr::new(127, 0, 1, (i % 250) as u8 + 1);
        let mut child = Command::new(&exe)
            .arg("worker")
            .args(["--url", &url, "--addr", &peer.addr.to_string()])
            .args(["--dialect", &arg(args.dialect), "--conns", &conns.to_string()])
            .args(["--messages", &args.messages.to_string(), "--source-ip", &source.to_string()])
            .args(["--engine", &arg(args.engine)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        stdin.push(child.stdin.take().ok_or("worker stdin")?);
        let mut lines = tokio::io::BufReader::new(child.stdout.take().ok_or("worker stdout")?).lines();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send((i as usize, v));
                }
            }
        });
        children.push(child);
    }
    Ok(Workers { stdin, events, _children: children })
}

/// How a flag's value is spelled on the command line (the worker takes them as the run did).
fn arg(value: impl clap::ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

/// The sender: one more client, outside the measured ones. It reads and drops what it receives
/// so the server never sees it as a slow consumer.
struct Sender {
    tx: mpsc::UnboundedSender<Vec<String>>,
}

async fn connect_sender(args: &RunArgs, peer: &Peer) -> Result<Sender, Error> {
    if args.dialect == Dialect::Sse {
        return post_sender(peer).await;
    }
    let config = WebSocketConfig::default().read_buffer_size(crate::worker::READ_BUFFER);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(args.dialect.url(&peer.url), Some(config), true).await?;
    if args.dialect == Dialect::Socketio {
        while let Some(m) = ws.next().await {
            if let Message::Text(t) = m? {
                match dialect::engine_io(&t, false) {
                    EngineIo::Send(reply) => ws.send(Message::text(reply)).await?,
                    EngineIo::Joined => break,
                    _ => {}
                }
            }
        }
    }
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
    let pong = tx.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Text(t) = &m
                && let EngineIo::Send(reply) = dialect::engine_io(t, true)
            {
                let _ = pong.send(vec![reply.into()]);
            }
        }
    });
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            for text in batch {
                if sink.feed(Message::text(text)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    Ok(Sender { tx })
}

/// The sender of an SSE peer: pipelined `POST /post` requests on one keep-alive connection;
/// the answers are read and dropped.
async fn post_sender(peer: &Peer) -> Result<Sender, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = peer.addr;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut read, mut write) = tcp.into_split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let mut out = Vec::new();
            for body in batch {
                out.extend_from_slice(
                    format!(
                        "POST /post HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(body.as_bytes());
            }
            if write.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    Ok(Sender { tx })
}

impl Sender {
    fn send(&self, batch: Vec<String>) -> Result<(), Error> {
        self.tx.send(batch).map_err(|_| "the sender's connection closed".into())
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {msg}").unwrap().progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

pub(crate) async fn run(args: RunArgs) -> Result<Report, Error> {
    let timeout = Duration::from_secs(args.timeout);
    let mut peers = start_peers(&args).await?;
    let ticks = proc::ticks_per_second() as f64;
    // Readings of the fresh server, before any client.
    let before = read_all(&peers)?;
    let kernel_before = proc::tcp_kernel_bytes();

    let count = args.workers.unwrap_or_else(|| args.clients.div_ceil(10_000).max(2)).min(args.clients.max(1));
    // A whole number of workers per process of the peer: each gets the same share of clients.
    let nodes = args.nodes.max(1);
    let count = count.div_ceil(nodes) * nodes;
    let mut workers = spawn_workers(&args, &peers, count).await?;
    let peer = &peers[0];
    let connecting = bar(u64::from(args.clients), "connecting");
    let connected = workers.each(Duration::from_secs(args.timeout.max(120)), |v| v["ev"] == "connected").await?;
    let open: u64 = connected.iter().map(|v| v["open"].as_u64().unwrap_or(0)).sum();
    let failed: u64 = connected.iter().map(|v| v["failed"].as_u64().unwrap_or(0)).sum();
    connecting.finish_with_message(format!("{open} open, {failed} failed"));

    let mut report = Report::new(&args.name, args.mode, args.dialect, args.clients);
    report.engine = args.engine;
    report.failed = Some(failed);

    let sender = if args.mode == Mode::Capacity { None } else { Some(connect_sender(&args, peer).await?) };
    if let Some(sender) = &sender {
        // Joining is asynchronous on some servers: resend a warm-up message until every
        // client has one, so the measured messages go to a complete room.
        let deadline = Instant::now() + timeout;
        let mut warm = 0;
        while warm < workers.stdin.len() {
            sender.send(vec![args.dialect.message(0)])?;
            match tokio::time::timeout(Duration::from_millis(300), workers.events.recv()).await {
                Ok(Some((_, v))) if v["ev"] == "warm" => warm += 1,
                Ok(None) => return Err("a worker exited".into()),
                _ => {}
            }
            if Instant::now() > deadline {
                return Err("the room never filled: warm-up timed out".into());
            }
        }
    }

    let mut elapsed = None;
    let (mut cpu_before, mut cpu_after) = (0, 0);
    let (mut broker_before, mut broker_after) = (None, None);
    match args.mode {
        Mode::Idle => {
            // Let allocations settle after the last join before reading memory.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = read_all(&peers)?;
            let kernel_after = proc::tcp_kernel_bytes();
            let n = open.max(1) as f64;
            report.rss_kb_per_conn = Some(after.rss_kb.saturating_sub(before.rss_kb) as f64 / n);
            report.kernel_kb_per_conn = Some(kernel_after.saturating_sub(kernel_before) as f64 / 1024.0 / n);
            report.held = Some(open);
        }
        Mode::Closed => {
            let sender = sender.as_ref().ok_or("no sender")?;
            report.messages = Some(args.messages);
            let progress = bar(args.messages, "messages");
            cpu_before = read_all(&peers)?.cpu_ticks;
            broker_before = args.broker_pid.map(proc::read).transpose()?.map(|s| s.cpu_ticks);
            let start = Instant::now();
            for seq in 1..=args.messages {
                sender.send(vec![args.dialect.message(seq)])?;
                workers.each(timeout, |v| v["ev"] == "all" && v["seq"] == seq).await?;
                progress.inc(1);
            }
            elapsed = Some(start.elapsed());
            cpu_after = read_all(&peers)?.cpu_ticks;
            broker_after = args.broker_pid.map(proc::read).transpose()?.map(|s| s.cpu_ticks);
            progress.finish();
        }
        Mode::Burst => {
            let sender = sender.as_ref().ok_or("no sender")?;
            report.messages = Some(args.messages);
            let batch: Vec<String> = (1..=args.messages).map(|seq| args.dialect.message(seq)).collect();
            cpu_before = read_all(&peers)?.cpu_ticks;
            broker_before = args.broker_pid.map(proc::read).transpose()?.map(|s| s.cpu_ticks);
            let start = Instant::now();
            sender.send(batch)?;
            workers.each(timeout, |v| v["ev"] == "done").await?;
            elapsed = Some(start.elapsed());
            cpu_after = read_all(&peers)?.cpu_ticks;
            broker_after = args.broker_pid.map(proc::read).transpose()?.map(|s| s.cpu_ticks);
        }
        Mode::Capacity => {
            let mut held = open;
            for round in 1..=args.rounds {
                workers.tell(&format!("ping {round}")).await?;
                // Wait for every pong, but no longer than the timeout; then count what came back.
                let _ = workers.each(Duration::from_secs(10), |v| v["ev"] == "pongs" && v["round"] == round).await;
                workers.tell("stats").await?;
                let stats = workers.each(timeout, |v| v["ev"] == "stats").await?;
                held = held.min(stats.iter().map(|v| v["pongs"].as_u64().unwrap_or(0)).sum());
            }
            report.held = Some(held);
            report.rss_kb_per_conn =
                Some(read_all(&peers)?.rss_kb.saturating_sub(before.rss_kb) as f64 / open.max(1) as f64);
        }
    }

    workers.tell("stop").await?;
    let stats = workers.each(timeout, |v| v["ev"] == "stats").await?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let (mut delivered, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
    for s in &stats {
        delivered += s["delivered"].as_u64().unwrap_or(0);
        bytes += s["bytes"].as_u64().unwrap_or(0);
        dropped += s["dropped"].as_u64().unwrap_or(0);
        if let Some(errors) = s["errors"].as_array().filter(|e| !e.is_empty()) {
            eprintln!("worker errors: {errors:?}");
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(s["hist"].as_str().unwrap_or(""))?;
        let h: Histogram<u64> = Deserializer::new().deserialize(&mut raw.as_slice())?;
        latency.add(h)?;
    }
    report.dropped = Some(dropped);
    if let Some(elapsed) = elapsed {
        let secs = elapsed.as_secs_f64();
        report.deliveries = Some(delivered);
        report.seconds = Some(secs);
        report.deliveries_per_sec = Some(delivered as f64 / secs);
        report.bytes_per_message = Some(bytes as f64 / delivered.max(1) as f64);
        report.latency_us = Some(Latency {
            p50: latency.value_at_quantile(0.5),
            p99: latency.value_at_quantile(0.99),
            p999: Some(latency.value_at_quantile(0.999)),
            max: latency.max(),
        });
        let cpu_secs = cpu_after.saturating_sub(cpu_before) as f64 / ticks;
        report.server_cpu_us_per_delivery = Some(cpu_secs * 1e6 / delivered.max(1) as f64);
        report.server_cpu_seconds = Some(cpu_secs);
        if let (Some(b), Some(a)) = (broker_before, broker_after) {
            report.broker_cpu_seconds = Some(a.saturating_sub(b) as f64 / ticks);
        }
    }
    report.nodes = (args.nodes > 1).then_some(args.nodes);
    report.workers = Some(count);
    for peer in &mut peers {
        if let Some(mut child) = peer.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(report)
}
