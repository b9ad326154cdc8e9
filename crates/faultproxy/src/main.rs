//! The proxy as a process, for tests in other languages: `faultproxy --upstream <host:port>`
//! prints `listening on <addr>` and `control on <addr>`; the control endpoint takes
//! `POST /cut` (every connection), `POST /cut/<id>`, `POST /refuse`, `POST /accept` and
//! `GET /connections` (a JSON array of ids).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use clap::Parser;
use faultproxy::Proxy;

#[derive(Parser)]
struct Args {
    /// The server to forward to.
    #[arg(long)]
    upstream: SocketAddr,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let proxy = Proxy::start(args.upstream).await?;
    let control = Router::new()
        .route("/cut", post(|State(p): State<Proxy>| async move { p.cut_all().to_string() }))
        .route("/cut/{id}", post(|State(p): State<Proxy>, Path(id): Path<u64>| async move { p.cut(id).to_string() }))
        .route("/refuse", post(|State(p): State<Proxy>| async move { p.refuse(true) }))
        .route("/accept", post(|State(p): State<Proxy>| async move { p.refuse(false) }))
        .route(
            "/connections",
            get(|State(p): State<Proxy>| async move { serde_json::json!(p.connections()).to_string() }),
        )
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", proxy.addr());
    println!("control on {}", listener.local_addr()?);
    axum::serve(listener, control).await
}
