//! Broker faults: Redis unreachable for a while (through a proxy that cuts and refuses), and a
//! Redis that restarts without its data (a private `redis-server` on a port of its own).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faultproxy::Proxy;
use livehtml::protocol::Since;
use livehtml::pubsub::{History, Recovery, Tapped};
use livehtml::{Frame, PubSub};
use livehtml_conformance::{WAIT, frame, until};
use livehtml_redis::Redis;

fn namespace(case: &str) -> String {
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("lhfault-{case}-{}-{unique:x}", std::process::id())
}

fn shared() -> Option<SocketAddr> {
    let address: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    if std::net::TcpStream::connect(address).is_ok() {
        return Some(address);
    }
    assert!(std::env::var_os("LIVEHTML_REQUIRE_ALL").is_none(), "no Redis at {address}");
    eprintln!("SKIPPED: no Redis at {address}");
    None
}

async fn node(address: SocketAddr, namespace: &str) -> PubSub {
    let pubsub = PubSub::default();
    pubsub.keep_history("room", History::new(100));
    pubsub.connect(Redis::new(&format!("redis://{address}"), namespace).unwrap()).await.expect("connect");
    pubsub
}

fn text(tapped: Frame) -> String {
    tapped.as_text().unwrap().to_owned()
}

/// A process that loses Redis for a while gets, once it is back, everything published
/// meanwhile, in order, and what it published meanwhile reaches everyone: nothing is lost and
/// no page is resynced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_loses_nothing() {
    let Some(redis) = shared() else { return };
    let ns = namespace("outage");
    let proxy = Proxy::start(redis).await.unwrap();
    let (a, b) = (node(redis, &ns).await, node(proxy.addr(), &ns).await);
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

/// A private Redis, without persistence, on a port of its own.
struct Private {
    child: Child,
    port: u16,
}

impl Private {
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(std::env::var_os("LIVEHTML_REQUIRE_ALL").is_none(), "no redis-server: {e}");
                eprintln!("SKIPPED: no redis-server ({e})");
                return None;
            }
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "redis-server did not start");
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

/// A Redis that restarts empty: the topic's history is gone, so its pages are resynced (closed
/// with 1012, and told `Lost` when they come back), never left showing a stale page; what is
/// published afterwards flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_resyncs_pages() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(redis) = Private::start(port) else { return };
    let ns = namespace("restart");
    let (a, b) = (node(redis.address(), &ns).await, node(redis.address(), &ns).await);
    let (mut on_b, _) = b.tap("room", None, 256);
    for i in 0..3 {
        a.publish("room", Frame::text(format!("m{i}")));
    }
    let mut seen = None;
    for _ in 0..3 {
        seen = frame(&mut on_b).await.position();
    }
    drop(redis);
    let _redis = Private::start(port).unwrap();
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
