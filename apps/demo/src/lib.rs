//! The livehtml demo app as a library, so tests can start it in process.

pub mod blog;
pub mod board;
pub mod chat;
pub mod counter;
pub mod dashboard;
mod echo;
mod layout;
mod lobby;
pub mod notifications;
mod raw;
pub mod shared;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use livehtml::{Config, Html, Limits, Live, LiveRoutes, Views, shutdown_signal};
use tokio::net::TcpListener;

/// How the demo writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; colours only when writing to a terminal.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// The process's metrics recorder (Prometheus text format at `/metrics`), installed on first
/// use: before anything records, so `run` asks for it first.
pub fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
                .expect("bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test harness's) may be installed already: then this one
            // renders nothing, and the app still runs.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed already; /metrics shows none of it");
            }
            handle
        })
        .clone()
}

/// `/metrics`: what livehtml counts (see the `livehtml` crate's docs) and the process's own
/// gauges, in Prometheus's text format.
async fn render_metrics(live: Live) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    // Connections counted from the handshake on (those still being set up too).
    metrics::gauge!("livehtml_demo_connections").set(live.connection_count() as f64);
    let body = metrics().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Command-line flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "The livehtml demo: /chat, /echo, /lobby, /blog, /counter, /board, /dashboard, \
             /notifications, /ws/raw (a raw echo socket), /metrics (Prometheus), /healthz, /readyz"
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LIVEHTML_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Directory for the SQLite database (created on first run).
    #[arg(long, env = "LIVEHTML_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The blog's database; SQLite in the data directory when unset (`postgres://…` works).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Longest time to wait for live connections to close on shutdown, in seconds.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// How long someone whose last page dropped still counts as online (the chat's count, the
    /// lobby's players), in milliseconds: a page back within it never left.
    #[arg(long, env = "LIVEHTML_PRESENCE_GRACE_MS", default_value_t = 10_000)]
    pub presence_grace_ms: u64,
    /// How long a live view is kept for a page whose connection dropped, in milliseconds.
    #[arg(long, env = "LIVEHTML_VIEW_GRACE_MS", default_value_t = 30_000)]
    pub view_grace_ms: u64,
    /// Messages a page may send per second on average (more are dropped; twice the burst
    /// beyond it closes the page with 1008); 0: no limit.
    #[arg(long, env = "LIVEHTML_MESSAGE_RATE", default_value_t = 50)]
    pub message_rate: u32,
    /// Messages a page may send at once.
    #[arg(long, env = "LIVEHTML_MESSAGE_BURST", default_value_t = 200)]
    pub message_burst: u32,
    /// How the log is written: `text` (colours only on a terminal) or `json` (one object a line).
    #[arg(long, env = "LIVEHTML_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Behind a proxy that terminates TLS: trust its `X-Forwarded-Proto` for the origin check
    /// (only when every request comes through that proxy).
    #[arg(long, env = "LIVEHTML_TRUST_FORWARDED_PROTO")]
    pub trust_forwarded_proto: bool,
    /// New connections one address may open per second (0: no limit).
    #[arg(long, env = "LIVEHTML_CONNECTION_RATE", default_value_t = 200)]
    pub connection_rate: u32,
    /// The burst of new connections one address may open at once.
    #[arg(long, env = "LIVEHTML_CONNECTION_BURST", default_value_t = 1000)]
    pub connection_burst: u32,
    /// Join a cluster through this broker (`redis://host:port`, `nats://host:port`): every
    /// process on it behaves as one server. Alone when unset.
    #[arg(long, env = "LIVEHTML_PUBSUB")]
    pub pubsub: Option<String>,
    /// How long a process of the cluster may fall silent (died, lost the broker) before its
    /// members (the chat's count, the lobby's players) leave, in milliseconds.
    #[arg(long, env = "LIVEHTML_NODE_TIMEOUT_MS", default_value_t = 6_000)]
    pub node_timeout_ms: u64,
    /// The cluster's name on its broker: processes with the same one are one server.
    #[arg(long, env = "LIVEHTML_PUBSUB_NAMESPACE", default_value = "livehtml-demo")]
    pub pubsub_namespace: String,
    /// The key that signs live-view tokens (at least 32 characters), the same for every process
    /// of a cluster on several machines; the data directory's `secret.key` when unset.
    #[arg(long, env = "LIVEHTML_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Serve htmx 2 and its SSE extension (the dashboard and notifications pages) from this
    /// directory instead of unpkg.com, so the demo needs no internet: fill it once with
    /// `npm install --prefix assets htmx2@npm:htmx.org@2.0.11 htmx-ext-sse@2.2.4` and pass
    /// `--assets assets/node_modules`.
    #[arg(long, env = "LIVEHTML_ASSETS")]
    pub assets: Option<std::path::PathBuf>,
}

impl Args {
    /// The `Live` options these flags ask for.
    pub fn options(&self) -> Options<'_> {
        Options {
            secret: self.secret.as_deref(),
            trust_forwarded_proto: self.trust_forwarded_proto,
            assets: self.assets.as_deref(),
        }
    }

    /// The live endpoints' limits these flags ask for.
    pub fn limits(&self) -> Limits {
        match self.message_rate {
            0 => Limits::default().no_rate_limit(),
            rate => Limits::default().rate_limit(rate, self.message_burst),
        }
    }
}

