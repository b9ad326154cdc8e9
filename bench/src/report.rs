//! Results: one JSON object per run, and a table over many runs (median per peer).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dialect::Dialect;
use crate::run::Mode;
use crate::worker::Engine;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    /// Absent in reports from before it was recorded.
    #[serde(default)]
    pub(crate) p999: Option<u64>,
    pub(crate) max: u64,
}

/// One run of one mode against one peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) peer: String,
    pub(crate) mode: Mode,
    pub(crate) dialect: Dialect,
    pub(crate) clients: u32,
    pub(crate) messages: Option<u64>,
    pub(crate) deliveries: Option<u64>,
    pub(crate) seconds: Option<f64>,
    pub(crate) deliveries_per_sec: Option<f64>,
    /// Send-to-receipt latency, microseconds.
    pub(crate) latency_us: Option<Latency>,
    pub(crate) server_cpu_seconds: Option<f64>,
    pub(crate) server_cpu_us_per_delivery: Option<f64>,
    pub(crate) bytes_per_message: Option<f64>,
    pub(crate) rss_kb_per_conn: Option<f64>,
    /// Kernel TCP memory per connection, both ends (loopback).
    pub(crate) kernel_kb_per_conn: Option<f64>,
    pub(crate) held: Option<u64>,
    pub(crate) failed: Option<u64>,
    pub(crate) dropped: Option<u64>,
    /// Processes of the peer (a cluster), when more than one.
    #[serde(default)]
    pub(crate) nodes: Option<u32>,
    /// CPU the cluster's broker used during the measured part.
    #[serde(default)]
    pub(crate) broker_cpu_seconds: Option<f64>,
    /// The client engine (reports from before there were two are the mio engine's).
    #[serde(default)]
    pub(crate) engine: Engine,
    /// Worker processes the clients were spread over.
    #[serde(default)]
    pub(crate) workers: Option<u32>,
}

impl Report {
    pub(crate) fn new(peer: &str, mode: Mode, dialect: Dialect, clients: u32) -> Self {
        Self {
            peer: peer.to_owned(),
            mode,
            dialect,
            clients,
            messages: None,
            deliveries: None,
            seconds: None,
            deliveries_per_sec: None,
            latency_us: None,
            server_cpu_seconds: None,
            server_cpu_us_per_delivery: None,
            bytes_per_message: None,
            rss_kb_per_conn: None,
            kernel_kb_per_conn: None,
            held: None,
            failed: None,
            dropped: None,
            nodes: None,
            broker_cpu_seconds: None,
            engine: Engine::Mio,
            workers: None,
        }
    }

