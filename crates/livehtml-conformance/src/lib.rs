//! The conformance suite of livehtml's pub/sub back ends: what a cluster of processes on one
//! broker must do exactly as one process does. [`suite!`] writes one test per case for a back
//! end; livehtml runs it in process (every "process" is the same [`PubSub`]), `livehtml-redis`
//! and `livehtml-nats` against real servers.
//!
//! Each case makes its processes with the back end's `make(namespace)`, in a namespace of its
//! own, so runs and cases never see each other's topics on a shared broker.

pub mod faults;
mod missing;

pub use missing::{SKIPPED_FILE, missing};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livehtml::protocol::{Position, Since};
use livehtml::pubsub::{History, PresenceDiff, Recovery, RelayError, Tap, Tapped};
use livehtml::{Frame, PubSub};

/// How long anything a case waits for may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Makes a process of the cluster named by its first argument: connects the [`PubSub`] it is
/// given (set up already: histories) and returns it (in process: returns the one pub/sub).
pub type Make = Arc<dyn Fn(String, PubSub) -> Pin<Box<dyn Future<Output = PubSub> + Send>> + Send + Sync>;

/// The processes of one case.
pub struct Nodes {
    make: Make,
    namespace: String,
    /// Several processes (a broker): a case of what only a cluster has runs.
    pub clustered: bool,
}

impl Nodes {
    /// A case's cluster: `make`s processes in a namespace no other case or run uses.
    pub fn new(make: Make, clustered: bool, case: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let namespace =
            format!("lhtest-{case}-{}-{unique:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        Self { make, namespace, clustered }
    }

    /// One more process.
    pub async fn spawn(&self) -> PubSub {
        self.spawn_with(|_| {}).await
    }

    /// One more process, set up by `setup` before it connects (histories are given before).
    pub async fn spawn_with(&self, setup: impl Fn(&PubSub)) -> PubSub {
        let fresh = PubSub::default();
        setup(&fresh);
        let pubsub = (self.make)(self.namespace.clone(), fresh).await;
        setup(&pubsub);
        pubsub.set_presence_grace(Duration::from_millis(200));
        pubsub.set_node_timeout(Duration::from_millis(900));
        pubsub
    }
}

/// The next message a tap takes (infos skipped), within [`WAIT`].
pub async fn frame(tap: &mut Tap) -> Frame {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline.into(), tap.next()).await {
            Ok(Some(Tapped::Frame(f))) => return f,
            Ok(Some(Tapped::Info(_))) => continue,
            Ok(other) => panic!("the tap ended: {other:?}"),
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }
}

/// The next presence change a tap takes (messages and other infos skipped), within [`WAIT`].
pub async fn presence(tap: &mut Tap) -> PresenceDiff {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline.into(), tap.next()).await {
            Ok(Some(Tapped::Info(i))) => {
                if let Some(diff) = i.get::<PresenceDiff>() {
                    return diff.clone();
                }
            }
            Ok(Some(Tapped::Frame(_))) => {}
            Ok(other) => panic!("the tap ended: {other:?}"),
            Err(_) => panic!("no presence change within {WAIT:?}"),
        }
    }
}

/// Waits until `check` holds, within [`WAIT`].
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn text(f: &Frame) -> String {
    f.as_text().expect("a text message").to_owned()
}

fn claim(at: Position) -> Since {
    Since { reconnect: true, positions: vec![at], tracks: true }
}

/// Every process sees a topic's messages, from every publisher, in one order, with offsets
/// that grow, and each publisher's in the order it published them.
pub async fn order_per_topic(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut on_a, _) = a.tap("t", None, 4096);
    let (mut on_b, _) = b.tap("t", None, 4096);
    let publish = |p: PubSub, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..300 {
                p.publish("t", Frame::text(format!("{name}{i}")));
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let (x, y) = (publish(a.clone(), "a"), publish(b.clone(), "b"));
    x.await.unwrap();
    y.await.unwrap();
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..600 {
        let (fa, fb) = (frame(&mut on_a).await, frame(&mut on_b).await);
        seen_a.push((fa.position().unwrap(), text(&fa)));
        seen_b.push((fb.position().unwrap(), text(&fb)));
    }
    assert_eq!(seen_a, seen_b, "both processes see one order, with the same positions");
    assert!(seen_a.windows(2).all(|w| w[0].0.offset < w[1].0.offset && w[0].0.epoch == w[1].0.epoch));
    for name in ["a", "b"] {
        let mine: Vec<String> = seen_a.iter().filter(|(_, t)| t.starts_with(name)).map(|(_, t)| t.clone()).collect();
        let sent: Vec<String> = (0..300).map(|i| format!("{name}{i}")).collect();
        assert_eq!(mine, sent, "{name}'s messages in the order it published them");
    }
}

