//! Smoke run of the load generator: every mode, a few clients, against livehtml in process.
//! It proves the harness works; how fast is the benchmark's job (bench/compare.sh), not a test's.

use std::process::Command;

use serde_json::Value;

async fn lhbench(url: String, args: &[&str]) -> Value {
    let pid = std::process::id().to_string();
    let output = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        move || {
            Command::new(env!("CARGO_BIN_EXE_lhbench"))
                .args([
                    "run",
                    "--name",
                    "livehtml",
                    "--dialect",
                    "htmx",
                    "--timeout",
                    "30",
                    "--url",
                    &url,
                    "--pid",
                    &pid,
                ])
                .args(&args)
                .output()
                .expect("lhbench runs")
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "lhbench failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("a JSON report on stdout")
}

/// The bench peer served in process on a free port: its base URL (and the `Live` to keep).
async fn peer() -> (String, Box<dyn std::any::Any>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (live, app) = peer_livehtml::app();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, Box::new(live))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_runs_against_livehtml() {
    let (url, _live) = peer().await;

    for (mode, engine) in [("closed", "mio"), ("burst", "mio"), ("closed", "tokio"), ("burst", "tokio")] {
        let r =
            lhbench(url.clone(), &["--mode", mode, "--engine", engine, "--clients", "20", "--messages", "10"]).await;
        assert_eq!(r["engine"], engine);
        assert_eq!(r["deliveries"], 200, "{mode} ({engine}): every client got every message: {r}");
        assert_eq!(r["failed"], 0);
        assert!(r["deliveries_per_sec"].as_f64().unwrap() > 0.0);
        let lat = &r["latency_us"];
        assert!(lat["p50"].as_u64().unwrap() <= lat["p99"].as_u64().unwrap());
        assert!(lat["p99"].as_u64().unwrap() <= lat["p999"].as_u64().unwrap(), "{r}");
        assert!(r["bytes_per_message"].as_f64().unwrap() > 50.0, "an HTML fragment per delivery: {r}");
    }
    let r = lhbench(url.clone(), &["--mode", "idle", "--clients", "50"]).await;
    assert_eq!(r["held"], 50);
    assert!(r["rss_kb_per_conn"].is_number() && r["kernel_kb_per_conn"].is_number());
    for engine in ["mio", "tokio"] {
        let r =
            lhbench(url.clone(), &["--mode", "capacity", "--engine", engine, "--clients", "50", "--rounds", "1"]).await;
        assert_eq!(r["held"], 50, "all connections answered the ping ({engine}): {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_mode_runs_against_livehtml() {
    let (url, _live) = peer().await;

    let pid = std::process::id().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lhbench"))
            .args(["views", "--name", "livehtml", "--clients", "5", "--seconds", "1", "--warmup", "2"])
            .args(["--by-second", "--timeout", "30", "--url", &url, "--pid", &pid])
            .output()
            .expect("lhbench runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lhbench failed: {stderr}");
    let r: Value = serde_json::from_slice(&output.stdout).expect("a JSON report on stdout");
    assert!(r["events"].as_u64().unwrap() > 5, "every page went round its loop: {r}");
    let (p50, p99) = (r["p50_ms"].as_f64().unwrap(), r["p99_ms"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= r["p999_ms"].as_f64().unwrap(), "{r}");
    // The counter's region and the event's reply: an update, not the page.
    let bytes = r["bytes_per_event"].as_f64().unwrap();
    assert!((30.0..100.0).contains(&bytes), "{r}");
    assert!(r["rss_kb_per_view"].is_number() && r["rss_kb_per_busy_view"].is_number());
    assert!(stderr.contains("second   0:"), "round trips by second: {stderr}");
}
