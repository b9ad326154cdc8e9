//! Broker faults: NATS unreachable for a while (through a proxy that cuts and refuses), and a
//! NATS that restarts without its data (a private `nats-server -js` on a port of its own, its
//! store directory replaced).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faultproxy::Proxy;
use livehtml::protocol::Since;
use livehtml::pubsub::{History, Recovery, Tapped};
use livehtml::{Frame, PubSub};
use livehtml_conformance::{WAIT, frame, until};
use livehtml_nats::Nats;

fn namespace(case: &str) -> String {
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("lhfault-{case}-{}-{unique:x}", std::process::id())
}

fn shared() -> Option<SocketAddr> {
    let address: SocketAddr = "127.0.0.1:4222".parse().unwrap();
    if std::net::TcpStream::connect(address).is_ok() {
        return Some(address);
    }
    assert!(std::env::var_os("LIVEHTML_REQUIRE_ALL").is_none(), "no NATS at {address}");
    eprintln!("SKIPPED: no NATS at {address}");
    None
}

async fn node(address: SocketAddr, namespace: &str) -> PubSub {
    let pubsub = PubSub::default();
    pubsub.keep_history("room", History::new(100));
    pubsub.connect(Nats::new(&format!("nats://{address}"), namespace)).await.expect("connect");
    pubsub
}

fn text(tapped: Frame) -> String {
    tapped.as_text().unwrap().to_owned()
}

/// A process that loses NATS for a while gets, once it is back, everything published
/// meanwhile, in order, and what it published meanwhile reaches everyone: nothing is lost and
/// no page is resynced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_loses_nothing() {
    let Some(nats) = shared() else { return };
    let ns = namespace("outage");
    let proxy = Proxy::start(nats).await.unwrap();
    let (a, b) = (node(nats, &ns).await, node(proxy.addr(), &ns).await);
    let (mut on_a, _) = a.tap("room", None, 256);
    let (mut on_b, _) = b.tap("room", None, 256);
    a.publish("room", Frame::text("before"));
    assert_eq!(text(frame(&mut on_b).await), "before");
    assert_eq!(text(frame(&mut on_a).await), "before");

    proxy.refuse(true);
    proxy.cut_all();
    until("b sees the broker gone", || !b.is_connected()).await;
    for i in 0..20 {
        a.publish("room", Frame::text(format!("a{i}")));
    }
    for i in 0..5 {
        assert!(b.publish("room", Frame::text(format!("b{i}"))) > 0, "queued while the broker is away");
    }
    for i in 0..20 {
        assert_eq!(text(frame(&mut on_a).await), format!("a{i}"));
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage: nothing to wait for
    assert!(on_b.try_next().is_none(), "nothing reaches b while it is cut off");
    proxy.refuse(false);

    let mut on_b_seen = Vec::new();
    for _ in 0..25 {
        on_b_seen.push(text(frame(&mut on_b).await));
    }
    let expected: Vec<String> = (0..20).map(|i| format!("a{i}")).chain((0..5).map(|i| format!("b{i}"))).collect();
    assert_eq!(on_b_seen, expected, "caught up in order, then its own");
    for i in 0..5 {
        assert_eq!(text(frame(&mut on_a).await), format!("b{i}"));
    }
    assert_eq!(a.position("room"), b.position("room"));
    assert_eq!(b.refused(), 0);
}

/// A private NATS with JetStream, on a port of its own, storing in `dir`.
struct Private {
    child: Child,
    port: u16,
}

impl Private {
    fn start(port: u16, dir: &std::path::Path) -> Option<Self> {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(std::env::var_os("LIVEHTML_REQUIRE_ALL").is_none(), "no nats-server: {e}");
                eprintln!("SKIPPED: no nats-server ({e})");
                return None;
            }
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A NATS that restarts empty: the topic's history is gone, so its pages are resynced (closed
/// with 1012, and told `Lost` when they come back), never left showing a stale page; what is
/// published afterwards flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_resyncs_pages() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(nats) = Private::start(port, first.path()) else { return };
    let ns = namespace("restart");
    let (a, b) = (node(nats.address(), &ns).await, node(nats.address(), &ns).await);
    let (mut on_b, _) = b.tap("room", None, 256);
    for i in 0..3 {
        a.publish("room", Frame::text(format!("m{i}")));
    }
    let mut seen = None;
    for _ in 0..3 {
        seen = frame(&mut on_b).await.position();
    }
    drop(nats);
    let _nats = Private::start(port, second.path()).unwrap();
    match tokio::time::timeout(WAIT, on_b.next()).await {
        Ok(Some(Tapped::Resync)) => {}
        other => panic!("the page is resynced, not {other:?}"),
    }
    until("b is back", || b.is_connected() && a.is_connected()).await;
    let since = Since { reconnect: true, positions: seen.into_iter().collect(), tracks: true };
    let (mut back, recovery) = b.tap("room", Some(&since), 256);
    assert_eq!(recovery, Recovery::Lost, "its history is gone");
    a.publish("room", Frame::text("after"));
    assert_eq!(text(frame(&mut back).await), "after");
    assert_ne!(b.position("room").unwrap().epoch, seen.unwrap().epoch);
}
