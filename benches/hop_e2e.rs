//! Agent -> collector on loopback, two release `sextant` processes (not criterion: it measures
//! whole processes). The agent tails a file of ~300-byte log lines (file source) and sends OTLP/HTTP
//! to the collector (otlp source -> blackhole). Reported per variant: events/s per agent
//! CPU-second and per collector CPU-second, wire bytes per event, and the ratio of log bytes to
//! wire bytes.
//!
//! `cargo bench --bench hop_e2e` (SEXTANT_BENCH_MIB sets the data size, default 256). Variants:
//! zstd, gzip, zstd with the agent's disk buffer on (fsync at most every second), and zstd with
//! the collector's sink on a disk buffer (its answers then wait for an fsync, not the sink), and
//! zstd with the agent under a 64 MiB memory budget (`memory: { limit: 64MiB }`), and zstd with
//! lines that are flat JSON objects the agent parses into attributes (`parse_json: true`);
//! SEXTANT_BENCH_ONLY=<variant> runs one, SEXTANT_BENCH_SINK_EXTRA adds YAML to the agent's sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_and_peak_rss, free_port, http_get, metric};

/// Lines of ~300 bytes with the variety of real logs (ids, numbers, paths), so that compression
/// ratios are not flattered by repetition: a per-line random trace id, user, path and timings.
/// With `json`, the same fields as one flat JSON object per line, as structured loggers write.
fn write_lines(path: &Path, total_bytes: usize, json: bool) -> (u64, usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut written, mut i) = (0usize, 0usize);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const VERBS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const LEVELS: [&str; 4] = ["INFO ", "INFO ", "WARN ", "DEBUG"];
    while written < total_bytes {
        let (a, b, c) = (next(), next(), next());
        let (min, sec, ms) = ((i / 60_000) % 60, (i / 1000) % 60, i % 1000);
        let (level, thread, verb) = (LEVELS[(a % 4) as usize], b % 32, VERBS[(c % 4) as usize]);
        let (order, item, status) = (
            a % 1_000_000,
            b % 1000,
            [200, 200, 200, 201, 404, 500][(c % 6) as usize],
        );
        let (duration, size, user) = (a % 5000, b % 100_000, c % 1_000_000);
        let line = if json {
            let level = level.trim_end();
            format!(
                "{{\"ts\":\"2024-05-01T12:{min:02}:{sec:02}.{ms:03}Z\",\"level\":\"{level}\",\"thread\":\"http-nio-8080-exec-{thread}\",\"logger\":\"c.e.orders.OrderController\",\"msg\":\"{verb} /api/v1/orders/{order}/items/{item}\",\"status\":{status},\"duration_ms\":{duration},\"bytes\":{size},\"user\":\"u-{user:06}\",\"trace_id\":\"{a:016x}{b:016x}\",\"span_id\":\"{c:016x}\"}}\n"
            )
        } else {
            format!(
                "2024-05-01T12:{min:02}:{sec:02}.{ms:03}Z {level} [http-nio-8080-exec-{thread}] c.e.orders.OrderController - {verb} /api/v1/orders/{order}/items/{item} status={status} duration_ms={duration} bytes={size} user=u-{user:06} trace_id={a:016x}{b:016x} span_id={c:016x}\n"
            )
        };
        w.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    (written as u64, i)
}

