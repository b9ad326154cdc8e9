//! The livehtml demo: chat, echo, lobby and a raw echo endpoint.
//!
//! Run with: `cargo run --release` (at the workspace root), then open <http://127.0.0.1:3000>.

use clap::Parser;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let args = livehtml_demo::Args::parse();
    // The local UTC offset can only be read soundly while the process has one thread.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    tokio::runtime::Runtime::new()?.block_on(livehtml_demo::run(args, offset))
}
