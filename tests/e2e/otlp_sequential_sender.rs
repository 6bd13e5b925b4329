//! A sender that waits for each answer (an OpenTelemetry SDK's batch processor) is answered as
//! soon as the sink has delivered, never after a batch timer: with a one-hour batch timeout,
//! every request of a sequential sender is still answered, over HTTP and after a disk buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

fn spans(request: u32, n: u32) -> Vec<u8> {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: [request.to_be_bytes(), i.to_be_bytes(), [1; 4], [2; 4]].concat(),
            span_id: [request.to_be_bytes(), i.to_be_bytes()].concat(),
            name: format!("op {i}"),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
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

#[test]
fn a_sequential_sender_is_never_kept_waiting_by_the_batch_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            r#"    void:
      type: blackhole
      inputs: [otlp]
      batch: {{ timeout: 1h, max_events: 1000000 }}
    out:
      type: file
      inputs: [otlp]
      path: {d}/out
      batch: {{ timeout: 1h, max_events: 1000000 }}
"#,
            d = dir.path().display(),
        ),
    );
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(10),
    );
    // post_otlp reads the answer with no deadline of its own; the test's would be an hour per
    // request if the timer decided.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for r in 0..20 {
            tx.send(post_otlp(otlp, "/v1/traces", &spans(r, 1000)))
                .unwrap();
        }
    });
    let answers: Vec<u16> = (0..20)
        .map(|i| {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("request {i} not answered within 30 s"))
        })
        .collect();
    assert_eq!(answers, [200; 20]);
    // Delivered whole, by both sinks, before each answer.
    let written = std::fs::read_to_string(dir.path().join("out/traces.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 20_000);
    let m = http_get(&format!("http://127.0.0.1:{admin}/metrics"))
        .unwrap()
        .1;
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_sent_events_total",
            &["component=\"void\""]
        ),
        20_000.0
    );
    assert!(collector.terminate(Duration::from_secs(15)));
}