    /// One human-readable line.
    pub(crate) fn summary(&self) -> String {
        let mut s = format!("{} {:?} clients={} engine={:?}", self.peer, self.mode, self.clients, self.engine);
        if let Some(d) = self.deliveries_per_sec {
            s += &format!(" deliveries/s={d:.0}");
        }
        if let Some(l) = self.latency_us {
            s += &format!(" p50={}us p99={}us", l.p50, l.p99);
            if let Some(p999) = l.p999 {
                s += &format!(" p99.9={p999}us");
            }
            s += &format!(" max={}us", l.max);
        }
        if let Some(c) = self.server_cpu_us_per_delivery {
            s += &format!(" server-cpu/delivery={c:.2}us");
        }
        if let Some(b) = self.bytes_per_message {
            s += &format!(" bytes/msg={b:.0}");
        }
        if let Some(r) = self.rss_kb_per_conn {
            s += &format!(" rss/conn={r:.2}KB");
        }
        if let Some(k) = self.kernel_kb_per_conn {
            s += &format!(" kernel/conn={k:.2}KB");
        }
        if let Some(h) = self.held {
            s += &format!(" held={h}");
        }
        if let Some(f) = self.failed {
            s += &format!(" failed={f}");
        }
        if let Some(n) = self.nodes {
            s += &format!(" nodes={n}");
        }
        if let (Some(b), Some(c)) = (self.broker_cpu_seconds, self.server_cpu_seconds) {
            s += &format!(" broker-cpu={b:.2}s ({:.0}% of broker+server)", 100.0 * b / (b + c).max(1e-9));
        }
        s
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// Markdown tables, one per mode and client count, medians over runs, with ratios against
/// the best peer (livehtml and the bare baseline excluded from "best peer").
pub(crate) fn table(files: &[PathBuf]) -> Result<String, Box<dyn std::error::Error>> {
    // One table per mode, clients, messages of a burst, engine and workers: runs that differ in
    // any of these are not medians of one another.
    type Key = (String, u32, Option<u64>, Engine, Option<u32>);
    let mut groups: BTreeMap<Key, BTreeMap<String, Vec<Report>>> = BTreeMap::new();
    for f in files {
        let r: Report = serde_json::from_slice(&std::fs::read(f)?)?;
        let mode = format!("{:?}", r.mode).to_lowercase();
        // SSE runs get tables of their own.
        let mode = if r.dialect == crate::dialect::Dialect::Sse { format!("sse {mode}") } else { mode };
        let burst = (r.mode == Mode::Burst).then_some(r.messages).flatten();
        groups
            .entry((mode, r.clients, burst, r.engine, r.workers))
            .or_default()
            .entry(r.peer.clone())
            .or_default()
            .push(r);
    }
    let ours = |p: &str| p == "livehtml" || p.starts_with("bare");
    let mut out = String::new();
    for ((mode, clients, burst, engine, workers), peers) in groups {
        let m = |rs: &[Report], f: fn(&Report) -> Option<f64>| median(rs.iter().filter_map(f).collect());
        let burst = burst.map_or(String::new(), |n| format!(" × {n} messages"));
        let engine = format!("{engine:?}").to_lowercase();
        let workers = workers.map_or(String::new(), |n| format!(" in {n} worker{}", if n == 1 { "" } else { "s" }));
        out += &format!("\n### {mode}, {clients} clients{burst}, {engine} engine{workers}\n\n");
        match mode.trim_start_matches("sse ") {
            "closed" | "burst" => {
                let best = peers
                    .iter()
                    .filter(|(p, _)| !ours(p))
                    .filter_map(|(p, rs)| m(rs, |r| r.deliveries_per_sec).map(|d| (p.clone(), d)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                out += "| peer | runs | deliveries/s | vs best peer | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/delivery | bytes/msg |\n";
                out += "|---|---|---|---|---|---|---|---|---|---|\n";
                for (p, rs) in &peers {
                    let d = m(rs, |r| r.deliveries_per_sec);
                    let ratio = match (&best, d) {
                        (Some((bp, bd)), Some(d)) => format!("{:.2}× {bp}", d / bd),
                        _ => "–".into(),
                    };
                    // Milliseconds; a quantile older reports lack is left out.
                    let lat = |f: fn(&Latency) -> Option<u64>| {
                        median(
                            rs.iter()
                                .filter_map(|r| r.latency_us.as_ref().and_then(f))
                                .map(|v| v as f64 / 1000.0)
                                .collect(),
                        )
                    };
                    out += &format!(
                        "| {p} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |\n",
                        rs.len(),
                        cell(d, 0),
                        cell(lat(|l| Some(l.p50)), 2),
                        cell(lat(|l| Some(l.p99)), 2),
                        cell(lat(|l| l.p999), 2),
                        cell(lat(|l| Some(l.max)), 2),
                        cell(m(rs, |r| r.server_cpu_us_per_delivery), 2),
                        cell(m(rs, |r| r.bytes_per_message), 0),
                    );
                }
            }
            "idle" => {
                out += "| peer | runs | RSS KB/conn | kernel TCP KB/conn (both ends) |\n|---|---|---|---|\n";
                for (p, rs) in &peers {
                    out += &format!(
                        "| {p} | {} | {} | {} |\n",
                        rs.len(),
                        cell(m(rs, |r| r.rss_kb_per_conn), 2),
                        cell(m(rs, |r| r.kernel_kb_per_conn), 2)
                    );
                }
            }
            _ => {
                out += "| peer | runs | held (answering pings) | failed to connect | RSS KB/conn |\n|---|---|---|---|---|\n";
                for (p, rs) in &peers {
                    out += &format!(
                        "| {p} | {} | {} | {} | {} |\n",
                        rs.len(),
                        cell(m(rs, |r| r.held.map(|h| h as f64)), 0),
                        cell(m(rs, |r| r.failed.map(|h| h as f64)), 0),
                        cell(m(rs, |r| r.rss_kb_per_conn), 2)
                    );
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(peer: &str, messages: u64, engine: Engine, workers: u32, rate: f64) -> Report {
        let mut r = Report::new(peer, Mode::Burst, Dialect::Json, 1000);
        r.messages = Some(messages);
        r.engine = engine;
        r.workers = Some(workers);
        r.deliveries_per_sec = Some(rate);
        r.latency_us = Some(Latency { p50: 1000, p99: 2000, p999: Some(rate as u64 / 1000), max: 9000 });
        r
    }

    #[test]
    fn runs_of_other_lengths_engines_or_workers_get_tables_of_their_own() {
        let dir = std::env::temp_dir().join(format!("lhbench-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let reports = [
            burst("bun", 1000, Engine::Mio, 2, 3.0e6),
            burst("bun", 1000, Engine::Mio, 2, 5.0e6),
            burst("bun", 200, Engine::Mio, 2, 1.0e6),
            burst("bun", 1000, Engine::Tokio, 2, 2.0e6),
            burst("bun", 1000, Engine::Tokio, 1, 1.5e6),
        ];
        let files: Vec<PathBuf> = reports
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let f = dir.join(format!("{i}.json"));
                std::fs::write(&f, serde_json::to_vec(r).unwrap()).unwrap();
                f
            })
            .collect();
        let out = table(&files).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(out.matches("### ").count(), 4, "{out}");
        assert!(out.contains("### burst, 1000 clients × 1000 messages, mio engine in 2 workers"), "{out}");
        assert!(out.contains("### burst, 1000 clients × 200 messages, mio engine in 2 workers"), "{out}");
        assert!(out.contains("### burst, 1000 clients × 1000 messages, tokio engine in 1 worker"), "{out}");
        // The median of the two mio runs of 1,000 messages.
        assert!(out.contains("| bun | 2 | 4000000 |"), "{out}");
        // p99.9 is a median of its own (3 and 5 ms here).
        assert!(out.contains("| 1.00 | 2.00 | 4.00 | 9.00 |"), "{out}");
    }
}
