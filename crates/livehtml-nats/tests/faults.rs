//! Broker faults (`livehtml_conformance::faults`) on NATS: the shared one cut off through a
//! proxy, and a private `nats-server -js` (a port of its own) restarted on an empty store.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
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
        assert!(std::env::var_os("LIVEHTML_REQUIRE_ALL").is_none(), "no NATS at {address}");
        eprintln!("SKIPPED: no NATS at {address}");
        return;
    }
    faults::an_unreachable_broker_loses_nothing(address, connect()).await;
}

/// A private `nats-server` with JetStream, storing in a directory of its own; killed (and its
/// store removed) when dropped.
struct Private {
    child: Child,
    _store: tempfile::TempDir,
}

impl Private {
    fn start(port: u16) -> Option<Self> {
        let store = tempfile::tempdir().unwrap();
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(store.path());
        faults::private(command, port).map(|child| Self { child, _store: store })
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_resyncs_pages() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(first) = Private::start(port) else { return };
    let mut again = None;
    let restart = || {
        drop(first);
        again = Private::start(port);
    };
    faults::a_broker_that_lost_its_data_resyncs_pages(SocketAddr::from(([127, 0, 0, 1], port)), connect(), restart)
        .await;
}
