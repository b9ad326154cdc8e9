//! livehtml.js as served: minified, compressed as the request accepts, cached for good under
//! its hashed name and revalidated under its plain one.

use std::net::SocketAddr;

use livehtml::Live;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve() -> SocketAddr {
    let app: axum::Router = Live::default().client_script();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends a raw HTTP request (`{addr}` is replaced) and returns the status line, the head and
/// the body (read as text only where it is: a compressed body is not).
async fn raw_http(addr: SocketAddr, request: &str) -> (String, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.replace("{addr}", &addr.to_string()).as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tcp.read_to_end(&mut bytes).await.unwrap();
    let resp = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp.as_str(), ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn the_client_script_is_served() {
    let addr = serve().await;
    let get =
        |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: {{addr}}\r\n{extra}Connection: close\r\n\r\n");
    let (status, head, body) = raw_http(addr, &get(livehtml::SCRIPT_PATH, "")).await;
    assert!(status.starts_with("HTTP/1.1 200"));
    assert!(head.contains("text/javascript"));
    assert!(head.to_ascii_lowercase().contains("cache-control: no-cache"), "{head}");
    assert_eq!(body, livehtml::SCRIPT_MINIFIED);
    let etag = head.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an ETag").to_owned();

    // The same script again: nothing but a 304.
    let (status, _, body) = raw_http(addr, &get(livehtml::SCRIPT_PATH, &format!("If-None-Match: {etag}\r\n"))).await;
    assert!(status.starts_with("HTTP/1.1 304"), "{status}");
    assert!(body.is_empty());

    // Under its hashed name, cached for good, compressed as asked.
    let (status, head, _) = raw_http(addr, &get(livehtml::SCRIPT_URL, "Accept-Encoding: gzip, br\r\n")).await;
    assert!(status.starts_with("HTTP/1.1 200"));
    assert!(head.contains("cache-control: public, max-age=31536000, immutable"), "{head}");
    assert!(head.contains("content-encoding: br"), "{head}");
    assert!(head.contains("vary: Accept-Encoding"), "{head}");

    // Another build's name gets this build's script, not cached as if it were that one.
    let (status, head, body) = raw_http(addr, &get("/_livehtml/livehtml.0123456789abcdef.js", "")).await;
    assert!(status.starts_with("HTTP/1.1 200"));
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert_eq!(body, livehtml::SCRIPT_MINIFIED);
    let (status, _, _) = raw_http(addr, &get("/_livehtml/other.css", "")).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}
