//! `lhbench soak`: a bounded run of everything at once against one peer, for what only time
//! shows (memory that creeps, descriptors that leak, messages that go missing under churn).
//!
//! - `--clients` stable clients (htmx dialect) stay connected for the whole run and must get
//!   every numbered message, in order;
//! - a sender publishes a burst of `--burst` numbered messages every `--every-ms`;
//! - `--churn` clients at a time connect, stay a moment and leave (some with a close frame, some
//!   by dropping the socket);
//! - `--slow` clients at a time connect with a 4 KiB receive buffer and never read: the server
//!   must cut them off (a slow consumer) without the others noticing; each is replaced;
//! - bad input several times a second on fresh connections: text that is not an event, a
//!   message over the limit, a binary message, a half-open handshake, bytes that are not HTTP.
//!
//! Every `--sample-secs` it reads the peer's resident memory, open descriptors and the count of
//! stable clients still connected; at the end it reports them with the messages lost. Loopback
//! only; every loop is bounded by the duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::dialect::{Dialect, marker};
use crate::proc;
use crate::run::spawn_peer;

type Error = Box<dyn std::error::Error>;

/// `lhbench soak` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SoakArgs {
    /// Stable clients, connected for the whole run.
    #[arg(long, default_value_t = 2000)]
    clients: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 600)]
    duration_secs: u64,
    /// Messages in each burst.
    #[arg(long, default_value_t = 20)]
    burst: u64,
    /// Time between bursts, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// Clients connecting and leaving at any moment.
    #[arg(long, default_value_t = 50)]
    churn: usize,
    /// Clients that never read, at any moment.
    #[arg(long, default_value_t = 4)]
    slow: usize,
    /// Time between samples of the peer's memory and descriptors, in seconds.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Write the JSON report here too.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// The peer's command line; it gets a free port in `PORT` (htmx dialect at `/ws`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Default)]
struct Counts {
    churned: AtomicU64,
    slow_cut_off: AtomicU64,
    bad_inputs: AtomicU64,
    bad_answered: AtomicU64,
    out_of_order: AtomicU64,
}

#[derive(Debug, serde::Serialize)]
struct Sample {
    at_secs: u64,
    rss_kb: u64,
    fds: usize,
    stable_connected: usize,
}

#[derive(Debug, serde::Serialize)]
struct SoakReport {
    duration_secs: u64,
    clients: usize,
    sent: u64,
    expected_deliveries: u64,
    delivered: u64,
    lost: u64,
    out_of_order: u64,
    stable_dropped: u64,
    churned_connections: u64,
    slow_cut_off: u64,
    bad_inputs: u64,
    bad_inputs_answered: u64,
    samples: Vec<Sample>,
}

fn config() -> WebSocketConfig {
    // Small buffers: 2,000 clients in one process (tungstenite's default read buffer is 128 KiB).
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

pub(crate) async fn run(args: SoakArgs) -> Result<(), Error> {
    let peer = spawn_peer(&args.command, 30).await?;
    let url = Dialect::Htmx.url(&peer.url);
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(args.duration_secs);

    // Stable clients: each counts what it got, and checks the order.
    let mut stable = Vec::with_capacity(args.clients);
    let connected = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    for _ in 0..args.clients {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config()), false).await?;
        let counts = counts.clone();
        let (connected, delivered) = (connected.clone(), delivered.clone());
        connected.fetch_add(1, Ordering::Relaxed);
        stable.push(tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            let mut next = 0u64;
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                // One message may carry several fragments; each marker is one delivery.
                let mut rest = text.as_bytes();
                while let Some((seq, _)) = marker(rest) {
                    if seq != next {
                        counts.out_of_order.fetch_add(1, Ordering::Relaxed);
                    }
                    next = seq + 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                    let at = rest.iter().position(|&b| b == b'~').unwrap_or(0) + 1;
                    rest = &rest[at..];
                    rest = &rest[rest.iter().position(|&b| b == b'~').map_or(rest.len(), |p| p + 1)..];
                }
            }
            connected.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    eprintln!("soak: {} stable clients connected to {url}", args.clients);

    let mut tasks = Vec::new();
    for _ in 0..args.churn {
        tasks.push(tokio::spawn(churn(url.clone(), counts.clone(), stop.clone())));
    }
    for _ in 0..args.slow {
        tasks.push(tokio::spawn(slow(url.clone(), counts.clone(), stop.clone())));
    }
    tasks.push(tokio::spawn(bad_inputs(peer.addr, url.clone(), counts.clone(), stop.clone())));

    // The sender: bursts of numbered messages (what it gets back is read and dropped).
    let (sender, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config()), false).await?;
    let (mut tx, mut rx) = sender.split();
    tokio::spawn(async move { while rx.next().await.is_some() {} });

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut seq = 0u64;
    let mut next_sample = started;
    let mut bursts = tokio::time::interval(Duration::from_millis(args.every_ms));
    while Instant::now() < deadline {
        bursts.tick().await;
        for _ in 0..args.burst {
            tx.send(Message::text(Dialect::Htmx.message(seq))).await?;
            seq += 1;
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(args.sample_secs);
            let stat = proc::read(peer.pid)?;
            let sample = Sample {
                at_secs: started.elapsed().as_secs(),
                rss_kb: stat.rss_kb,
                fds: open_fds(peer.pid),
                stable_connected: connected.load(Ordering::Relaxed) as usize,
            };
            eprintln!(
                "soak: {:>4} s  rss {:>7} KB  fds {:>5}  stable {:>5}  sent {seq}  churned {}  slow cut {}  bad {}",
                sample.at_secs,
                sample.rss_kb,
                sample.fds,
                sample.stable_connected,
                counts.churned.load(Ordering::Relaxed),
                counts.slow_cut_off.load(Ordering::Relaxed),
                counts.bad_inputs.load(Ordering::Relaxed),
            );
            samples.push(sample);
        }
    }
    stop.store(true, Ordering::Relaxed);
    // Churn, slow readers and bad input end here (a slow reader may be waiting to be cut off).
    for task in tasks {
        task.abort();
    }
    // What is still on its way arrives; then the stable clients leave and report.
    let expected = seq * args.clients as u64;
    let settle = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.close().await.ok();
    // The peer closes every socket when it stops: each stable client's count is then final.
    let stat = proc::read(peer.pid)?;
    samples.push(Sample {
        at_secs: started.elapsed().as_secs(),
        rss_kb: stat.rss_kb,
        fds: open_fds(peer.pid),
        stable_connected: connected.load(Ordering::Relaxed) as usize,
    });
    // Counted before the peer stops (which closes every socket).
    let stable_dropped = args.clients as u64 - connected.load(Ordering::Relaxed);
    terminate(peer.pid);
    for client in stable {
        let _ = tokio::time::timeout(Duration::from_secs(30), client).await;
    }
    let delivered = delivered.load(Ordering::Relaxed);
    let report = SoakReport {
        duration_secs: args.duration_secs,
        clients: args.clients,
        sent: seq,
        expected_deliveries: expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        out_of_order: counts.out_of_order.load(Ordering::Relaxed),
        stable_dropped,
        churned_connections: counts.churned.load(Ordering::Relaxed),
        slow_cut_off: counts.slow_cut_off.load(Ordering::Relaxed),
        bad_inputs: counts.bad_inputs.load(Ordering::Relaxed),
        bad_inputs_answered: counts.bad_answered.load(Ordering::Relaxed),
        samples,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.out {
        std::fs::write(out, &json)?;
    }
    println!("{json}");
    Ok(())
}

