//! `lhbench views`: live views under load. `--clients` pages each load a view over HTTP, join
//! it over a WebSocket, send `--warmup` events that are not counted, and then send events in a
//! closed loop (each page sends its next event once the answer to the last one arrived).
//! Reports events per second, the event round trip (p50, p99, p99.9), the server's memory per
//! connected view and its CPU per event, and the bytes the server sends per event.
//! `--by-second` prints the round trips by the second of the loop they started in: where in a
//! run its tail sits.
//!
//! Peers (`--kind`): `livehtml` (a page whose first render names its socket in `lh-connect`;
//! events are livehtml.js's, numbered with `LH-Ref`; an event is answered when its `<!--lh-reply N-->`
//! arrives) and `dioxus` (Dioxus LiveView: the socket at `/ws`, events as its interpreter sends
//! them, `{"method":"user_event",...}`; an event is answered by the next edits message).
//!
//! One tokio task per page on one thread, with tokio-tungstenite's default settings (what an
//! ordinary client looks like) unless `--read-buffer` sets a lighter one. Loopback only; bounded
//! by `--seconds`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::proc;
use crate::run;

type Error = Box<dyn std::error::Error>;
/// What a page's task fails with (it crosses the task's boundary).
type TaskError = Box<dyn std::error::Error + Send + Sync>;
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The peer's kind of live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A livehtml live view.
    Livehtml,
    /// A Dioxus LiveView app.
    Dioxus,
}

