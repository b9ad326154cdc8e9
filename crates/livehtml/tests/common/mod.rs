//! What the integration tests share.

use std::time::Duration;

use livehtml::Live;

/// How long a test waits for anything.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Waits until `room` has `n` subscribers (nothing else tells a test when a connection's
/// session has joined its topic or left it).
pub(crate) async fn until_subscribed(live: &Live, n: usize) {
    tokio::time::timeout(WAIT, async {
        while live.pubsub().subscriber_count("room") != n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("subscribers as expected");
}