/// Processes agree on a topic's position, and a process that joins later learns it.
pub async fn positions_agree(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    assert_eq!(b.position("fresh"), a.position("fresh"));
    let (mut on_b, _) = b.tap("t", None, 64);
    for i in 0..5 {
        a.publish("t", Frame::text(format!("m{i}")));
    }
    let mut last = None;
    for _ in 0..5 {
        last = frame(&mut on_b).await.position();
    }
    until("the publisher knows where the topic is", || a.position("t") == last).await;
    assert_eq!(b.position("t"), last);
    let c = nodes.spawn().await;
    assert_eq!(c.position("t"), last, "a process that joins later");
}

/// A topic's history keeps what it says and no more; a process that starts later holds it too.
pub async fn history_bounds(nodes: Nodes) {
    let keep = |p: &PubSub| p.keep_history("kept:*", History::new(5));
    let a = nodes.spawn_with(keep).await;
    let (mut on_a, _) = a.tap("kept:t", None, 64);
    let mut positions = vec![a.position("kept:t").unwrap()];
    for i in 1..=10 {
        a.publish("kept:t", Frame::text(format!("m{i}")));
        positions.push(frame(&mut on_a).await.position().unwrap());
    }
    let c = nodes.spawn_with(keep).await;
    assert_eq!(c.position("kept:t"), Some(positions[10]));
    let (mut tap, recovery) = c.tap("kept:t", Some(&claim(positions[5])), 64);
    assert_eq!(recovery, Recovery::Replayed(5));
    for (i, at) in positions.iter().enumerate().skip(6) {
        let f = frame(&mut tap).await;
        assert_eq!((text(&f), f.position()), (format!("m{i}"), Some(*at)));
    }
    let (_, recovery) = c.tap("kept:t", Some(&claim(positions[4])), 64);
    assert_eq!(recovery, Recovery::Lost, "the sixth newest message is not kept");
    let (_, recovery) = c.tap("kept:t", Some(&claim(positions[10])), 64);
    assert_eq!(recovery, Recovery::Replayed(0));
}

/// A page that drops off one process and comes back on another is replayed what it missed, in
/// order, before anything new.
pub async fn replay_on_another_process(nodes: Nodes) {
    let keep = |p: &PubSub| p.keep_history("room", History::new(100));
    let (a, b) = (nodes.spawn_with(keep).await, nodes.spawn_with(keep).await);
    let (mut on_a, _) = a.tap("room", None, 64);
    let (mut watch, _) = b.tap("room", None, 64);
    for i in 0..3 {
        a.publish("room", Frame::text(format!("before{i}")));
    }
    let mut seen = Position::default();
    for _ in 0..3 {
        seen = frame(&mut on_a).await.position().unwrap();
        frame(&mut watch).await;
    }
    drop(on_a);
    for i in 0..4 {
        b.publish("room", Frame::text(format!("missed{i}")));
    }
    for _ in 0..4 {
        frame(&mut watch).await;
    }
    let (mut back, recovery) = b.tap("room", Some(&claim(seen)), 64);
    assert_eq!(recovery, Recovery::Replayed(4));
    a.publish("room", Frame::text("after"));
    let mut texts = Vec::new();
    for _ in 0..5 {
        texts.push(text(&frame(&mut back).await));
    }
    assert_eq!(texts, ["missed0", "missed1", "missed2", "missed3", "after"]);
}

