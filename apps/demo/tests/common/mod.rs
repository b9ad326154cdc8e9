//! Starts the demo app in process on 127.0.0.1:0.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use livehtml_demo::AppState;
use tokio_tungstenite::tungstenite::Message;

pub type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(data_dir: &Path) -> Self {
        // The process's recorder, before anything records (as `run` does).
        livehtml_demo::metrics();
        let state = livehtml_demo::state(data_dir, None, time::UtcOffset::UTC, livehtml::Limits::default())
            .await
            .expect("state");
        // A page that closes leaves the lobby and the chat's count soon, not after 10 s.
        state.live.pubsub().set_presence_grace(std::time::Duration::from_millis(200));
        let listener = livehtml::Listener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = livehtml_demo::app(state.clone());
        let live = state.live.clone();
        let task = tokio::spawn(async move {
            livehtml::serve(listener, app)
                .with_graceful_shutdown(live.graceful_shutdown(std::future::pending()))
                .await
                .unwrap();
        });
        Self { addr, state, task }
    }

    /// Closes live connections and stops serving, like SIGTERM does.
    pub async fn stop(self) {
        self.state.live.shutdown();
        assert!(self.state.live.drain(WAIT).await);
        self.task.abort();
        let _ = self.task.await;
    }

    /// GETs `path` and returns the whole response (status line, headers, body).
    pub async fn request(&self, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        tcp.read_to_string(&mut resp).await.unwrap();
        resp
    }

    /// GETs `path`, which must answer 200.
    pub async fn get(&self, path: &str) -> String {
        let resp = self.request(path).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "GET {path}: {resp}");
        resp
    }

    pub async fn connect(&self, path: &str) -> Client {
        tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr)).await.expect("connect").0
    }
}

pub async fn next_text(ws: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("message in time") {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads until a text message contains `needle`.
pub async fn until_text(ws: &mut Client, needle: &str) -> String {
    loop {
        let t = next_text(ws).await;
        if t.contains(needle) {
            return t;
        }
    }
}

pub fn htmx2(values: serde_json::Value, trigger: &str) -> Message {
    let mut v = values;
    v["HEADERS"] = serde_json::json!({"HX-Request": "true", "HX-Trigger": trigger, "HX-Trigger-Name": null});
    Message::text(v.to_string())
}

/// What livehtml.js sends for `lh-send="event"`.
pub fn livehtml_js(event: &str, values: serde_json::Value) -> Message {
    let mut v = values;
    v["HEADERS"] = serde_json::json!({"HX-Request": "true", "LH-Client": "1", "LH-Event": event});
    Message::text(v.to_string())
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Finds an external tool; a missing one fails the test unless the run allows skipping (see
/// `livehtml_conformance::missing`).
pub fn require_tool(what: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    livehtml_conformance::missing(
        &format!("{what} not found (looked at {candidates:?})"),
        "run scripts/test to install it",
    );
    None
}
