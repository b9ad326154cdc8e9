//! Broker faults (`livehtml_conformance::faults`) on Redis: the shared one cut off through a
//! proxy, and a private `redis-server` (no persistence, a port of its own) that restarts empty.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use livehtml::PubSub;
use livehtml_conformance::faults::{self, Connect};
use livehtml_redis::Redis;

fn connect() -> Connect {
    Arc::new(|address: SocketAddr, namespace: String, pubsub: PubSub| {
        Box::pin(async move {
            pubsub.connect(Redis::new(&format!("redis://{address}"), &namespace).unwrap()).await.expect("connect");
            pubsub
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_loses_nothing() {
    let address: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    if std::net::TcpStream::connect(address).is_err() {
        livehtml_conformance::missing(&format!("no Redis at {address}"), "start `redis-server`");
        return;
    }
    faults::an_unreachable_broker_loses_nothing(address, connect()).await;
}

/// A private `redis-server` without persistence; killed when dropped.
fn start(port: u16) -> Option<faults::Running> {
    let mut command = Command::new("redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    faults::private(command, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_resyncs_pages() {
    faults::a_broker_that_lost_its_data_resyncs_pages(start, connect()).await;
}
