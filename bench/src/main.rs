//! `lhbench`: the load generator of livehtml's benchmarks.
//!
//! ```text
//! lhbench run --mode burst --name node-ws --dialect json --clients 1000 --messages 1000 -- node server.mjs
//! lhbench table results/*.json
//! lhbench soak --clients 2000 --duration-secs 600 -- target/release/peer-livehtml
//! lhbench views --name livehtml --clients 1000 --seconds 10 -- target/release/peer-livehtml
//! ```
//!
//! Loopback only: it connects to 127.0.0.1, and every loop is bounded in count and time.

mod dialect;
mod proc;
mod report;
mod run;
mod soak;
mod sse_body;
mod tally;
mod tokio_worker;
mod views;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator for live HTML servers")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one mode against one peer and print its report.
    Run(run::RunArgs),
    /// Print markdown tables (medians per peer) from JSON reports.
    Table {
        /// Report files written by `run --out`.
        files: Vec<PathBuf>,
    },
    /// Everything at once for a bounded time (stable clients, bursts, churn, slow readers, bad
    /// input): the peer's memory and descriptors over time, and messages lost.
    Soak(soak::SoakArgs),
    /// Live views under load: pages each joined to a view, sending events in a closed loop.
    Views(views::ViewsArgs),
    /// Internal: a worker process holding a share of the clients.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Cmd::Worker(args) => worker::run(args),
        Cmd::Table { files } => {
            print!("{}", report::table(&files)?);
            Ok(())
        }
        Cmd::Views(args) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(views::run(args))
        }
        Cmd::Soak(args) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(soak::run(args))
        }
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let report = rt.block_on(run::run(args))?;
            eprintln!("{}", report.summary());
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
