//! The livehtml demo: chat, echo, lobby and a raw echo endpoint.
//!
//! Run with: `cargo run --release` (at the workspace root), then open <http://127.0.0.1:3000>.

use std::io::IsTerminal;

use clap::Parser;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = livehtml_demo::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into());
    let log = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        livehtml_demo::LogFormat::Json => log.json().init(),
        // Colour codes only where a person reads them: not in a file, a pipe or journald.
        livehtml_demo::LogFormat::Text => log.with_ansi(std::io::stdout().is_terminal()).init(),
    }
    // Every connection is a file: the soft limit (often 1,024) is raised to the hard one.
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) => match rlimit::increase_nofile_limit(hard) {
            Ok(now) => tracing::info!(soft, hard, now, "open-file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit"),
        },
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
    // The local UTC offset can only be read soundly while the process has one thread.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    tokio::runtime::Runtime::new()?.block_on(livehtml_demo::run(args, offset))
}
