//! Broker faults (`livehtml_conformance::faults`) on NATS: the shared one cut off through a
//! proxy, and a private `nats-server -js` (a port of its own) restarted on an empty store.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use livehtml::PubSub;
use livehtml_conformance::faults::{self, Connect};
use livehtml_nats::Nats;

fn connect() -> Connect {
    Arc::new(|address: SocketAddr, namespace: String, pubsub: PubSub| {
        Box::pin(async move {
            pubsub.connect(Nats::new(&format!("nats://{address}"), &namespace)).await.expect("connect");
            pubsub
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_loses_nothing() {
    let address: SocketAddr = "127.0.0.1:4222".parse().unwrap();
    if std::net::TcpStream::connect(address).is_err() {
        livehtml_conformance::missing(&format!("no NATS at {address}"), "start `nats-server -js`");
        return;
    }
    faults::an_unreachable_broker_loses_nothing(address, connect()).await;
}

/// A private `nats-server` with JetStream, storing in a directory of its own; killed (then its
/// store removed: the tuple drops in order) when dropped.
fn start(port: u16) -> Option<(faults::Running, tempfile::TempDir)> {
    let store = tempfile::tempdir().unwrap();
    let mut command = Command::new("nats-server");
    command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(store.path());
    faults::private(command, port).map(|running| (running, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_resyncs_pages() {
    faults::a_broker_that_lost_its_data_resyncs_pages(start, connect()).await;
}
