//! The suite in one process: every "process" of a case is the same pub/sub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use livehtml::PubSub;
use livehtml_conformance::Make;

fn make() -> Option<Make> {
    static ONE: OnceLock<Mutex<HashMap<String, PubSub>>> = OnceLock::new();
    Some(Arc::new(|namespace: String, _fresh: PubSub| {
        let pubsub = ONE.get_or_init(Default::default).lock().unwrap().entry(namespace).or_default().clone();
        Box::pin(async move { pubsub })
    }))
}

livehtml_conformance::suite!(make(), false);
