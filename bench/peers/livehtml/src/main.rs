//! Run with: `PORT=8080 cargo run --release -p peer-livehtml`

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let listener = livehtml::Listener::bind(("127.0.0.1", port)).await?;
    let (live, app) = peer_livehtml::app();
    let app = app.into_make_service_with_connect_info::<livehtml::Peer>();
    axum::serve(listener, app).with_graceful_shutdown(live.graceful_shutdown(livehtml::shutdown_signal())).await?;
    live.drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}