/// Ends the peer with SIGTERM: it closes every socket (1012) and drains.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// One churning client slot: connect, stay up to a second, leave (half of them without a close
/// frame), again, until the run ends.
async fn churn(url: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(&url, Some(config()), false).await {
            counts.churned.fetch_add(1, Ordering::Relaxed);
            let stay = Duration::from_millis(i * 37 % 1000);
            let _ = tokio::time::timeout(stay, async { while ws.next().await.is_some() {} }).await;
            if i.is_multiple_of(2) {
                let _ = ws.close(None).await;
            }
        }
    }
}

/// One slow reader slot: a 4 KiB receive buffer and no reads for a minute; counted when the
/// server cut it off by then.
async fn slow(url: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_owned();
    while !stop.load(Ordering::Relaxed) {
        let Ok(addr) = addr.parse::<std::net::SocketAddr>() else { return };
        let Ok(socket) = tokio::net::TcpSocket::new_v4() else { return };
        let _ = socket.set_recv_buffer_size(4096);
        let Ok(tcp) = socket.connect(addr).await else { continue };
        let Ok((ws, _)) = tokio_tungstenite::client_async_with_config(&url, tcp, Some(config())).await else {
            continue;
        };
        // Never read: the server's queue for it fills, and it is cut off (1013, or dropped when
        // even the close frame cannot go out). After a minute, whatever the socket holds is
        // read at once: a socket the server cut off ends (EOF or reset); one still open would
        // leave the read waiting.
        let (_tx, mut rx) = ws.split();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let cut = async {
            loop {
                match tokio::time::timeout(Duration::from_secs(2), rx.next()).await {
                    Ok(Some(Ok(Message::Close(_))) | None | Some(Err(_))) => return true,
                    Ok(Some(Ok(_))) => {}
                    Err(_) => return false,
                }
            }
        };
        if cut.await {
            counts.slow_cut_off.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Bad input on fresh connections, a few times a second: each must be answered (a close, a
/// status) or cut off, never hang the server.
async fn bad_inputs(addr: std::net::SocketAddr, url: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        i += 1;
        counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
        let answered = match i % 5 {
            0 => closed_after(&url, Message::text("not an event")).await,
            1 => closed_after(&url, Message::text("x".repeat(100_000))).await,
            2 => closed_after(&url, Message::binary(vec![0u8; 64])).await,
            3 => {
                // A half-open handshake, abandoned: the server's deadline ends it.
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await {
                    let _ = tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n").await;
                }
                true
            }
            _ => {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await {
                    let _ = tcp.write_all(b"\x16\x03\x01 not http at all\r\n\r\n").await;
                    let mut buf = [0u8; 64];
                    matches!(
                        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut tcp, &mut buf))
                            .await,
                        Ok(Ok(_))
                    )
                } else {
                    false
                }
            }
        };
        if answered {
            counts.bad_answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends `message` on a new socket; whether the server then closes it.
async fn closed_after(url: &str, message: Message) -> bool {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, Some(config()), false).await else {
        return false;
    };
    if ws.send(message).await.is_err() {
        return true;
    }
    let closed = async {
        while let Some(Ok(message)) = ws.next().await {
            if matches!(message, Message::Close(_)) {
                return true;
            }
        }
        true
    };
    tokio::time::timeout(Duration::from_secs(10), closed).await.unwrap_or(false)
}
