//! Signals are routed, not filtered: one `otlp` receiver feeding CloudWatch Logs, CloudWatch
//! metrics and X-Ray (moto) hands each sink only its own signal, so no sink stores, drops or
//! counts the others; a receiver whose sinks send no metrics refuses metrics up front.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("shop".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn logs(n: usize) -> Vec<u8> {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: now_ns(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("routed {i}"))),
            }),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn gauge() -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue_depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: now_ns(),
                            value: Some(number_data_point::Value::AsDouble(7.0)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn spans(n: u8) -> Vec<u8> {
    let now = now_ns();
    let spans = (0..n)
        .map(|i| Span {
            trace_id: [[0x5a, 0x5a, 0x5a, 0x5a].as_slice(), &[i + 1; 12]].concat(),
            span_id: vec![i + 1; 8],
            name: format!("GET /{i}"),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: now - 1_000_000,
            end_time_unix_nano: now,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_receiver_feeds_three_aws_sinks_each_only_its_signal_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let (admin, otlp, logs_only) = (free_port(), free_port(), free_port());
    let aws = format!("aws: {{ region: us-east-1, endpoint: \"http://127.0.0.1:{moto_port}\" }}");
    let cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{otlp}" }}
    logs_only: {{ type: otlp, address: "127.0.0.1:{logs_only}" }}
  sinks:
    cwl:
      type: aws_cloudwatch_logs
      inputs: [otlp, logs_only]
      log_group: /sextant/routing
      log_stream: app
      {aws}
      batch: {{ timeout: 100ms }}
      queue: {{ disk: {{ max_segment_bytes: 1MiB }} }}
    cwm:
      type: aws_cloudwatch_metrics
      inputs: [otlp]
      namespace: Sextant/Routing
      {aws}
      batch: {{ timeout: 100ms }}
      queue: {{ disk: {{ max_segment_bytes: 1MiB }} }}
    xray:
      type: aws_xray
      inputs: [otlp]
      {aws}
      batch: {{ timeout: 100ms }}
      queue: {{ disk: {{ max_segment_bytes: 1MiB }} }}
"#,
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    assert_eq!(post_otlp(otlp, "/v1/logs", &logs(3)), 200);
    assert_eq!(post_otlp(otlp, "/v1/metrics", &gauge()), 200);
    assert_eq!(post_otlp(otlp, "/v1/traces", &spans(2)), 200);
    // A receiver whose only sink sends logs refuses the other signals up front.
    assert_eq!(post_otlp(logs_only, "/v1/metrics", &gauge()), 404);
    assert_eq!(post_otlp(logs_only, "/v1/logs", &logs(1)), 200);

    let client = cwl_client(moto_port).await;
    let got = wait_for_stream(&client, "/sextant/routing", "app", 4).await;
    let mut got = got;
    got.sort();
    assert_eq!(got, ["routed 0", "routed 0", "routed 1", "routed 2"]);

    let metrics_url = format!("http://127.0.0.1:{admin}/metrics");
    let m = http_get(&metrics_url).unwrap().1;
    for (sink, n) in [("cwl", 4.0), ("cwm", 1.0), ("xray", 2.0)] {
        let label = format!("component=\"{sink}\"");
        assert_eq!(
            metric_sum(&m, "sextant_component_received_events_total", &[&label]),
            n,
            "{sink} takes only its own signal"
        );
        assert_eq!(
            metric_sum(&m, "sextant_component_dropped_events_total", &[&label]),
            0.0,
            "{sink}: a drop counter means data was lost, and none was"
        );
    }
    assert!(collector.terminate(Duration::from_secs(15)));
}
