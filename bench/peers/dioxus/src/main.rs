//! Run with: `PORT=8080 cargo run --release --manifest-path bench/peers/dioxus/Cargo.toml`
//!
//! The peer of `lhbench views --kind dioxus`: Dioxus LiveView's counter on axum, as its
//! axum example builds it (the page at `/`, the socket at `/ws`).

use axum::Router;
use dioxus::prelude::*;
use dioxus_liveview::LiveviewRouter;

fn app() -> Element {
    let mut count = use_signal(|| 0u64);
    rsx! {
        p { "Count: {count}" }
        button { onclick: move |_| count += 1, "+1" }
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let app = Router::new().with_app("/", app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    axum::serve(listener, app.into_make_service()).await.unwrap();
}
