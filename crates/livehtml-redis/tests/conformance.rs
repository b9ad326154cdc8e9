//! The conformance suite against a real Redis (`LIVEHTML_REDIS_URL`, default
//! `redis://127.0.0.1:6379`), every case in a namespace of its own.

use std::sync::Arc;

use livehtml::PubSub;
use livehtml_conformance::Make;
use livehtml_redis::Redis;

fn url() -> String {
    std::env::var("LIVEHTML_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `None` when no Redis answers and the run allows skipping (else the case fails): see
/// [`livehtml_conformance::missing`].
fn make() -> Option<Make> {
    let address = url().trim_start_matches("redis://").split('/').next().unwrap_or_default().to_owned();
    if std::net::TcpStream::connect(&address).is_err() {
        livehtml_conformance::missing(&format!("no Redis at {address}"), "start `redis-server`");
        return None;
    }
    Some(Arc::new(|namespace: String, pubsub: PubSub| {
        Box::pin(async move {
            pubsub.connect(Redis::new(&url(), &namespace).unwrap()).await.expect("connect to Redis");
            pubsub
        })
    }))
}

livehtml_conformance::suite!(make(), true);
