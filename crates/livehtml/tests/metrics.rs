//! What livehtml records through the `metrics` facade, read back from a debugging recorder:
//! connections by transport, closes by code, rejections by reason, messages and deliveries.
//! One test: the recorder is the process's.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livehtml::{Context, Event, Fragment, Frame, Html, Limits, Listener, Live, Session, SessionError};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

struct Room;

impl Session for Room {
    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), SessionError> {
        ctx.subscribe("room");
        Ok(())
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), SessionError> {
        let said = Html::escape(event.value("say").unwrap_or_default());
        ctx.pubsub().publish("room", Frame::fragments(&[Fragment::inner("said", said)]));
        Ok(())
    }
}

/// What was recorded, summed: the debugging recorder's snapshots give what changed since the
/// last one (counters and gauges are swapped to 0), so the totals are kept here.
struct Totals {
    snapshotter: Snapshotter,
    seen: std::sync::Mutex<Vec<(metrics::Key, f64)>>,
}

impl Totals {
    /// The value of `name` with exactly `labels`, 0 when never recorded.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut seen = self.seen.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let change = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            match seen.iter_mut().find(|(k, _)| k == key.key()) {
                Some((_, total)) => *total += change,
                None => seen.push((key.key().clone(), change)),
            }
        }
        seen.iter()
            .find(|(key, _)| {
                key.name() == name
                    && key.labels().count() == labels.len()
                    && labels.iter().all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map_or(0.0, |(_, total)| *total)
    }

    async fn until(&self, name: &str, labels: &[(&str, &str)], at_least: f64) {
        let reached = async {
            while self.value(name, labels) < at_least {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(WAIT, reached)
            .await
            .unwrap_or_else(|_| panic!("{name} {labels:?} stayed at {}", self.value(name, labels)));
    }
}

async fn serve() -> SocketAddr {
    let live = Live::default();
    let small = Limits::default().max_message_bytes(1024);
    let app = axum::Router::new().route("/live", live.endpoint_with(small, |_| Room));
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { livehtml::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn connections_closes_rejections_messages_and_deliveries_are_counted() {
    let recorder = DebuggingRecorder::new();
    let totals = Totals { snapshotter: recorder.snapshotter(), seen: Default::default() };
    recorder.install().unwrap();
    let addr = serve().await;
    let ws = [("transport", "ws")];

    let (mut a, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    totals.until("livehtml_subscriptions", &[], 2.0).await;
    assert_eq!(totals.value("livehtml_connections", &ws), 2.0);
    assert_eq!(totals.value("livehtml_topics", &[]), 1.0);
    a.send(Message::text(r#"{"say":"one"}"#)).await.unwrap();
    for page in [&mut a, &mut b] {
        let got = tokio::time::timeout(WAIT, page.next()).await.unwrap().unwrap().unwrap();
        assert!(got.to_text().unwrap().contains("one"));
    }
    assert_eq!(totals.value("livehtml_messages_in_total", &[]), 1.0);
    assert_eq!(totals.value("livehtml_published_total", &[]), 1.0);
    assert_eq!(totals.value("livehtml_deliveries_total", &[]), 2.0);
    assert_eq!(totals.value("livehtml_bytes_in_total", &[]), r#"{"say":"one"}"#.len() as f64);
    let fragment = r#"<div id="said" hx-swap-oob="innerHTML">one</div>"#;
    assert_eq!(totals.value("livehtml_delivered_bytes_total", &[]), 2.0 * fragment.len() as f64);
    assert_eq!(totals.value("livehtml_event_duration_seconds", &[]), 1.0);

    // Too big: the server closes with 1009, and says so in the count.
    a.send(Message::text(format!(r#"{{"say":"{}"}}"#, "x".repeat(2048)))).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, a.next()).await {}
    totals.until("livehtml_connections_closed_total", &[("transport", "ws"), ("code", "1009")], 1.0).await;
    // The client leaves: counted as the client's close.
    b.close(None).await.unwrap();
    totals.until("livehtml_connections_closed_total", &[("transport", "ws"), ("code", "client")], 1.0).await;
    assert_eq!(totals.value("livehtml_connections", &ws), 0.0);
    totals.until("livehtml_topics", &[], 0.0).await;
    assert_eq!(totals.value("livehtml_subscriptions", &[]), 0.0);

    // An event stream and a long-poll session, each by its transport.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").await.unwrap();
    totals.until("livehtml_connections", &[("transport", "sse")], 1.0).await;
    let mut poll = tokio::net::TcpStream::connect(addr).await.unwrap();
    poll.write_all(b"GET /live?lh-poll=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    poll.read_to_string(&mut answer).await.unwrap();
    totals.until("livehtml_connections", &[("transport", "poll")], 1.0).await;

    // Refused before any session, by reason.
    let mut foreign = tokio::net::TcpStream::connect(addr).await.unwrap();
    foreign
        .write_all(
            b"GET /live HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    foreign.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"));
    assert_eq!(totals.value("livehtml_rejected_total", &[("reason", "origin")]), 1.0);
    let mut bad_key = tokio::net::TcpStream::connect(addr).await.unwrap();
    bad_key
        .write_all(
            b"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    bad_key.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 400");
    assert_eq!(totals.value("livehtml_rejected_total", &[("reason", "handshake")]), 1.0);
    drop(stream);
}