/// Members count across processes: joins and leaves reach every process once, a member on two
/// processes is one, and a process that dies takes its members with it within a bounded time.
pub async fn presence_across_processes(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut on_b, _) = b.tap("lobby", None, 256);
    let ann = a.track("lobby", "u1", "Ann");
    let diff = presence(&mut on_b).await;
    assert_eq!(diff.joins.iter().map(|m| m.meta.as_str()).collect::<Vec<_>>(), ["Ann"]);
    assert_eq!(b.members("lobby").len(), 1);
    assert_eq!(b.member_count("lobby"), 1, "counted as listed");

    // One member on two processes.
    let bob_a = a.track("lobby", "u2", "Bob");
    assert_eq!(presence(&mut on_b).await.joins[0].key, "u2");
    let bob_b = b.track("lobby", "u2", "Bob");
    drop(bob_a);
    drop(ann);
    let diff = presence(&mut on_b).await;
    assert_eq!(diff.leaves.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["u1"], "Bob is still on b");
    until("a sees Bob through b", || a.members("lobby").iter().any(|m| m.key == "u2")).await;
    until("a counts Bob once", || a.member_count("lobby") == 1).await;
    drop(bob_b);
    assert_eq!(presence(&mut on_b).await.leaves[0].key, "u2");
    until("both see nobody", || a.members("lobby").is_empty() && b.members("lobby").is_empty()).await;
    until("both count nobody", || a.member_count("lobby") == 0 && b.member_count("lobby") == 0).await;

    if !nodes.clustered {
        return;
    }
    let c = nodes.spawn().await;
    let cy = c.track("lobby", "u3", "Cy");
    assert_eq!(presence(&mut on_b).await.joins[0].key, "u3");
    let died = Instant::now();
    c.halt();
    std::mem::forget(cy);
    let diff = presence(&mut on_b).await;
    assert_eq!(diff.leaves[0].key, "u3");
    assert!(died.elapsed() < Duration::from_secs(3), "a dead process's members left after {:?}", died.elapsed());
}

/// Hundreds of topics, each to its own subscribers only.
pub async fn many_topics(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let mut taps: Vec<Tap> = (0..300).map(|i| b.tap(&format!("many:{i}"), None, 8).0).collect();
    for i in 0..300 {
        a.publish(&format!("many:{i}"), Frame::text(format!("to {i}")));
    }
    for (i, tap) in taps.iter_mut().enumerate() {
        assert_eq!(text(&frame(tap).await), format!("to {i}"));
    }
    for tap in &mut taps {
        assert!(tap.try_next().is_none(), "a topic got another's message");
    }
}

/// A large message (900 KiB: under NATS's default limit of 1 MB), a binary one and a named
/// event arrive as they were published.
pub async fn large_payloads(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut on_b, _) = b.tap("big", None, 8);
    let big: String = (0..900 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    a.publish("big", Frame::text(big.clone()));
    a.publish("big", Frame::binary(vec![0u8, 159, 255]));
    a.publish("big", Frame::event("users", "<b>42</b>"));
    assert_eq!(frame(&mut on_b).await.as_text(), Some(big.as_str()));
    let binary = frame(&mut on_b).await;
    assert_eq!((binary.as_text(), binary.len()), (None, 3));
    let event = frame(&mut on_b).await;
    assert_eq!((event.event_name(), event.as_text()), (Some("users"), Some("<b>42</b>")));
}

/// An ended subscription gets nothing more; a new one starts from now.
pub async fn unsubscribe(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut watch, _) = a.tap("u", None, 8);
    let others = b.subscriber_count("u");
    let (tap, _) = b.tap("u", None, 8);
    assert_eq!(b.subscriber_count("u"), others + 1);
    drop(tap);
    assert_eq!(b.subscriber_count("u"), others);
    a.publish("u", Frame::text("nobody"));
    assert_eq!(text(&frame(&mut watch).await), "nobody");
    // Each process subscribes from where it is in the topic: once b is past it, too.
    until("b is past the message", || b.position("u") == a.position("u")).await;
    let (mut again, _) = b.tap("u", None, 8);
    a.publish("u", Frame::text("new"));
    assert_eq!(text(&frame(&mut again).await), "new", "nothing from before the subscription");
}

/// Text infos reach every process's sessions.
pub async fn text_infos(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut on_b, _) = b.tap("count", None, 8);
    a.publish_text_info("count", "42");
    match tokio::time::timeout(WAIT, on_b.next()).await {
        Ok(Some(Tapped::Info(i))) => assert_eq!(i.get::<String>().map(String::as_str), Some("42")),
        Ok(other) => panic!("not an info: {other:?}"),
        Err(_) => panic!("no info within {WAIT:?}"),
    }
}

/// What a process accepted reaches the others even when it stops right after: `flush`, then
/// gone (as a crash, with nothing more sent).
pub async fn flush_before_stopping(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let (mut on_b, _) = b.tap("last", None, 256);
    for i in 0..100 {
        a.publish("last", Frame::text(format!("m{i}")));
    }
    assert!(a.flush(WAIT).await, "the broker took everything");
    if nodes.clustered {
        a.halt();
    }
    for i in 0..100 {
        assert_eq!(text(&frame(&mut on_b).await), format!("m{i}"));
    }
}

