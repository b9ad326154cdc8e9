//! Benchmark baseline: the chat of `peer-livehtml`, byte for byte the same on the wire, written
//! directly on tokio-tungstenite (the WebSocket crate livehtml uses) with a tokio broadcast
//! channel, and no HTTP framework at all: what livehtml costs is the difference between the two.
//!
//! Run with: `PORT=8080 cargo run --release -p peer-rust-bare`

use futures_util::{SinkExt, StreamExt};
use maud::html;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

async fn serve(stream: TcpStream, tx: broadcast::Sender<Utf8Bytes>) {
    // The same read buffer as livehtml's default, so the comparison isolates the framework.
    let config = WebSocketConfig::default().read_buffer_size(512);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
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
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, tx.clone()));
    }
}
