//! Run with: `PORT=8080 cargo run --release -p peer-livehtml`
//!
//! With `LIVEHTML_PUBSUB=redis://…` or `nats://…` it is one process of a cluster on that broker
//! (namespace `LIVEHTML_PUBSUB_NAMESPACE`, default `lhbench`): lhbench's `--nodes` runs several.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let (live, app) = peer_livehtml::app();
    if let Ok(url) = std::env::var("LIVEHTML_PUBSUB") {
        let namespace = std::env::var("LIVEHTML_PUBSUB_NAMESPACE").unwrap_or_else(|_| "lhbench".into());
        if url.starts_with("nats://") {
            live.pubsub().connect(livehtml_nats::Nats::new(&url, &namespace)).await?;
        } else {
            live.pubsub().connect(livehtml_redis::Redis::new(&url, &namespace)?).await?;
        }
    }
    let listener = livehtml::Listener::bind(("127.0.0.1", port)).await?.connection_rate(0, 0);
    livehtml::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await?;
    live.drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}
