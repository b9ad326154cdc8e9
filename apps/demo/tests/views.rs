//! The blog and counter live views: through the test client (no browser, no socket), over
//! plain HTTP, and over a real socket for the token check.

mod common;

use std::time::Duration;

use common::{Server, WAIT};
use futures_util::StreamExt;
use livehtml::protocol::close;
use livehtml_demo::AppState;
use tokio_tungstenite::tungstenite::Message;

async fn state(dir: &std::path::Path) -> AppState {
    let url = std::env::var("LIVEHTML_TEST_DATABASE_URL").ok();
    livehtml_demo::state(dir, url.as_deref(), time::UtcOffset::UTC, livehtml::Limits::default()).await.expect("state")
}

#[tokio::test]
async fn the_test_client_drives_the_blog_and_follows_navigation() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let views = livehtml_demo::views(&state);

    let mut page = views.test("/blog").await.unwrap();
    assert_eq!(page.title(), "Blog");
    assert!(page.html().contains(r#"<a href="/article/1" lh-nav>HTML over WebSockets</a>"#));

    page.navigate("/article/1").await.unwrap();
    assert_eq!(page.url(), "/article/1");
    assert_eq!(page.title(), "HTML over WebSockets");
    assert!(page.html().contains("Send HTML, not JSON"));

    // A second reader of the same article.
    let mut other = views.test("/article/1").await.unwrap();

    let sent = page.event("comment", &[("author", "Ann"), ("body", "<b>first</b>")]).await.unwrap();
    // The comment list, its count and the form (whose hint counts comments) travel; the article
    // and the heading do not.
    assert!(sent.contains(r#"<ul id="comments">"#), "{sent}");
    assert!(sent.contains("<strong>Ann</strong>: &lt;b&gt;first&lt;/b&gt;"), "escaped: {sent}");
    assert!(sent.contains(r#"id="comment-count""#) && sent.contains("comment #2"));
    assert!(!sent.contains("Send HTML, not JSON") && !sent.contains(r#"id="title""#), "{sent}");
    let (update, whole) = page.last_update_bytes();
    assert!(update < whole, "an update ({update} B) is smaller than the whole view ({whole} B)");
    eprintln!("blog comment: {update} bytes sent, whole view {whole} bytes");

    // The other reader hears of it and gets the same small update.
    let pushed = other.next_message(WAIT).await.expect("the comment reaches the other reader");
    assert!(pushed.contains("&lt;b&gt;first&lt;/b&gt;") && pushed.contains(r#"id="comments""#), "{pushed}");
    // The poster's own copy of the message changes nothing on its page.
    assert_eq!(page.next_message(WAIT).await.as_deref(), Some(""));

    // Bad input and unknown events are errors, not crashes.
    assert!(matches!(page.event("comment", &[("body", "   ")]).await, Err(livehtml::view::ViewError::BadRequest(_))));
    assert!(matches!(page.event("delete-everything", &[]).await, Err(livehtml::view::ViewError::UnknownEvent(_))));
    assert!(matches!(views.test("/article/999").await, Err(livehtml::view::ViewError::NotFound)));
    assert!(matches!(views.test("/article/x").await, Err(livehtml::view::ViewError::NotFound)));

    // Back to the list: it counts the new comment.
    page.navigate("/blog").await.unwrap();
    assert!(page.html().contains("1 comments"));

    // Sorting moves the articles the page has: the list's new order travels, not the articles.
    let sent = page.event("order", &[("order", "newest")]).await.unwrap();
    assert!(sent.starts_with(r#"<ul id="articles" lh-order="article-"#), "{sent}");
    assert!(!sent.contains("<li"), "{sent}");
    let (update, whole) = page.last_update_bytes();
    eprintln!("blog sort: {update} bytes sent, whole view {whole} bytes");
}

#[tokio::test]
async fn the_test_client_drives_the_counter_and_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let views = livehtml_demo::views(&state);
    let mut a = views.test("/counter").await.unwrap();
    let mut b = views.test("/counter").await.unwrap();

    assert_eq!(a.event("inc", &[]).await.unwrap(), r#"<output id="mine">1</output>"#);
    let (update, whole) = a.last_update_bytes();
    eprintln!("counter click: {update} bytes sent, whole view {whole} bytes");
    assert!(update * 10 < whole);
    a.event("inc", &[]).await.unwrap();
    a.event("dec", &[]).await.unwrap();
    assert!(a.html().contains(r#"<output id="mine">1</output>"#));
    assert!(b.html().contains(r#"<output id="mine">0</output>"#), "per-page state");

    let sent = a.event("shared-inc", &[]).await.unwrap();
    assert_eq!(sent, r#"<output id="shared">1</output>"#);
    // b gets the shared value; the clock may tick in between, so read until it does.
    let mut got = String::new();
    for _ in 0..5 {
        got = b.next_message(WAIT).await.expect("a message");
        if got.contains(r#"id="shared""#) {
            break;
        }
    }
    assert_eq!(got, r#"<output id="shared">1</output>"#);

    // The clock: a timer message every second re-renders only the clock, when it changed.
    let tick = loop {
        let sent = a.next_message(Duration::from_secs(3)).await.expect("the clock ticks");
        if !sent.is_empty() && !sent.contains(r#"id="shared""#) {
            break sent;
        }
    };
    assert!(tick.starts_with(r#"<time id="clock">"#), "{tick}");
}

#[tokio::test]
async fn articles_render_over_plain_http_and_tampered_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let page = server.get("/article/1").await;
    assert!(page.contains("<title>HTML over WebSockets · livehtml</title>"));
    assert!(page.contains(r#"<h1 id="title">HTML over WebSockets</h1>"#));
    assert!(page.contains("Send HTML, not JSON"));
    let token = page.split("/_livehtml/live?t=").nth(1).and_then(|s| s.split('"').next()).expect("a token").to_owned();

    // The genuine token joins, and nothing is re-sent: the page already shows this render. The
    // first message the socket gets is the answer to its first event, not a second render.
    let mut ws = server.connect(&format!("/_livehtml/live?t={token}&client=lh")).await;
    use futures_util::SinkExt;
    ws.send(common::livehtml_js("no-such-event", serde_json::json!({}))).await.unwrap();
    // (After where its comment topic starts, which livehtml.js keeps for a reconnect.)
    let mark = common::next_text(&mut ws).await;
    assert!(mark.starts_with("<!--lh:") && mark.ends_with("-0-->"), "{mark}");
    let first = common::next_text(&mut ws).await;
    assert_eq!(first, r#"<div id="lh-flash" hx-swap-oob="innerHTML">unknown event &quot;no-such-event&quot;</div>"#);

    // A tampered, cut or missing token is refused with 4002: the page should reload.
    let forged = token.replacen('.', ".1", 1);
    for bad in [forged.as_str(), "v1.0.0.L2FydGljbGUvMg.AAAA", "", "garbage"] {
        let mut ws = server.connect(&format!("/_livehtml/live?t={bad}")).await;
        let code = tokio::time::timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(code, Some(close::STALE_VIEW), "token {bad:?}");
    }

    // Unknown articles are 404s.
    let resp = server.request("/article/999").await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}

#[tokio::test]
async fn the_blog_runs_on_postgresql_when_database_url_says_so() {
    let url =
        std::env::var("LIVEHTML_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let pool = match sqlx::AnyPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            livehtml_conformance::missing(&format!("PostgreSQL at {url} is not reachable ({e})"), "start PostgreSQL");
            return;
        }
    };
    // A schema of this run's own: tests sharing the server never see each other's tables.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("lh_test_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let state = livehtml_demo::state(dir.path(), Some(&scoped), time::UtcOffset::UTC, livehtml::Limits::default())
        .await
        .expect("state on PostgreSQL");
    let views = livehtml_demo::views(&state);
    let mut page = views.test("/blog").await.unwrap();
    assert!(page.html().contains("HTML over WebSockets"), "seeded on first run");
    page.navigate("/article/3").await.unwrap();
    let sent = page.event("comment", &[("author", "Pg"), ("body", "stored in PostgreSQL")]).await.unwrap();
    assert!(sent.contains("<strong>Pg</strong>: stored in PostgreSQL"));
    let fresh = views.test("/article/3").await.unwrap();
    assert!(fresh.html().contains("stored in PostgreSQL"), "read back from PostgreSQL");
    let count = format!("SELECT COUNT(*) FROM {schema}.blog_comments");
    let (n,): (i64,) = sqlx::query_as(&count).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
    // What processes on several machines share lives there too: the chat, the shared counter,
    // the notifications.
    let said = livehtml_demo::chat::Message { time: "12:00:00".into(), name: "Pg".into(), body: "hi".into() };
    state.chat.insert(&said).await.unwrap();
    assert_eq!(state.chat.recent(10).await.unwrap().last().map(|m| m.body.as_str()), Some("hi"));
    assert_eq!((state.shared.bump().await.unwrap(), state.shared.bump().await.unwrap()), (1, 2));
    assert_eq!(state.shared.notify("n").await.unwrap(), 1);
    for table in ["chat_messages", "demo_counter", "demo_notifications"] {
        let (n,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM {schema}.{table}")).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 1, "{table} in PostgreSQL");
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await.unwrap();
}
