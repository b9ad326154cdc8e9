//! Broker faults every back end must survive, given a way to connect a process to a broker at
//! an address: cut off from it for a while (through a proxy that cuts and refuses), and a
//! broker that restarts without its data.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use faultproxy::Proxy;
use livehtml::protocol::Since;
use livehtml::pubsub::{History, Recovery, Tapped};
use livehtml::{Frame, PubSub};

use crate::{WAIT, frame, until};

/// Connects the given pub/sub (its history set) to the broker at the address, in the
/// namespace, and returns it.
pub type Connect =
    Arc<dyn Fn(SocketAddr, String, PubSub) -> Pin<Box<dyn Future<Output = PubSub> + Send>> + Send + Sync>;

/// A private broker's process, killed (and waited for) when dropped.
#[derive(Debug)]
pub struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a private broker (`command`, told to listen on 127.0.0.1:`port`) and waits until it
/// does; `None` when it cannot be run and the run allows skipping (else the test fails: see
/// [`crate::missing`]).
pub fn private(mut command: std::process::Command, port: u16) -> Option<Running> {
    let child = match command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn() {
        Ok(child) => child,
        Err(e) => {
            crate::missing(&format!("cannot run {command:?} ({e})"), "install it");
            return None;
        }
    };
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < WAIT, "{command:?} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Running(child))
}

fn namespace(case: &str) -> String {
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("lhfault-{case}-{}-{unique:x}", std::process::id())
}

async fn node(connect: &Connect, address: SocketAddr, namespace: &str) -> PubSub {
    let pubsub = PubSub::default();
    pubsub.keep_history("room", History::new(100));
    connect(address, namespace.to_owned(), pubsub).await
}

fn text(f: Frame) -> String {
    f.as_text().unwrap().to_owned()
}

/// A process that loses the broker for a while gets, once it is back, everything published
/// meanwhile, in order, and what it published meanwhile reaches everyone: nothing is lost and
/// no page is resynced.
pub async fn an_unreachable_broker_loses_nothing(broker: SocketAddr, connect: Connect) {
    let ns = namespace("outage");
    let proxy = Proxy::start(broker).await.unwrap();
    let (a, b) = (node(&connect, broker, &ns).await, node(&connect, proxy.addr(), &ns).await);
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

/// A broker that restarts empty (`start(port)` starts a private one on that port, stopped when
/// what it returns is dropped; here it is stopped and started anew at the same address): the
/// topic's history is gone, so its pages are resynced (closed with 1012, and told `Lost` when
/// they come back), never left showing a stale page; what is published afterwards flows again.
pub async fn a_broker_that_lost_its_data_resyncs_pages<B>(start: impl Fn(u16) -> Option<B>, connect: Connect) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(first) = start(port) else { return };
    let broker = SocketAddr::from(([127, 0, 0, 1], port));
    let mut again = None;
    let restart = || {
        drop(first);
        again = Some(start(port).expect("the broker starts again"));
    };
    let ns = namespace("restart");
    let (a, b) = (node(&connect, broker, &ns).await, node(&connect, broker, &ns).await);
    let (mut on_b, _) = b.tap("room", None, 256);
    for i in 0..3 {
        a.publish("room", Frame::text(format!("m{i}")));
    }
    let mut seen = None;
    for _ in 0..3 {
        seen = frame(&mut on_b).await.position();
    }
    restart();
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
