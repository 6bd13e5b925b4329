//! Traces into a release `sextant agent` as applications send them, the agent's own CPU time and
//! memory measured from /proc (not criterion: it measures a process):
//!
//! - `otlp`: 8 senders at a time, each on its own keep-alive connection waiting for each answer
//!   (as an SDK's batch processor does), 2,000 OTLP/HTTP protobuf requests
//!   (`SEXTANT_BENCH_REQUESTS`) of 1,000 spans (five attributes each, a service resource) into `otlp` -> `blackhole`. Prints spans per CPU-second
//!   of the agent and its peak RSS.
//! - `xray`: X-Ray segment datagrams over UDP at a paced rate (`SEXTANT_BENCH_XRAY_RATE`,
//!   default 100,000/s) for `SEXTANT_BENCH_SECONDS` (default 20; the figure is for 600)
//!   into `xray_udp` -> `blackhole`. Prints segments received per second (from the agent's own
//!   counter), what the kernel dropped, CPU-seconds, and RSS every 10 s, so a growth shows.
//!
//! `cargo bench --bench trace_intake_e2e` (or `-- otlp` / `-- xray` for one of them)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::BufReader;
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_and_peak_rss, free_port, http_get, kv, metric, otlp_round_trip};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SPANS: u32 = 1000;
/// Distinct request bodies; the senders cycle through them.
const BODIES: u32 = 200;
const SENDERS: u32 = 8;

fn body(request: u32) -> Vec<u8> {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: [request.to_be_bytes(), (i / 8).to_be_bytes(), [1; 4], [2; 4]].concat(),
            span_id: [request.to_be_bytes(), i.to_be_bytes()].concat(),
            parent_span_id: if i % 8 == 0 {
                Vec::new()
            } else {
                [request.to_be_bytes(), (i - i % 8).to_be_bytes()].concat()
            },
            name: format!("GET /api/orders/{}", i % 50),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i) * 1000,
            end_time_unix_nano: 1_700_000_000_001_000_000 + u64::from(i) * 1000,
            attributes: vec![
                kv(
                    "http.request.method",
                    any_value::Value::StringValue("GET".into()),
                ),
                kv(
                    "http.route",
                    any_value::Value::StringValue("/api/orders/{id}".into()),
                ),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv(
                    "server.address",
                    any_value::Value::StringValue("orders.shop".into()),
                ),
                kv(
                    "user_agent.original",
                    any_value::Value::StringValue("curl/8.5".into()),
                ),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv(
                        "service.name",
                        any_value::Value::StringValue("orders".into()),
                    ),
                    kv(
                        "service.version",
                        any_value::Value::StringValue("2.4.1".into()),
                    ),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// A release agent with `source` into a blackhole; (child, admin port).
fn start_agent(dir: &std::path::Path, source: &str) -> (Child, u16) {
    let admin = free_port();
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\nagent:\n  sources:\n    traces: {source}\n  sinks:\n    void: {{ type: blackhole, inputs: [traces] }}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["agent", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while !http_get(admin, "/readyz").is_some_and(|r| r.contains(" 200 ")) {
        assert!(ready.elapsed() < Duration::from_secs(20), "agent not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, admin)
}

fn otlp() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, _) = start_agent(
        dir.path(),
        &format!("{{ type: otlp, address: \"127.0.0.1:{port}\" }}"),
    );
    let requests: u32 = std::env::var("SEXTANT_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let per_sender = requests / SENDERS;
    let distinct = BODIES / SENDERS;
    let bodies: Vec<Vec<Vec<u8>>> = (0..SENDERS)
        .map(|s| (0..distinct).map(|r| body(s * distinct + r)).collect())
        .collect();
    let (cpu_before, _) = cpu_and_peak_rss(child.id());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for mine in &bodies {
            scope.spawn(move || {
                let mut conn = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
                conn.get_ref().set_nodelay(true).unwrap();
                for b in mine.iter().cycle().take(per_sender as usize) {
                    assert_eq!(otlp_round_trip(&mut conn, port, b), 200);
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let (cpu_after, peak_kib) = cpu_and_peak_rss(child.id());
    let spans = f64::from(per_sender * SENDERS * SPANS);
    let cpu = cpu_after - cpu_before;
    println!(
        "trace_intake_e2e otlp: {} requests x {SPANS} spans, {SENDERS} senders: {wall:.2} s wall, agent {cpu:.2} CPU-s = {:.0} spans/CPU-s, {:.0} spans/s, peak RSS {:.1} MiB",
        per_sender * SENDERS,
        spans / cpu,
        spans / wall,
        peak_kib as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn current_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn xray() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seconds, rate) = (
        env("SEXTANT_BENCH_SECONDS", 20),
        env("SEXTANT_BENCH_XRAY_RATE", 100_000),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, admin) = start_agent(
        dir.path(),
        &format!(
            "{{ type: xray_udp, address: \"127.0.0.1:{port}\", receive_buffer_bytes: 16MiB }}"
        ),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let datagram = |n: u64| {
        format!(
            "{{\"format\":\"json\",\"version\":1}}\n{{\"trace_id\":\"1-5759e988-{:024x}\",\"id\":\"{:016x}\",\"name\":\"orders\",\"start_time\":1700000000.125,\"end_time\":1700000000.25,\"http\":{{\"request\":{{\"method\":\"GET\",\"url\":\"https://orders.shop/api/orders/{}\"}},\"response\":{{\"status\":200}}}},\"aws\":{{\"xray\":{{\"sdk\":\"X-Ray for Python\",\"sdk_version\":\"2.15.0\"}}}}}}",
            n,
            n,
            n % 50
        )
    };
    let (cpu_before, _) = cpu_and_peak_rss(child.id());
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next_report = Duration::from_secs(10);
    while start.elapsed() < Duration::from_secs(seconds) {
        // Paced: as many as the rate allows by now, in bursts of up to 1,000.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(500));
        }
        while sent < due.min(sent + 1000) {
            if socket.send(datagram(sent).as_bytes()).is_ok() {
                sent += 1;
            }
        }
        if start.elapsed() >= next_report {
            println!(
                "  {:>4} s: sent {sent}, RSS {:.1} MiB",
                next_report.as_secs(),
                current_rss_kib(child.id()) as f64 / 1024.0
            );
            next_report += Duration::from_secs(10);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let (cpu_after, peak_kib) = cpu_and_peak_rss(child.id());
    let metrics = http_get(admin, "/metrics").unwrap_or_default();
    let received = metric(
        &metrics,
        "sextant_component_received_events_total",
        "component=\"traces\"",
    );
    let cpu = cpu_after - cpu_before;
    println!(
        "trace_intake_e2e xray: {seconds} s at {rate}/s: sent {sent} ({:.0}/s), received {received} ({:.0}/s), lost {}, agent {cpu:.2} CPU-s = {:.0} segments/CPU-s, peak RSS {:.1} MiB",
        sent as f64 / wall,
        received / wall,
        sent.saturating_sub(received as u64),
        received / cpu,
        peak_kib as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("otlp") {
        otlp();
    }
    if wants("xray") {
        xray();
    }
}
