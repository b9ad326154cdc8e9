//! The conformance suite against a real NATS with JetStream (`LIVEHTML_NATS_URL`, default
//! `nats://127.0.0.1:4222`), every case in a namespace (stream) of its own.

use std::sync::Arc;

use livehtml::PubSub;
use livehtml_conformance::Make;
use livehtml_nats::Nats;

fn url() -> String {
    std::env::var("LIVEHTML_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `None` when no NATS answers and the run allows skipping (else the case fails): see
/// [`livehtml_conformance::missing`].
fn make() -> Option<Make> {
    let address = url().trim_start_matches("nats://").to_owned();
    if std::net::TcpStream::connect(&address).is_err() {
        livehtml_conformance::missing(&format!("no NATS at {address}"), "start `nats-server -js`");
        return None;
    }
    Some(Arc::new(|namespace: String, pubsub: PubSub| {
        Box::pin(async move {
            pubsub.connect(Nats::new(&url(), &namespace)).await.expect("connect to NATS");
            pubsub
        })
    }))
}

livehtml_conformance::suite!(make(), true);

/// A message over the server's `max_payload` is dropped (and logged), and what follows it
/// still flows: it never holds up the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_the_server_holds_nothing_up() {
    let Some(make) = make() else { return };
    let ns = format!("lhbig-{}", std::process::id());
    let pubsub = make(ns, PubSub::default()).await;
    let (mut tap, _) = pubsub.tap("t", None, 8);
    pubsub.publish("t", livehtml::Frame::text("x".repeat(2 << 20)));
    pubsub.publish("t", livehtml::Frame::text("after"));
    let after = livehtml_conformance::frame(&mut tap).await;
    assert_eq!(after.as_text(), Some("after"));
}

/// Test runs leave a stream each on the shared server: those of runs over ten minutes old go.
#[tokio::test]
async fn streams_of_old_test_runs_are_removed() {
    use futures_util::StreamExt;
    if make().is_none() {
        return;
    }
    let client = async_nats::connect(url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut names = jetstream.stream_names();
    let mut old = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if !(name.starts_with("LH_lhtest-")
            || name.starts_with("LH_lhbig-")
            || name.starts_with("LH_lhfault-")
            || name.starts_with("LH_lhdemo-"))
        {
            continue;
        }
        let Ok(mut stream) = jetstream.get_stream(&name).await else { continue };
        let Ok(info) = stream.info().await else { continue };
        let age = time::OffsetDateTime::now_utc() - info.created;
        if age > time::Duration::minutes(10) {
            old.push(name);
        }
    }
    for name in old {
        let _ = jetstream.delete_stream(&name).await;
    }
}
