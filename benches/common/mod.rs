//! Helpers of the process-level benches (`agent_e2e`, `hop_e2e`): they start release
//! `sextant` processes and read their CPU time, peak RSS and metrics.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

pub fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// (user+system CPU seconds, peak RSS in KiB) of a process.
pub fn cpu_and_peak_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the ")": state is field 0, utime 11, stime 12 (clock ticks, 100 per second here).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

/// An OTLP `KeyValue`.
pub fn kv(
    key: &str,
    value: opentelemetry_proto::tonic::common::v1::any_value::Value,
) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    opentelemetry_proto::tonic::common::v1::KeyValue {
        key: key.into(),
        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// OTLP/HTTP protobuf traces: /// sends one request on `conn` and reads its answer; the status.
pub fn otlp_round_trip(conn: &mut BufReader<TcpStream>, port: u16, body: &[u8]) -> u16 {
    write!(
        conn.get_mut(),
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.get_mut().write_all(body).unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut rest = vec![0u8; length];
    conn.read_exact(&mut rest).unwrap();
    status.split_whitespace().nth(1).unwrap().parse().unwrap()
}
