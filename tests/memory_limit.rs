//! The memory soft limit with a real process: above it, the OTLP receiver answers 503 with
//! Retry-After and file sources read nothing, so the data stays with its sender or on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::hop::*;
use common::*;

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