/// A request addressed to a process ([`PubSub::node`]) reaches its handler and the answer comes
/// back to the asker, each to its own among many at once; a process not in the cluster is
/// unreachable, not waited on; one that stopped becomes unreachable. (In process the only
/// process is the asker itself.)
pub async fn requests_between_processes(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let answer: livehtml::pubsub::Handler =
        Arc::new(|body: Bytes| Box::pin(async move { Bytes::from([&b"re: "[..], &body].concat()) }));
    assert!(b.serve_requests(answer));
    let asks = (0..50).map(|i| {
        let a = a.clone();
        let to = b.node();
        tokio::spawn(async move { a.request(to, Bytes::from(format!("q{i}")), WAIT).await })
    });
    for (i, asked) in asks.collect::<Vec<_>>().into_iter().enumerate() {
        let answer = asked.await.unwrap().expect("answered");
        assert_eq!(&answer[..], format!("re: q{i}").as_bytes());
    }
    let nobody = a.node().wrapping_add(b.node()).wrapping_add(1);
    let started = Instant::now();
    assert_eq!(a.request(nobody, Bytes::from_static(b"?"), WAIT).await, Err(RelayError::Unreachable));
    assert!(started.elapsed() < Duration::from_secs(3), "not waited on: {:?}", started.elapsed());
    if nodes.clustered {
        b.halt();
        // Asked while the cluster still counts it: no answer in time. Once the node timeout
        // passed: unreachable.
        let to = b.node();
        let started = Instant::now();
        loop {
            let asked = a.request(to, Bytes::from_static(b"?"), Duration::from_millis(300)).await;
            match asked {
                Err(RelayError::Unreachable) => break,
                Err(RelayError::Timeout) => assert!(started.elapsed() < WAIT, "a stopped process still counts"),
                Ok(answer) => panic!("a stopped process answered {answer:?}"),
            }
        }
    }
}

/// A value one process keeps is taken by another, once: a second take finds nothing, a newer
/// keep replaces an older one, a removal removes, and a value whose time ran out is gone.
pub async fn kept_values(nodes: Nodes) {
    let (a, b) = (nodes.spawn().await, nodes.spawn().await);
    let key = |name: &str| format!("{name}-{:x}", a.node());
    a.keep(&key("one"), Some(Bytes::from_static(b"first")), WAIT);
    a.keep(&key("one"), Some(Bytes::from_static(b"second")), WAIT);
    a.keep(&key("gone"), Some(Bytes::from_static(b"x")), WAIT);
    a.keep(&key("gone"), None, WAIT);
    a.keep(&key("brief"), Some(Bytes::from_static(b"y")), Duration::from_millis(200));
    // 64 KiB: the size a live view's state may have.
    let large = Bytes::from(vec![b'v'; 64 * 1024]);
    a.keep(&key("large"), Some(large.clone()), WAIT);
    assert!(a.flush(WAIT).await, "the broker took the keeps");
    assert_eq!(b.take(&key("one")).await.as_deref(), Some(&b"second"[..]), "the newer value");
    assert_eq!(a.take(&key("one")).await, None, "taken once");
    assert_eq!(b.take(&key("gone")).await, None, "removed");
    assert_eq!(b.take(&key("large")).await, Some(large));
    assert_eq!(b.take(&key("never")).await, None);
    // The value's time to live is the point of it: waiting past it is what is tested.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.take(&key("brief")).await, None, "its time ran out");
}

/// One test per case of the suite for a back end: `suite!(make, clustered)`, `make` a
/// [`Make`]-returning expression, `clustered` whether its processes are separate.
#[macro_export]
macro_rules! suite {
    ($make:expr, $clustered:expr) => {
        $crate::suite!(@cases $make, $clustered;
            order_per_topic, positions_agree, history_bounds, replay_on_another_process,
            presence_across_processes, many_topics, large_payloads, unsubscribe, text_infos,
            flush_before_stopping, requests_between_processes, kept_values);
    };
    (@cases $make:expr, $clustered:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(make) = $make {
                    $crate::$case($crate::Nodes::new(make, $clustered, stringify!($case))).await;
                }
            }
        )*
    };
}