fn spawn(role: &str, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([role, "--config", config.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One variant: the agent sink's compression, disk buffers on either side, the agent's
/// `memory:` settings (empty: none), and whether the lines are JSON messages the agent parses.
struct Variant {
    name: &'static str,
    compression: &'static str,
    json: bool,
    disk: bool,
    collector_disk: bool,
    memory: &'static str,
}

fn run(v: &Variant, mib: usize) {
    let Variant {
        name,
        compression,
        disk,
        collector_disk,
        memory,
        json,
    } = *v;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let (bytes, lines) = write_lines(&dir.path().join("logs/app.log"), mib << 20, json);
    let (otlp, agent_admin, collector_admin) = (free_port(), free_port(), free_port());
    let buffer = if disk {
        "queue: { disk: { max_bytes: 4GiB, fsync_interval: 1s } }".to_owned()
    } else {
        // To try other sink settings: e.g. "batch: { max_bytes: 1MiB }".
        std::env::var("SEXTANT_BENCH_SINK_EXTRA").unwrap_or_default()
    };
    let agent_cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &agent_cfg,
        format!(
            "data_dir: {d}/agent-data\nadmin: {{ address: \"127.0.0.1:{agent_admin}\" }}\nagent:\n  sources:\n    app:\n      type: file\n      include: [\"{d}/logs/*.log\"]\n      parse_json: {json}\n      tail: {{ glob_interval: 200ms }}\n  sinks:\n    to_collector:\n      type: otlp\n      inputs: [app]\n      endpoint: http://127.0.0.1:{otlp}\n      compression: {compression}\n      {buffer}\n{memory}",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let collector_cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &collector_cfg,
        format!(
            "data_dir: {d}/collector-data\nadmin: {{ address: \"127.0.0.1:{collector_admin}\" }}\ncollector:\n  sources:\n    otlp:\n      type: otlp\n      address: 127.0.0.1:{otlp}\n  sinks:\n    null:\n      type: blackhole\n      inputs: [otlp]\n      {collector_buffer}\n",
            d = dir.path().display(),
            collector_buffer = if collector_disk {
                "queue: { disk: { max_bytes: 4GiB } }"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    let mut collector = spawn("collector", &collector_cfg);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut agent = spawn("agent", &agent_cfg);
    let deadline = Instant::now() + Duration::from_secs(600);
    let events = loop {
        let m = http_get(collector_admin, "/metrics").unwrap_or_default();
        let n = metric(
            &m,
            "sextant_component_sent_events_total",
            "component=\"null\"",
        );
        if n as usize >= lines {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "timed out at {n} of {lines} events"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed().as_secs_f64();
    let (agent_cpu, agent_rss) = cpu_and_peak_rss(agent.id());
    let (collector_cpu, collector_rss) = cpu_and_peak_rss(collector.id());
    let m = http_get(agent_admin, "/metrics").unwrap_or_default();
    let wire = metric(
        &m,
        "sextant_component_sent_bytes_total",
        "component=\"to_collector\"",
    );
    for c in [&mut agent, &mut collector] {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!(
        "hop_e2e {name}: events={events:.0} log_bytes={bytes} wall={wall:.2}s {:.0}events/s \
         agent_cpu={agent_cpu:.2}s ({:.0} events per agent CPU-s) collector_cpu={collector_cpu:.2}s \
         ({:.0} events per collector CPU-s) wire_bytes_per_event={:.1} log_to_wire_ratio={:.2} \
         agent_peak_rss={:.1}MiB collector_peak_rss={:.1}MiB",
        events / wall,
        events / agent_cpu,
        events / collector_cpu,
        wire / events,
        bytes as f64 / wire,
        agent_rss as f64 / 1024.0,
        collector_rss as f64 / 1024.0,
    );
    assert_eq!(events as usize, lines, "every line arrived once");
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("SEXTANT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 256 } else { 2 });
    let only = std::env::var("SEXTANT_BENCH_ONLY").unwrap_or_default();
    let plain = Variant {
        name: "zstd",
        compression: "zstd",
        json: false,
        disk: false,
        collector_disk: false,
        memory: "",
    };
    for v in [
        Variant { ..plain },
        Variant {
            name: "zstd+json",
            json: true,
            ..plain
        },
        Variant {
            name: "gzip",
            compression: "gzip",
            ..plain
        },
        Variant {
            name: "zstd+disk_buffer",
            disk: true,
            ..plain
        },
        Variant {
            name: "zstd+collector_disk_buffer",
            collector_disk: true,
            ..plain
        },
        Variant {
            name: "zstd+memory_limit_64MiB",
            memory: "memory: { limit: 64MiB }\n",
            ..plain
        },
    ] {
        if only.is_empty() || only == v.name {
            run(&v, mib);
        }
    }
}
