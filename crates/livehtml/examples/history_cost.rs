//! What topic history costs in memory: resident memory before and after filling topics'
//! histories, per kept message and per topic (BENCHMARKS.md, "Topic history").
//!
//! `cargo run --release -p livehtml --example history_cost`

use livehtml::pubsub::History;
use livehtml::{Frame, PubSub};

/// Resident memory, in bytes (Linux: /proc/self/statm).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn main() {
    let pubsub = PubSub::default();
    // A chat line as the demo renders it (about 120 bytes of HTML).
    let line = concat!(
        r#"<li hx-swap-oob="beforeend:#messages">"#,
        "[12:00:00] <strong>Alice</strong>: hello, how is everyone today?</li>"
    );

    // Per message: one topic keeping 200,000 messages.
    const MESSAGES: usize = 200_000;
    pubsub.keep_history("one", History::new(MESSAGES));
    let before = rss();
    for _ in 0..MESSAGES {
        pubsub.publish("one", Frame::text(line));
    }
    let per_message = (rss() - before) as f64 / MESSAGES as f64;
    println!("kept message of {} bytes: {per_message:.0} bytes each ({MESSAGES} messages)", line.len());

    // Per topic: 100,000 topics with a history, one message each.
    const TOPICS: usize = 100_000;
    pubsub.keep_history("room:*", History::new(100));
    let before = rss();
    for i in 0..TOPICS {
        pubsub.position(&format!("room:{i}"));
    }
    let per_topic = (rss() - before) as f64 / TOPICS as f64;
    println!("topic with a history, empty: {per_topic:.0} bytes each ({TOPICS} topics)");
}
