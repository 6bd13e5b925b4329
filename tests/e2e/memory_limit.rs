//! The memory soft limit with a real process: above it, the OTLP receiver answers 503 with
//! Retry-After and file sources read nothing, so the data stays with its sender or on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::hop::*;
use crate::common::*;

#[test]
fn above_the_soft_limit_the_receiver_answers_retry_later_and_files_wait() {
    let hop = Hop::new();
    append_lines(&hop.app_log, 0..100);
    let config = hop.path("sextant.yaml");
    // Both roles in one process, with a soft limit below what any process uses.
    let agent = std::fs::read_to_string(hop.agent(hop.otlp, REQUEST)).unwrap();
    let collector = std::fs::read_to_string(hop.collector_to_files()).unwrap();
    let collector_part = collector
        .split_once("collector:\n")
        .map(|(_, rest)| format!("collector:\n{rest}"))
        .unwrap();
    std::fs::write(
        &config,
        format!("{agent}{collector_part}memory: {{ soft_limit: 1MiB }}\n"),
    )
    .unwrap();
    let mut sextant = start_sextant("run", &config, &hop.path("sextant.log"));
    let metrics_url = format!("http://127.0.0.1:{}/metrics", hop.agent_admin);
    assert!(
        eventually(Duration::from_secs(20), || http_get(&metrics_url)
            .is_some_and(|(_, m)| metric_sum(
                &m,
                "sextant_memory_over_soft_limit",
                &[]
            ) == 1.0)),
        "the process reports itself over its soft limit"
    );

    // The receiver turns a request away, telling the sender when to come back.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", hop.otlp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );

    // The file source read nothing: its lines wait on disk.
    std::thread::sleep(Duration::from_secs(1));
    let (_, m) = http_get(&metrics_url).unwrap();
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_received_events_total",
            &["component=\"app\""]
        ),
        0.0
    );
    assert_eq!(committed_offset(&hop.store), 0);
    assert!(delivered_lines(&hop.out).is_empty());
    assert!(sextant.terminate(Duration::from_secs(10)), "stops cleanly");
}

/// `n` lines of about 330 bytes (`line {i} across the hop` and padding) appended to `path`.
fn write_padded_lines(path: &std::path::Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let pad = "p".repeat(300);
    for i in 0..n {
        writeln!(f, "line {i} across the hop {pad}").unwrap();
    }
    f.flush().unwrap();
}

/// The lines of `write_padded_lines` that arrived, checked to be each of `0..n` exactly once.
fn assert_each_line_once(out: &std::path::Path, n: usize) {
    let got = wait_delivered(out, n);
    let mut seen = vec![0u32; n];
    for line in &got {
        let i: usize = line
            .strip_prefix("line ")
            .and_then(|r| r.split(' ').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        seen[i] += 1;
    }
    let missing = seen.iter().filter(|c| **c == 0).count();
    let twice = seen.iter().filter(|c| **c > 1).count();
    assert_eq!(
        (missing, twice, got.len()),
        (0, 0, n),
        "lost, doubled, total"
    );
}

/// Starts the collector and waits for the lines of `write_padded_lines`, each exactly once.
fn collector_delivers_each_line_once(hop: &Hop, n: usize) -> Proc {
    let collector = start_sextant(
        "collector",
        &hop.collector_to_files(),
        &hop.path("collector.log"),
    );
    assert_each_line_once(&hop.out, n);
    collector
}

/// Asserts that process `pid` never had more than `limit` bytes resident (`VmHWM`).
fn assert_peak_rss_under(pid: u32, limit: u64) {
    let peak = peak_rss(pid);
    eprintln!("peak RSS: {} MiB", peak / MIB);
    assert!(peak < limit, "peak RSS {} MiB", peak / MIB);
}

/// Peak resident memory (`VmHWM`) of process `pid`.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// An agent with a 512 MiB memory queue to a collector that is not there yet, and `memory`.
fn agent_with_big_queue(hop: &Hop, memory: &str) -> std::path::PathBuf {
    let config = hop.agent(
        hop.otlp,
        &format!("{REQUEST}\n      queue: {{ max_bytes: 512MiB }}"),
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("memory: {memory}\n"));
    std::fs::write(&config, text).unwrap();
    config
}

const MIB: u64 = 1 << 20;

#[test]
fn a_file_read_as_fast_as_it_can_keeps_the_agent_under_its_budget_and_loses_nothing() {
    // 400,000 lines (~135 MB) wait before the agent starts; its queue could take all of them,
    // but its budget is 64 MiB (soft limit 80%): the file source must stop in time.
    let hop = Hop::new();
    let n = 400_000;
    write_padded_lines(&hop.app_log, n);
    let config = agent_with_big_queue(&hop, "{ limit: 64MiB }");
    let mut agent = start_sextant("agent", &config, &hop.path("agent.log"));
    let metrics = |name: &str, labels: &[&str]| metric(hop.agent_admin, name, labels);
    assert!(
        eventually(Duration::from_secs(30), || metrics(
            "sextant_memory_over_soft_limit",
            &[]
        ) == 1.0),
        "the agent reaches its soft limit"
    );
    std::thread::sleep(Duration::from_secs(2));
    let read = metrics(
        "sextant_component_received_events_total",
        &["component=\"app\""],
    );
    assert!(
        read > 0.0 && read < n as f64,
        "{read} lines read, the rest wait on disk"
    );
    assert_peak_rss_under(agent.pid(), 64 * MIB);

    // The collector comes: everything arrives, once, and memory stayed in budget throughout.
    let mut collector = collector_delivers_each_line_once(&hop, n);
    assert_peak_rss_under(agent.pid(), 64 * MIB);
    assert!(
        agent.terminate(Duration::from_secs(10)),
        "agent stops cleanly"
    );
    assert!(collector.terminate(Duration::from_secs(10)));
}

#[test]
fn above_the_hard_limit_batches_spill_to_disk_and_arrive_once_the_collector_returns() {
    // A hard limit alone (nothing pauses): once the agent is over it, what the file source
    // reads goes to the spill buffer on disk, acknowledged once fsynced, not to memory.
    let hop = Hop::new();
    let n = 200_000;
    write_padded_lines(&hop.app_log, n);
    let config = agent_with_big_queue(
        &hop,
        "{ hard_limit: 48MiB, spill: { max_segment_bytes: 4MiB, fsync_interval: 100ms } }",
    );
    let mut agent = start_sextant("agent", &config, &hop.path("agent.log"));
    let metrics = |name: &str, labels: &[&str]| metric(hop.agent_admin, name, labels);
    let sink = ["component=\"to_collector\""];
    assert!(
        eventually(Duration::from_secs(30), || metrics(
            "sextant_component_received_events_total",
            &["component=\"app\""]
        ) == n as f64),
        "every line read"
    );
    let spilled = metrics("sextant_component_spilled_events_total", &sink);
    assert!(
        spilled > 0.0 && spilled < n as f64,
        "{spilled} of {n} spilled, the first ones kept in memory"
    );
    assert!(metrics("sextant_buffer_bytes", &sink) > 0.0, "on disk");
    assert_peak_rss_under(agent.pid(), 64 * MIB);

    let mut collector = collector_delivers_each_line_once(&hop, n);
    assert!(
        eventually(Duration::from_secs(20), || committed_offset(&hop.store)
            == std::fs::metadata(&hop.app_log).unwrap().len()),
        "the checkpoint reaches the end of the file"
    );
    assert!(
        agent.terminate(Duration::from_secs(10)),
        "agent stops cleanly"
    );
    assert!(collector.terminate(Duration::from_secs(10)));
}
