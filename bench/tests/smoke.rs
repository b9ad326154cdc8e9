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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_runs_against_livehtml() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (_live, app) = peer_livehtml::app();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for mode in ["closed", "burst"] {
        let r = lhbench(url.clone(), &["--mode", mode, "--clients", "20", "--messages", "10"]).await;
        assert_eq!(r["deliveries"], 200, "{mode}: every client got every message: {r}");
        assert_eq!(r["failed"], 0);
        assert!(r["deliveries_per_sec"].as_f64().unwrap() > 0.0);
        let lat = &r["latency_us"];
        assert!(lat["p50"].as_u64().unwrap() <= lat["p99"].as_u64().unwrap());
        assert!(r["bytes_per_message"].as_f64().unwrap() > 50.0, "an HTML fragment per delivery: {r}");
    }
    let r = lhbench(url.clone(), &["--mode", "idle", "--clients", "50"]).await;
    assert_eq!(r["held"], 50);
    assert!(r["rss_kb_per_conn"].is_number() && r["kernel_kb_per_conn"].is_number());
    let r = lhbench(url, &["--mode", "capacity", "--clients", "50", "--rounds", "1"]).await;
    assert_eq!(r["held"], 50, "all connections answered the ping: {r}");
}