/// What every page and session shares.
#[derive(Clone)]
pub struct AppState {
    /// The live runtime (pub/sub, connections).
    pub live: Live,
    /// Chat storage.
    pub chat: chat::Store,
    /// The players in the lobby.
    pub lobby: Arc<lobby::Lobby>,
    /// The server's local offset, for message times.
    pub offset: time::UtcOffset,
    /// Articles and comments.
    pub blog: blog::Store,
    /// The counter every tab shares and the notifications, in the database.
    pub shared: shared::Shared,
    /// What the dashboard counts.
    pub metrics: Arc<dashboard::Metrics>,
    /// The notification feed.
    pub feed: Arc<notifications::Feed>,
    /// How long a live view is kept for a page whose connection dropped.
    pub view_grace: Duration,
    /// This process's name among a cluster's (random).
    pub node: String,
    /// The board's cards.
    pub board: board::Store,
    /// Where the demo keeps its files (the database, the key, uploaded images).
    pub data_dir: std::path::PathBuf,
    /// Signs the demo's own cookies (the board's sign-in), derived from the secret.
    pub cookie_key: axum_extra::extract::cookie::Key,
    /// Where the plain-htmx pages load htmx from.
    pub assets: Arc<layout::Assets>,
}

/// Runs `each` on everything `topic` delivers to this process, for as long as it runs (a
/// process-wide follower, such as the state every process keeps of the lobby).
pub(crate) fn follow(
    pubsub: &livehtml::PubSub,
    topic: &str,
    mut each: impl FnMut(livehtml::pubsub::Tapped) + Send + 'static,
) {
    let (pubsub, topic) = (pubsub.clone(), topic.to_owned());
    tokio::spawn(async move {
        loop {
            let (mut tap, _) = pubsub.tap(&topic, None, 4096);
            while let Some(tapped) = tap.next().await {
                each(tapped);
            }
        }
    });
}

/// Opens the data directory (and the blog's database) and builds the app's state.
pub async fn state(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    offset: time::UtcOffset,
    limits: Limits,
) -> Result<AppState, Box<dyn std::error::Error>> {
    state_with(data_dir, database_url, offset, limits, &Options::default()).await
}

/// How the demo's `Live` is configured beyond its limits.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// Signs live-view tokens (at least 32 characters); else a key kept in the data directory.
    pub secret: Option<&'a str>,
    /// Behind a TLS proxy: the scheme of the page's origin is the proxy's `X-Forwarded-Proto`.
    pub trust_forwarded_proto: bool,
    /// Where htmx is served from for the plain-htmx pages (else unpkg.com).
    pub assets: Option<&'a std::path::Path>,
}

/// [`state`], with `options`.
pub async fn state_with(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    offset: time::UtcOffset,
    limits: Limits,
    options: &Options<'_>,
) -> Result<AppState, Box<dyn std::error::Error>> {
    let assets = match options.assets {
        Some(dir) => layout::Assets::local(dir)?,
        None => layout::Assets::cdn(),
    };
    std::fs::create_dir_all(data_dir)?;
    let file = data_dir.join("livehtml-demo.db");
    let sqlite = format!("sqlite://{}?mode=rwc", file.display());
    let url = database_url.unwrap_or(&sqlite);
    let blog = blog::Store::open(url).await?;
    let postgres = url.starts_with("postgres");
    let chat = chat::Store::open(blog.pool().clone(), postgres).await?;
    let shared = shared::Shared::open(blog.pool().clone(), postgres).await?;
    let board = board::Store::open(blog.pool().clone(), postgres).await?;
    let key = match options.secret {
        Some(key) if key.len() >= 32 => key.as_bytes().to_vec(),
        Some(_) => return Err("--secret must be at least 32 characters".into()),
        None => secret(data_dir)?,
    };
    let cookie_key = axum_extra::extract::cookie::Key::derive_from(&key);
    let config = Config::default().secret(key).limits(limits).trust_forwarded_proto(options.trust_forwarded_proto);
    let live = Live::new(config);
    // Pages that reconnect get what they missed from these topics' history.
    live.pubsub().keep_history("chat", chat::history());
    live.pubsub().keep_history("notifications", notifications::history());
    Ok(AppState {
        live,
        chat,
        lobby: Arc::default(),
        offset,
        blog,
        shared,
        metrics: Arc::default(),
        feed: Arc::default(),
        view_grace: Duration::from_secs(30),
        node: {
            let mut id = [0u8; 6];
            getrandom::fill(&mut id)?;
            id.iter().map(|b| format!("{b:02x}")).collect()
        },
        board,
        data_dir: data_dir.to_owned(),
        cookie_key,
        assets: Arc::new(assets),
    })
}

/// The key that signs live-view tokens, kept in the data directory so that pages rendered
/// before a restart can rejoin after it.
fn secret(data_dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join("secret.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => Ok(key),
        _ => {
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).map_err(std::io::Error::other)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(&path)?, &key)?;
            Ok(key)
        }
    }
}

