//! Scraping at scale, a whole release agent (not criterion: it measures a process). A server in
//! this harness answers for N targets (distinct loopback addresses 127.0.x.y, keep-alive, each
//! exposing 1,000 series: 600 counters, 300 gauges, a histogram of 10 label sets, with HELP and
//! TYPE lines, values rising every 5 s); `sextant agent` scrapes them every 15 s into a blackhole
//! sink. After one interval of warm-up (every series new), it reports the agent's CPU as a share
//! of one core over the next intervals, its RSS, and RSS per active series.
//!
//! `cargo bench --bench scrape_e2e` (SEXTANT_BENCH_TARGETS, default 1000; SEXTANT_BENCH_SECONDS,
//! the measured window, default 60).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cpu_and_peak_rss, free_port, http_get, metric};

use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERIES_PER_TARGET: usize = 1000;

fn body(generation: u64) -> String {
    let mut out = String::with_capacity(80 * 1024);
    for f in 0..60 {
        out.push_str(&format!("# HELP app_requests_{f}_total Requests handled by handler group {f}.\n# TYPE app_requests_{f}_total counter\n"));
        for s in 0..10 {
            out.push_str(&format!(
                "app_requests_{f}_total{{method=\"GET\",code=\"{}\",path=\"/api/v1/items/{s}\"}} {}\n",
                200 + s % 3,
                generation * 7 + (f * 10 + s) as u64
            ));
        }
    }
    for f in 0..30 {
        out.push_str(&format!("# HELP app_queue_{f}_depth Items waiting in queue {f}.\n# TYPE app_queue_{f}_depth gauge\n"));
        for s in 0..10 {
            out.push_str(&format!(
                "app_queue_{f}_depth{{shard=\"{s}\"}} {}\n",
                (generation + s as u64) % 17
            ));
        }
    }
    out.push_str(
        "# HELP app_latency_seconds Request latency.\n# TYPE app_latency_seconds histogram\n",
    );
    for s in 0..10 {
        let mut cumulative = 0;
        for (i, le) in ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]
            .iter()
            .enumerate()
        {
            cumulative += generation + i as u64;
            out.push_str(&format!(
                "app_latency_seconds_bucket{{route=\"r{s}\",le=\"{le}\"}} {cumulative}\n"
            ));
        }
        out.push_str(&format!("app_latency_seconds_sum{{route=\"r{s}\"}} {}.25\napp_latency_seconds_count{{route=\"r{s}\"}} {cumulative}\n", generation * 3));
    }
    out
}

/// Answers every GET on `port` (any 127.x address) with the current body, keeping connections.
fn serve(port: u16) {
    let current = Arc::new(RwLock::new(Arc::new(body(0))));
    let updater = current.clone();
    std::thread::spawn(move || {
        for generation in 1.. {
            std::thread::sleep(Duration::from_secs(5));
            *updater.write().unwrap() = Arc::new(body(generation));
        }
    });
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await.unwrap();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let current = current.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut got = Vec::new();
                    loop {
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        got.clear();
                        let body = current.read().unwrap().clone();
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n", body.len());
                        if socket.write_all(head.as_bytes()).await.is_err() || socket.write_all(body.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let targets: usize = std::env::var("SEXTANT_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let window: u64 = std::env::var("SEXTANT_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let port = free_port();
    serve(port);
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let list: Vec<String> = (0..targets)
        .map(|i| format!("\"127.0.{}.{}:{port}\"", i / 250, i % 250 + 1))
        .collect();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {data}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\nagent:\n  sources:\n    scrape:\n      type: prometheus_scrape\n      scrape_interval: 15s\n      scrape_configs:\n        - job_name: app\n          static_configs: [{{ targets: [{}] }}]\n  sinks:\n    none: {{ type: blackhole, inputs: [scrape] }}\n",
            list.join(", "),
            data = dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("SEXTANT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Warm-up: one interval, in which every series is new.
    std::thread::sleep(Duration::from_secs(17));
    let (cpu0, _) = cpu_and_peak_rss(pid);
    let received = || {
        http_get(admin, "/metrics")
            .map(|m| {
                metric(
                    &m,
                    "sextant_component_received_events_total",
                    "component=\"scrape\"",
                )
            })
            .unwrap_or(0.0)
    };
    let scraped0 = received();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let (cpu1, hwm) = cpu_and_peak_rss(pid);
    let elapsed = start.elapsed().as_secs_f64();
    let scraped1 = received();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let _ = child.kill();
    let _ = child.wait();
    let series = (targets * SERIES_PER_TARGET) as f64;
    println!("scrape_e2e: {targets} targets x {SERIES_PER_TARGET} series every 15 s, measured over {elapsed:.0} s");
    println!(
        "  agent CPU: {:.1}% of one core ({:.2} CPU-s)",
        100.0 * (cpu1 - cpu0) / elapsed,
        cpu1 - cpu0
    );
    println!(
        "  points received: {:.0}/s",
        (scraped1 - scraped0) / elapsed
    );
    println!(
        "  RSS: {:.1} MiB now, {:.1} MiB peak; {:.0} bytes per active series (whole process)",
        rss_kib / 1024.0,
        hwm as f64 / 1024.0,
        rss_kib * 1024.0 / series
    );
}
