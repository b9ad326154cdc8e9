//! The demo's live endpoints over real sockets.

mod common;

use common::{Server, htmx2, livehtml_js, next_text, until_text};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn chat_history_survives_a_restart_and_is_rendered_escaped_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut a = server.connect("/ws/chat").await;
    let mut b = server.connect("/ws/chat").await;
    // Each join broadcasts the head count; "2 online" means both are in the room.
    until_text(&mut a, "2 online").await;
    a.send(htmx2(json!({"name": "Ann", "message": "<b>hi</b> & bye"}), "chat-form")).await.unwrap();
    for ws in [&mut a, &mut b] {
        let msg = until_text(ws, "Ann").await;
        assert!(msg.starts_with(r#"<ul id="messages" hx-swap-oob="beforeend"><li>["#), "{msg}");
        assert!(msg.contains("<strong>Ann</strong>: &lt;b&gt;hi&lt;/b&gt; &amp; bye</li>"), "{msg}");
    }
    // Empty messages are not stored or sent; the default name is Anonymous.
    a.send(htmx2(json!({"name": "", "message": "   "}), "chat-form")).await.unwrap();
    a.send(htmx2(json!({"name": "", "message": "second"}), "chat-form")).await.unwrap();
    assert!(until_text(&mut b, "second").await.contains("<strong>Anonymous</strong>: second"));
    drop((a, b));
    server.stop().await;

    let server = Server::start(dir.path()).await;
    let page = server.get("/chat").await;
    let first = page.find("&lt;b&gt;hi&lt;/b&gt; &amp; bye").expect("first message in the first render");
    let second = page.find("Anonymous</strong>: second").expect("second message in the first render");
    assert!(first < second, "oldest first");
    assert!(!page.contains("<b>hi</b>"));
    assert!(page.contains(r#"lh-connect="/ws/chat""#));
}

#[tokio::test]
async fn echo_returns_the_message_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut ws = server.connect("/ws/echo").await;
    ws.send(htmx2(json!({"message": "<hello>"}), "conversation")).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        concat!(
            r#"<div id="chatbox" hx-swap-oob="beforeend"><p class="sent">You sent: &lt;hello&gt;</p>"#,
            r#"<p class="echoed">Server echoed: &lt;hello&gt;</p></div>"#
        )
    );
}

#[tokio::test]
async fn lobby_updates_three_regions_in_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut alice = server.connect("/ws/lobby").await;
    let mut bob = server.connect("/ws/lobby").await;
    alice.send(livehtml_js("join", json!({"name": "Alice"}))).await.unwrap();
    // Alice's own page gets the ready toggle; then every page hears of her from the lobby's
    // presence, as one three-region update.
    until_text(&mut alice, r#"id="ready""#).await;
    let joined = until_text(&mut alice, "Alice has joined").await;
    assert!(joined.contains(r#"<div id="game-status" hx-swap-oob="innerHTML">1 player connected"#), "{joined}");
    bob.send(livehtml_js("join", json!({"name": "Bob"}))).await.unwrap();
    until_text(&mut alice, "Bob has joined").await;

    alice.send(livehtml_js("ready", json!({}))).await.unwrap();
    let update = until_text(&mut bob, "Alice is ready.").await;
    assert!(update.starts_with(r#"<div id="player-list" hx-swap-oob="innerHTML">"#), "{update}");
    assert!(
        update.contains(r#"<div class="player ready">Alice (Ready)</div><div class="player">Bob (Not Ready)</div>"#)
    );
    assert!(update.contains(
        r#"<div id="game-status" hx-swap-oob="innerHTML">2 players connected — waiting for all to be ready</div>"#
    ));
    assert!(update.contains(r#"<div id="chat-log" hx-swap-oob="beforeend"><p><em>Alice is ready.</em></p></div>"#));

    // Bob's page closes: he leaves once the presence grace period is over (a reconnect within
    // it would not have been a leave).
    drop(bob);
    let left = until_text(&mut alice, "Bob has left").await;
    assert!(left.contains("1 player connected"));
}

#[tokio::test]
async fn pages_render_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let home = server.get("/").await;
    for link in ["/chat", "/echo", "/lobby"] {
        assert!(home.contains(&format!(r#"href="{link}""#)));
    }
    for (path, marker) in [("/echo", "/ws/echo"), ("/lobby", "/ws/lobby")] {
        let page = server.get(path).await;
        assert!(page.contains(marker) && page.contains(livehtml::SCRIPT_URL), "{path}");
    }
}

/// The probe's flood: one page sending to the chat as fast as it can is held to its allowance
/// (50 a second, 200 at once), then closed with 1008; the chat stores no more than that, and
/// another page is answered as ever.
#[tokio::test]
async fn a_page_flooding_the_chat_is_held_to_its_allowance_and_closed() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut flood = server.connect("/ws/chat").await;
    let mut other = server.connect("/ws/chat").await;
    let started = std::time::Instant::now();
    for i in 0..2_000 {
        if flood.send(livehtml_js("", json!({"name": "Flood", "message": format!("f{i}")}))).await.is_err() {
            break;
        }
    }
    let closed = tokio::time::timeout(common::WAIT, async {
        while let Some(Ok(message)) = flood.next().await {
            if let Message::Close(Some(frame)) = message {
                return Some(frame);
            }
        }
        None
    })
    .await
    .expect("closed in time")
    .expect("a close frame");
    assert_eq!((u16::from(closed.code), closed.reason.as_str()), (1008, "rate limit"));
    // The burst, and what the allowance added while the flood was being read (a busy machine
    // reads it more slowly).
    let allowed = 200 + (50.0 * (started.elapsed().as_secs_f64() + 1.0)) as usize;
    other.send(livehtml_js("", json!({"name": "Other", "message": "still served"}))).await.unwrap();
    until_text(&mut other, "still served").await;
    let page = server.get("/chat").await;
    let stored = page.matches("<strong>Flood</strong>").count();
    assert!(stored <= 50, "the first render shows the last 50 at most: {stored}");
    let history = server.state.chat.recent(10_000).await.unwrap();
    let flooded = history.iter().filter(|m| m.name == "Flood").count();
    assert!((200..=allowed).contains(&flooded), "{flooded} of 2,000 stored (allowed {allowed})");
}

#[tokio::test]
async fn health_and_readiness_answer_and_readiness_ends_with_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    assert!(server.request("/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(server.request("/readyz").await.starts_with("HTTP/1.1 200"));
    // On a connection opened before the shutdown (new ones may be refused by then).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    server.state.live.shutdown();
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut readyz = String::new();
    let _ = tcp.read_to_string(&mut readyz).await;
    assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
}

/// What an operator scrapes: livehtml's counters through the demo's Prometheus recorder. The
/// recorder is the test process's, shared by the tests running beside this one: counts are
/// checked as at least what this test did.
#[tokio::test]
async fn metrics_show_connections_messages_latency_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut ws = server.connect("/ws/chat").await;
    until_text(&mut ws, "online").await;
    ws.send(htmx2(json!({"name": "Ops", "message": "counted"}), "chat-form")).await.unwrap();
    until_text(&mut ws, "counted").await;
    // A handshake from a foreign origin is refused and counted by its reason.
    let mut foreign = format!("ws://{}/ws/chat", server.addr).into_client_request().unwrap();
    foreign.headers_mut().insert("Origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(foreign).await.is_err());

    let metrics = server.get("/metrics").await;
    let value = |line: &str| -> f64 {
        let found = metrics.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in {metrics}"));
        found.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(metrics.contains("text/plain"), "{metrics:.200}");
    assert!(value("livehtml_connections{transport=\"ws\"}") >= 1.0);
    assert!(value("livehtml_connections_opened_total{transport=\"ws\"}") >= 1.0);
    assert!(value("livehtml_messages_in_total") >= 1.0);
    assert!(value("livehtml_deliveries_total") >= 1.0);
    assert!(value("livehtml_event_duration_seconds_count") >= 1.0);
    assert!(value("livehtml_rejected_total{reason=\"origin\"}") >= 1.0);
    assert!(value("livehtml_subscriptions") >= 1.0);
    assert!(value("livehtml_demo_connections") >= 1.0);
    drop(ws);
    // The close is counted with who ended it.
    let closed = async {
        loop {
            let metrics = server.get("/metrics").await;
            if metrics.contains("livehtml_connections_closed_total{transport=\"ws\",code=\"client\"}") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(common::WAIT, closed).await.expect("the close is counted");
}