/// The live views: the blog and the counter.
pub fn views(state: &AppState) -> Views<AppState> {
    LiveRoutes::new(&state.live, state.clone())
        .route::<blog::BlogIndex>("/blog")
        .route::<blog::ArticleView>("/article/{id}")
        .route::<counter::CounterView>("/counter")
        .route::<board::BoardView>("/board")
        .grace(state.view_grace)
        .layout(|page| {
            // `?transport=sse` runs the page over Server-Sent Events instead of a WebSocket.
            let sse = page.url().contains("transport=sse");
            let body = maud::html! {
                @if sse { div lh-transport="sse" { (page.live_root()) } } @else { (page.live_root()) }
            };
            Html::from(layout::page(page.title(), body))
        })
        .build()
}

/// `/readyz`: 200 while the demo takes new pages, 503 once it is shutting down (a load
/// balancer stops sending it new ones; `/healthz` stays 200 while the process runs).
async fn ready(live: Live) -> (axum::http::StatusCode, &'static str) {
    if live.is_shutting_down() {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (axum::http::StatusCode::OK, "ready")
    }
}

/// All routes of the demo; starts the dashboard's clock.
pub fn app(state: AppState) -> Router {
    let live = state.live.clone();
    let live_ready = live.clone();
    let live_metrics = live.clone();
    dashboard::spawn_clock(state.clone());
    dashboard::follow(&state);
    lobby::follow(&state);
    Router::new()
        .route("/", get(layout::home))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || ready(live_ready.clone())))
        .route("/metrics", get(move || render_metrics(live_metrics.clone())))
        .merge(chat::routes(&state))
        .merge(board::routes(&state))
        .merge(echo::routes(&live))
        .merge(lobby::routes(&state))
        .merge(raw::routes(&live))
        .merge(dashboard::routes(&state))
        .merge(notifications::routes(&state))
        .merge(views(&state).router())
        .merge(state.assets.routes())
        .merge(live.client_script())
        .layer(tower_http::set_header::SetResponseHeaderLayer::if_not_present(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(layout::content_security_policy(&state.assets)),
        ))
        // Pages and answers compressed where the browser asks; tower-http leaves event streams
        // (`text/event-stream`) and the already-compressed livehtml.js as they are.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// Connects the pub/sub to the broker at `url` (its scheme says which), after the topics'
/// histories are set (`state` does that).
async fn join_cluster(pubsub: &livehtml::PubSub, url: &str, namespace: &str) -> Result<(), Box<dyn std::error::Error>> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        pubsub.connect(livehtml_redis::Redis::new(url, namespace)?).await?;
    } else if url.starts_with("nats://") {
        pubsub.connect(livehtml_nats::Nats::new(url, namespace)).await?;
    } else {
        return Err(format!("--pubsub {url}: not a redis:// or nats:// address").into());
    }
    tracing::info!(broker = url, namespace, "joined the cluster");
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C, then closes live connections (1012) and drains.
pub async fn run(args: Args, offset: time::UtcOffset) -> Result<(), Box<dyn std::error::Error>> {
    // Before anything records.
    metrics();
    let mut state =
        state_with(&args.data_dir, args.database_url.as_deref(), offset, args.limits(), &args.options()).await?;
    state.view_grace = Duration::from_millis(args.view_grace_ms);
    state.live.pubsub().set_presence_grace(Duration::from_millis(args.presence_grace_ms));
    if let Some(url) = &args.pubsub {
        join_cluster(state.live.pubsub(), url, &args.pubsub_namespace).await?;
        state.live.pubsub().set_node_timeout(Duration::from_millis(args.node_timeout_ms));
    }
    let live = state.live.clone();
    // livehtml's listener lets an event stream leave hyper after its head (2 KB per idle stream).
    let listener = livehtml::Listener::new(TcpListener::bind(args.addr).await?)
        .connection_rate(args.connection_rate, args.connection_burst);
    // Tests and scripts read this line to find the port.
    println!("listening on http://{}", listener.local_addr()?);
    // livehtml::serve times every request head (keep-alive ones too) and answers 431 to huge ones.
    let serve = livehtml::serve(listener, app(state)).with_graceful_shutdown(live.graceful_shutdown(shutdown_signal()));
    // The graceful shutdown waits for every HTTP connection, however slow its client: the
    // drain bound holds for those too.
    let drain = Duration::from_secs(args.drain_secs);
    let http_bound = async {
        live.shutdown_started().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        served = serve => served?,
        () = http_bound => tracing::warn!("HTTP connections still open after the drain bound; dropping them"),
    }
    if !live.drain(drain).await {
        tracing::warn!(open = live.connection_count(), "drain timed out; dropping the rest");
    }
    // What pages published last reaches the cluster before the process goes.
    if !live.pubsub().flush(drain).await {
        tracing::warn!(refused = live.pubsub().refused(), "the broker did not take every last publish");
    }
    tracing::info!("stopped");
    Ok(())
}
