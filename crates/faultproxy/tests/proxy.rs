//! The proxy against a real echo server on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use faultproxy::Proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn echoes(tcp: &mut TcpStream, text: &[u8]) -> bool {
    if tcp.write_all(text).await.is_err() {
        return false;
    }
    let mut back = vec![0; text.len()];
    matches!(tokio::time::timeout(WAIT, tcp.read_exact(&mut back)).await, Ok(Ok(_))) && back == text
}

/// Ready once the peer has reset or closed the connection.
async fn ended(tcp: &mut TcpStream) -> bool {
    let mut buf = [0; 64];
    matches!(tokio::time::timeout(WAIT, tcp.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

/// A new connection is reset: at once (the reset can beat the end of `connect`), or on its
/// first read.
async fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect(addr).await {
        Ok(mut tcp) => ended(&mut tcp).await,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

async fn until_open(proxy: &Proxy, n: usize) {
    tokio::time::timeout(WAIT, async {
        while proxy.connections().len() != n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("connections counted");
}

#[tokio::test]
async fn forwards_both_ways_and_cuts_every_connection_on_command() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut a, b"hello").await);
    assert!(echoes(&mut b, b"world").await);
    until_open(&proxy, 2).await;
    assert_eq!(proxy.cut_all(), 2);
    assert!(ended(&mut a).await && ended(&mut b).await);
    // The next connection goes through again.
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut c, b"again").await);
}

#[tokio::test]
async fn cuts_one_connection_and_leaves_the_others() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut a, b"a").await);
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut b, b"b").await);
    until_open(&proxy, 2).await;
    let first = proxy.connections()[0];
    assert!(proxy.cut(first));
    assert!(!proxy.cut(first), "cut once");
    assert!(ended(&mut a).await);
    assert!(echoes(&mut b, b"still here").await);
}

#[tokio::test]
async fn refuses_new_connections_while_told_to() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut open, b"before").await);
    proxy.refuse(true);
    assert!(refused(proxy.addr()).await, "a new connection is reset");
    assert!(echoes(&mut open, b"open ones stay").await);
    proxy.refuse(false);
    let mut later = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut later, b"after").await);
}

/// Sends one HTTP request to the control endpoint; returns the body.
async fn control(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

/// The binary, as browser tests drive it: its addresses on stdout, its commands over HTTP.
#[tokio::test]
async fn the_binary_takes_its_commands_over_http() {
    use std::io::BufRead;
    let upstream = echo_server().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_faultproxy"))
        .args(["--upstream", &upstream.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop_guard();
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut addr = |prefix: &str| -> SocketAddr {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(prefix).unwrap_or_else(|| panic!("{line}")).parse().unwrap()
    };
    let (proxied, control_addr) = (addr("listening on "), addr("control on "));
    let mut client = TcpStream::connect(proxied).await.unwrap();
    assert!(echoes(&mut client, b"through the binary").await);
    assert_eq!(control(control_addr, "GET", "/connections").await, "[1]");
    assert_eq!(control(control_addr, "POST", "/cut").await, "1");
    assert!(ended(&mut client).await);
    control(control_addr, "POST", "/refuse").await;
    assert!(refused(proxied).await);
    control(control_addr, "POST", "/accept").await;
    let mut again = TcpStream::connect(proxied).await.unwrap();
    assert!(echoes(&mut again, b"again").await);
}

/// Kills the child when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

trait KillOnDrop {
    fn kill_on_drop_guard(&mut self) -> Killed;
}

impl KillOnDrop for std::process::Command {
    fn kill_on_drop_guard(&mut self) -> Killed {
        Killed(self.spawn().expect("the faultproxy binary starts"))
    }
}