/// `lhbench views` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ViewsArgs {
    /// Name of the peer, for the report.
    #[arg(long)]
    name: String,
    /// The peer's kind of live view.
    #[arg(long, value_enum, default_value = "livehtml")]
    kind: Kind,
    /// The view's page (livehtml).
    #[arg(long, default_value = "/counter")]
    path: String,
    /// The event each page sends (livehtml: its name; dioxus: the element id of the button).
    #[arg(long, default_value = "inc")]
    event: String,
    /// Pages, each with its own view.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How long the closed loop runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events each page sends when it joins, before the loop and not counted: a client's
    /// first read allocates and touches its read buffer (tungstenite's default: 128 KiB), which
    /// a Dioxus page does at its join anyway (the edits that build the page) and a livehtml page,
    /// whose join sends nothing, would do in its first measured event.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// The clients' read buffer in bytes (tungstenite's default: 128 KiB, zeroed on every read,
    /// which makes the one client thread the bottleneck).
    #[arg(long)]
    read_buffer: Option<usize>,
    /// Give up on any single wait after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Write the JSON report here too.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Also print the round trips of each second of the loop (by the second an event was sent):
    /// where in a run its tail sits.
    #[arg(long)]
    by_second: bool,
    /// Test an already running server at this base URL (`ws://127.0.0.1:PORT`) instead of starting one.
    #[arg(long, requires = "pid")]
    url: Option<String>,
    /// The pid of that server, for CPU and memory readings.
    #[arg(long)]
    pid: Option<u32>,
    /// The peer's command line; it gets a free port in `PORT`.
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct ViewsReport {
    name: String,
    kind: Kind,
    clients: usize,
    seconds: f64,
    events: u64,
    events_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// Server RSS growth from before the pages joined to after, per page.
    rss_kb_per_view: f64,
    /// Server RSS growth from before the pages joined to the end of the loop, per page.
    rss_kb_per_busy_view: f64,
    /// Server CPU time per event during the loop.
    cpu_us_per_event: f64,
    /// WebSocket payload bytes the pages received per event.
    bytes_per_event: f64,
}

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: ViewsArgs) -> Result<(), Error> {
    let peer = run::peer(args.url.as_deref(), args.pid, &args.command, args.timeout).await?;
    let wait = Duration::from_secs(args.timeout);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = proc::read(peer.pid)?;
    let mut pages = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        pages.push(tokio::time::timeout(wait, join(&args, peer.addr)).await.map_err(|_| "joining timed out")??);
    }
    // Let every view finish mounting before the reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = proc::read(peer.pid)?;
    let rss_kb_per_view = joined.rss_kb.saturating_sub(before.rss_kb) as f64 / args.clients as f64;

    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = proc::read(peer.pid)?.cpu_ticks;
    let tasks: Vec<_> = pages
        .into_iter()
        .map(|page| {
            let loop_ = Loop {
                kind: args.kind,
                event: args.event.clone(),
                first: args.warmup,
                wait,
                started,
                by_second: args.by_second,
            };
            tokio::spawn(drive(page, loop_, stop.clone(), bytes.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let busy = proc::read(peer.pid)?;
    stop.store(true, Ordering::Relaxed);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut seconds_of = Vec::<Histogram<u64>>::new();
    for task in tasks {
        let (page, trips) = task.await?.map_err(|e| e.to_string())?;
        histogram.add(page)?;
        for (second, micros) in trips {
            let second = second as usize;
            while seconds_of.len() <= second {
                seconds_of.push(Histogram::new_with_bounds(1, 60_000_000, 3)?);
            }
            seconds_of[second].record(u64::from(micros))?;
        }
    }
    if args.by_second {
        for (second, h) in seconds_of.iter().enumerate() {
            eprintln!(
                "  second {second:>3}: {:>7} events, p50 {:>7.2} ms p99 {:>7.2} ms p99.9 {:>7.2} ms max {:>7.2} ms",
                h.len(),
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.value_at_quantile(0.999) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = proc::read(peer.pid)?.cpu_ticks.saturating_sub(cpu_before);
    let rss_kb_per_busy_view = busy.rss_kb.saturating_sub(before.rss_kb) as f64 / args.clients as f64;
    let events = histogram.len();
    let report = ViewsReport {
        name: args.name.clone(),
        kind: args.kind,
        clients: args.clients,
        seconds,
        events,
        events_per_sec: events as f64 / seconds,
        p50_ms: histogram.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        p999_ms: histogram.value_at_quantile(0.999) as f64 / 1000.0,
        rss_kb_per_view,
        rss_kb_per_busy_view,
        cpu_us_per_event: cpu as f64 * 1e6 / proc::ticks_per_second() as f64 / events.max(1) as f64,
        bytes_per_event: bytes.load(Ordering::Relaxed) as f64 / events.max(1) as f64,
    };
    eprintln!(
        "{}: {} views, {:.0} events/s, round trip p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms, {:.2} KB per view ({:.2} KB busy), {:.1} µs CPU and {:.0} bytes per event",
        report.name,
        report.clients,
        report.events_per_sec,
        report.p50_ms,
        report.p99_ms,
        report.p999_ms,
        report.rss_kb_per_view,
        report.rss_kb_per_busy_view,
        report.cpu_us_per_event,
        report.bytes_per_event
    );
    let json = serde_json::to_string(&report)?;
    println!("{json}");
    if let Some(out) = &args.out {
        std::fs::write(out, json)?;
    }
    Ok(())
}

/// One page: loaded, joined, and past what its view sends when it joins.
async fn join(args: &ViewsArgs, addr: SocketAddr) -> Result<Socket, Error> {
    let url = match args.kind {
        Kind::Livehtml => {
            let page = get(addr, &args.path).await?;
            let connect =
                page.split("lh-connect=\"").nth(1).and_then(|r| r.split('"').next()).ok_or("no lh-connect")?;
            format!("ws://{addr}{}&client=lh", connect.replace("&amp;", "&"))
        }
        Kind::Dioxus => format!("ws://{addr}/ws"),
    };
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    if let Some(bytes) = args.read_buffer {
        config = config.read_buffer_size(bytes);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    if args.kind == Kind::Dioxus {
        // Its first message: the edits that build the page.
        next_payload(&mut ws).await.map_err(|e| e.to_string())?;
    }
    for n in 1..=args.warmup {
        round_trip(&mut ws, args.kind, &args.event, n, Duration::from_secs(args.timeout))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(ws)
}

/// A plain HTTP/1.1 GET of `path`; the response, head and body.
async fn get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The next text or binary payload (pings are answered by tungstenite).
async fn next_payload(ws: &mut Socket) -> Result<Vec<u8>, TaskError> {
    loop {
        match ws.next().await.ok_or("closed")?? {
            Message::Text(t) => return Ok(t.as_bytes().to_vec()),
            Message::Binary(b) => return Ok(b.to_vec()),
            Message::Close(c) => return Err(format!("closed: {c:?}").into()),
            _ => {}
        }
    }
}

/// Sends event number `n` and waits for its answer; the payload bytes received meanwhile.
async fn round_trip(ws: &mut Socket, kind: Kind, event: &str, n: u64, wait: Duration) -> Result<u64, TaskError> {
    let message = match kind {
        Kind::Livehtml => format!(r#"{{"HEADERS":{{"LH-Client":"1","LH-Event":"{event}","LH-Ref":"{n}"}}}}"#),
        Kind::Dioxus => format!(
            r#"{{"method":"user_event","params":{{"name":"click","element":{event},"data":{{"alt_key":false,"button":0,"buttons":0,"client_x":1,"client_y":1,"ctrl_key":false,"meta_key":false,"offset_x":1,"offset_y":1,"page_x":1,"page_y":1,"screen_x":1,"screen_y":1,"shift_key":false}},"bubbles":true}}}}"#
        ),
    };
    ws.send(Message::text(message)).await?;
    let reply = format!("<!--lh-reply {n}-->");
    let mut received = 0;
    loop {
        let payload = tokio::time::timeout(wait, next_payload(ws)).await.map_err(|_| "no answer in time")??;
        received += payload.len() as u64;
        let answered = match kind {
            Kind::Livehtml => payload.windows(reply.len()).any(|w| w == reply.as_bytes()),
            // Its edits carry the counter's new text (other messages may come between).
            Kind::Dioxus => payload.windows(7).any(|w| w == b"Count: "),
        };
        if answered {
            return Ok(received);
        }
    }
}

/// What every page's loop shares.
struct Loop {
    kind: Kind,
    event: String,
    /// The number of the last event sent before the loop (the warm-up's).
    first: u64,
    wait: Duration,
    started: Instant,
    /// Keep each round trip with its second (only `--by-second` prints them).
    by_second: bool,
}

/// The round trips of one page: all of them, and (with `--by-second`) each as (second of the
/// loop it was sent in, microseconds).
type Trips = (Histogram<u64>, Vec<(u32, u32)>);

/// The closed loop of one page until `stop`; its round trips.
async fn drive(mut ws: Socket, loop_: Loop, stop: Arc<AtomicBool>, bytes: Arc<AtomicU64>) -> Result<Trips, TaskError> {
    let Loop { kind, event, first, wait, started, by_second } = loop_;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut trips = Vec::new();
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sent = Instant::now();
        let received = round_trip(&mut ws, kind, &event, n, wait).await?;
        bytes.fetch_add(received, Ordering::Relaxed);
        let micros = sent.elapsed().as_micros().max(1) as u64;
        histogram.record(micros)?;
        if by_second {
            trips.push((sent.duration_since(started).as_secs() as u32, micros.min(u64::from(u32::MAX)) as u32));
        }
    }
    let _ = ws.close(None).await;
    Ok((histogram, trips))
}
