//! Values kept for any process of a cluster to take: what a process hands over to whichever
//! process a page comes back to (a live view's state while its page is away, or after its
//! process died). In a cluster they live in the broker ([`Outgoing::Keep`], written in order
//! by the queue to the broker, and [`Backend::take`](super::Backend::take)); alone, in this
//! process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::PubSub;
use super::backend::Outgoing;

/// The values a process alone keeps, with when each expires.
#[derive(Debug, Default)]
pub(super) struct Kept(Mutex<HashMap<String, (Bytes, Instant)>>);

impl Kept {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Bytes, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PubSub {
    /// Keeps `value` under `key` for `ttl` (`None`: removes it), for any process of the cluster
    /// to [take](PubSub::take). Never waits: in a cluster it is queued for the broker behind
    /// everything this process published before it (and refused, logged, like a publish, when
    /// that queue is full); alone, it is kept here.
    pub fn keep(&self, key: &str, value: Option<Bytes>, ttl: Duration) {
        if let Some(cluster) = self.inner.cluster.get() {
            cluster.send(Outgoing::Keep { key: key.to_owned(), value, ttl });
            return;
        }
        let mut kept = self.inner.kept.map();
        let now = Instant::now();
        kept.retain(|_, (_, until)| *until > now);
        match value {
            Some(value) => kept.insert(key.to_owned(), (value, now + ttl)),
            None => kept.remove(key),
        };
    }

    /// Takes what is kept under `key`: it is removed, so one process gets it. `None` when
    /// nothing is kept, its time ran out, or the broker could not be asked (logged).
    pub async fn take(&self, key: &str) -> Option<Bytes> {
        let Some(cluster) = self.inner.cluster.get() else {
            let (value, until) = self.inner.kept.map().remove(key)?;
            return (until > Instant::now()).then_some(value);
        };
        match cluster.backend.take(key).await {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(error = %e, key, "could not take a kept value from the broker");
                None
            }
        }
    }

    /// Whether this pub/sub is one process of a cluster (connected to a back end).
    pub fn is_clustered(&self) -> bool {
        self.inner.cluster.get().is_some()
    }
}
