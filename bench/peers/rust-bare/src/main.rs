//! Benchmark baseline: the chat of `peer-livehtml`, byte for byte the same on the wire, written
//! directly on axum's WebSocket (tungstenite) with a tokio broadcast channel: what the
//! framework itself costs is the difference between the two.
//!
//! Run with: `PORT=8080 cargo run --release -p peer-rust-bare`

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use maud::html;
use tokio::sync::broadcast;

async fn upgrade(State(tx): State<broadcast::Sender<Utf8Bytes>>, ws: WebSocketUpgrade) -> Response {
    // The same read buffer as livehtml's default, so the comparison isolates the framework.
    ws.read_buffer_size(512).on_upgrade(move |socket| serve(socket, tx))
}

async fn serve(socket: WebSocket, tx: broadcast::Sender<Utf8Bytes>) {
    let mut rx = tx.subscribe();
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return };
                    let (h, m, s) = time::OffsetDateTime::now_utc().to_hms();
                    let name = v["name"].as_str().unwrap_or("Anonymous");
                    let message = v["message"].as_str().unwrap_or_default();
                    let li = html! { li { "[" (format!("{h:02}:{m:02}:{s:02}")) "] " strong { (name) } ": " (message) } };
                    let out = format!(r#"<ul id="messages" hx-swap-oob="beforeend">{}</ul>"#, li.into_string());
                    let _ = tx.send(Utf8Bytes::from(out));
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            outgoing = rx.recv() => match outgoing {
                Ok(text) => {
                    if sink.send(Message::Text(text)).await.is_err() { return }
                }
                // Lagged: this client fell more than the channel's capacity behind.
                Err(_) => return,
            },
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let (tx, _) = broadcast::channel(2048);
    let app = Router::new().route("/ws", get(upgrade)).with_state(tx);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
