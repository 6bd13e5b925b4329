//! One OTLP/HTTP sender that waits for each answer, as an OpenTelemetry SDK's batch span
//! processor does, against a release `sextant collector` (otlp source -> blackhole sink, default
//! batch settings). Reports the total time and the p50/p99 round trip of 200 requests of 1,000
//! spans each, on one keep-alive connection (not criterion: it measures a process).
//!
//! `cargo bench --bench otlp_sequential` (SEXTANT_BENCH_REQUESTS sets the number of requests)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::BufReader;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, otlp_round_trip};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SPANS: u32 = 1000;

fn body(request: u32) -> Vec<u8> {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: [request.to_be_bytes(), i.to_be_bytes(), [1; 4], [2; 4]].concat(),
            span_id: [request.to_be_bytes(), i.to_be_bytes()].concat(),
            name: format!("GET /api/orders/{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_001_000_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, otlp) = (free_port(), free_port());
    let cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {}\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\ncollector:\n  sources:\n    otlp: {{ type: otlp, address: \"127.0.0.1:{otlp}\" }}\n  sinks:\n    void: {{ type: blackhole, inputs: [otlp] }}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["collector", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while !http_get(admin, "/readyz").is_some_and(|r| r.contains(" 200 ")) {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "collector not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let requests: u32 = std::env::var("SEXTANT_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let bodies: Vec<Vec<u8>> = (0..requests).map(body).collect();
    let mut conn = BufReader::new(TcpStream::connect(("127.0.0.1", otlp)).unwrap());
    conn.get_ref().set_nodelay(true).unwrap();
    let mut latencies = Vec::with_capacity(requests as usize);
    let start = Instant::now();
    for b in &bodies {
        let t = Instant::now();
        assert_eq!(otlp_round_trip(&mut conn, otlp, b), 200);
        latencies.push(t.elapsed());
    }
    let total = start.elapsed();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "otlp_sequential: {requests} requests x {SPANS} spans, one waiting sender: total {:.2} s, p50 {:.2} ms, p99 {:.2} ms, {:.0} spans/s",
        total.as_secs_f64(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        f64::from(requests * SPANS) / total.as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
}
