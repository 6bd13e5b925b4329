//! OTLP/HTTP JSON on the receiver: each signal, written as the spec's JSON mapping (hex ids,
//! enums as integers, 64-bit integers as strings and as numbers, an unknown key), decodes to
//! exactly what the same request in protobuf decodes to, and is answered in JSON, with a
//! partial success for records with ids of the wrong length and a `google.rpc.Status` for a
//! body that is not OTLP JSON.

use std::io::Write;

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
    trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;

use super::tests::{post_answered as post, start, Started, PROTO};
use super::*;

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", string("checkout")),
            kv("k8s.pod.name", string("checkout-5c")),
        ],
        ..Default::default()
    })
}

const RESOURCE_JSON: &str = r#"{"attributes":[
    {"key":"service.name","value":{"stringValue":"checkout"}},
    {"key":"k8s.pod.name","value":{"stringValue":"checkout-5c"}}]}"#;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const SPAN: &str = "eee19b7ec3c1b174";
const PARENT: &str = "eee19b7ec3c1b173";

fn traces_json() -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{RESOURCE_JSON},"scopeSpans":[{{
        "scope":{{"name":"shop.checkout","version":"1.2.0"}},
        "schemaUrl":"https://opentelemetry.io/schemas/1.24.0",
        "spans":[
          {{"traceId":"{TRACE}","spanId":"{SPAN}","parentSpanId":"{PARENT}",
            "traceState":"vendor=1","flags":257,
            "name":"POST /orders","kind":2,
            "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
            "attributes":[
              {{"key":"http.request.method","value":{{"stringValue":"POST"}}}},
              {{"key":"http.response.status_code","value":{{"intValue":"201"}}}},
              {{"key":"retries","value":{{"intValue":2}}}},
              {{"key":"ratio","value":{{"doubleValue":0.25}}}},
              {{"key":"cached","value":{{"boolValue":false}}}},
              {{"key":"tags","value":{{"arrayValue":{{"values":[{{"stringValue":"a"}},{{"intValue":"3"}}]}}}}}},
              {{"key":"user","value":{{"kvlistValue":{{"values":[{{"key":"id","value":{{"stringValue":"u-7"}}}}]}}}}}}
            ],
            "droppedAttributesCount":1,
            "events":[{{"timeUnixNano":"1544712660500000000","name":"charged",
              "attributes":[{{"key":"amount","value":{{"doubleValue":12.5}}}}]}}],
            "links":[{{"traceId":"{TRACE}","spanId":"{PARENT}","traceState":"x=y",
              "attributes":[{{"key":"cause","value":{{"stringValue":"retry"}}}}]}}],
            "status":{{"code":2,"message":"card declined"}},
            "someFieldFromANewerSpec":{{"ignored":true}}
          }},
          {{"traceId":"5b8efff798038103","spanId":"{SPAN}","name":"short trace id",
            "startTimeUnixNano":"1","endTimeUnixNano":"2"}}
        ]}}]}}]}}"#
    )
}

fn traces_proto() -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::*;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "shop.checkout".into(),
                    version: "1.2.0".into(),
                    ..Default::default()
                }),
                schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
                spans: vec![
                    Span {
                        trace_id: hex(TRACE),
                        span_id: hex(SPAN),
                        parent_span_id: hex(PARENT),
                        trace_state: "vendor=1".into(),
                        flags: 257,
                        name: "POST /orders".into(),
                        kind: 2,
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        end_time_unix_nano: 1_544_712_661_000_000_000,
                        attributes: vec![
                            kv("http.request.method", string("POST")),
                            kv("http.response.status_code", any_value::Value::IntValue(201)),
                            kv("retries", any_value::Value::IntValue(2)),
                            kv("ratio", any_value::Value::DoubleValue(0.25)),
                            kv("cached", any_value::Value::BoolValue(false)),
                            kv(
                                "tags",
                                any_value::Value::ArrayValue(ArrayValue {
                                    values: vec![
                                        AnyValue {
                                            value: Some(string("a")),
                                        },
                                        AnyValue {
                                            value: Some(any_value::Value::IntValue(3)),
                                        },
                                    ],
                                }),
                            ),
                            kv(
                                "user",
                                any_value::Value::KvlistValue(KeyValueList {
                                    values: vec![kv("id", string("u-7"))],
                                }),
                            ),
                        ],
                        dropped_attributes_count: 1,
                        events: vec![span::Event {
                            time_unix_nano: 1_544_712_660_500_000_000,
                            name: "charged".into(),
                            attributes: vec![kv("amount", any_value::Value::DoubleValue(12.5))],
                            ..Default::default()
                        }],
                        links: vec![span::Link {
                            trace_id: hex(TRACE),
                            span_id: hex(PARENT),
                            trace_state: "x=y".into(),
                            attributes: vec![kv("cause", string("retry"))],
                            ..Default::default()
                        }],
                        status: Some(Status {
                            code: 2,
                            message: "card declined".into(),
                        }),
                        ..Default::default()
                    },
                    Span {
                        trace_id: hex("5b8efff798038103"),
                        span_id: hex(SPAN),
                        name: "short trace id".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        }],
    }
}

fn metrics_json() -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{RESOURCE_JSON},"scopeMetrics":[{{"scope":{{"name":"shop"}},"metrics":[
          {{"name":"queue_depth","unit":"1","gauge":{{"dataPoints":[
            {{"timeUnixNano":"1544712660000000000","asInt":"42",
              "attributes":[{{"key":"queue","value":{{"stringValue":"orders"}}}}]}}]}}}},
          {{"name":"orders_total","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
            {{"startTimeUnixNano":"1544712600000000000","timeUnixNano":1544712660000000000,"asDouble":17.5}}]}}}},
          {{"name":"latency","unit":"s","histogram":{{"aggregationTemporality":2,"dataPoints":[
            {{"timeUnixNano":"1544712660000000000","count":"6","sum":1.5,
              "bucketCounts":["1","2",3],"explicitBounds":[0.1,0.5],"min":0.01,"max":0.9}}]}}}}
        ]}}]}}]}}"#
    )
}

fn metrics_proto() -> ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::metrics::v1::*;
    let attrs = vec![kv("queue", string("orders"))];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "shop".into(),
                    ..Default::default()
                }),
                metrics: vec![
                    Metric {
                        name: "queue_depth".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: 1_544_712_660_000_000_000,
                                value: Some(number_data_point::Value::AsInt(42)),
                                attributes: attrs,
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "orders_total".into(),
                        data: Some(metric::Data::Sum(Sum {
                            aggregation_temporality: 2,
                            is_monotonic: true,
                            data_points: vec![NumberDataPoint {
                                start_time_unix_nano: 1_544_712_600_000_000_000,
                                time_unix_nano: 1_544_712_660_000_000_000,
                                value: Some(number_data_point::Value::AsDouble(17.5)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "latency".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            aggregation_temporality: 2,
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: 1_544_712_660_000_000_000,
                                count: 6,
                                sum: Some(1.5),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![0.1, 0.5],
                                min: Some(0.01),
                                max: Some(0.9),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_json() -> String {
    format!(
        r#"{{"resourceLogs":[{{"resource":{RESOURCE_JSON},"scopeLogs":[{{"scope":{{"name":"shop"}},"logRecords":[
          {{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":1544712660400000000,
            "severityNumber":17,"severityText":"ERROR","body":{{"stringValue":"card declined"}},
            "attributes":[{{"key":"order.id","value":{{"intValue":"7"}}}}],
            "traceId":"{TRACE}","spanId":"{SPAN}","flags":1}}
        ]}}]}}]}}"#
    )
}

fn logs_proto() -> ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::logs::v1::*;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "shop".into(),
                    ..Default::default()
                }),
                log_records: vec![LogRecord {
                    time_unix_nano: 1_544_712_660_300_000_000,
                    observed_time_unix_nano: 1_544_712_660_400_000_000,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(AnyValue {
                        value: Some(string("card declined")),
                    }),
                    attributes: vec![kv("order.id", any_value::Value::IntValue(7))],
                    trace_id: hex(TRACE),
                    span_id: hex(SPAN),
                    flags: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body).unwrap();
    enc.finish().unwrap()
}

/// `(status, Content-Type, body)` of a POST.
type Answered = (u16, String, Vec<u8>);

/// Delivers every batch the receiver sends on (its answers wait for that); the events of each,
/// in order, once the queue closes.
fn deliver_all(started: &Started) -> tokio::task::JoinHandle<Vec<Events>> {
    let queue = started.queue.clone();
    tokio::spawn(async move {
        let mut batches = Vec::new();
        while let Some(b) = queue.pop().await {
            b.acks.deliver();
            batches.push(b.events);
        }
        batches
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_requests_of_every_signal_decode_as_their_protobuf_twins_and_are_answered_in_json() {
    let started = start("otlp_json_test");
    let consumer = deliver_all(&started);
    let port = started.port;
    let answers: Vec<(&str, Answered)> = tokio::task::spawn_blocking(move || {
        vec![
            (
                "traces json",
                post(port, "/v1/traces", &[JSON], traces_json().as_bytes()),
            ),
            (
                "traces proto",
                post(
                    port,
                    "/v1/traces",
                    &[PROTO],
                    &traces_proto().encode_to_vec(),
                ),
            ),
            (
                "metrics json gzip",
                post(
                    port,
                    "/v1/metrics",
                    &[JSON, ("Content-Encoding", "gzip")],
                    &gzip(metrics_json().as_bytes()),
                ),
            ),
            (
                "metrics proto",
                post(
                    port,
                    "/v1/metrics",
                    &[PROTO],
                    &metrics_proto().encode_to_vec(),
                ),
            ),
            (
                "logs json",
                post(
                    port,
                    "/v1/logs",
                    &[("Content-Type", "application/json; charset=utf-8")],
                    logs_json().as_bytes(),
                ),
            ),
            (
                "logs proto",
                post(port, "/v1/logs", &[PROTO], &logs_proto().encode_to_vec()),
            ),
        ]
    })
    .await
    .unwrap();
    started.trigger.stop();
    started.task.await.unwrap();
    started.queue.close();
    let batches = consumer.await.unwrap();
    assert_eq!(batches.len(), 6, "one batch per request");
    for (what, (status, content_type, _)) in &answers {
        assert_eq!(*status, 200, "{what}");
        let expected = if what.contains("json") {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        assert_eq!(content_type, expected, "{what} is answered in kind");
    }
    // Requests were sent one after another, each answered after delivery: batches in order.
    assert_eq!(batches[0], batches[1], "spans");
    assert_eq!(batches[2], batches[3], "metrics");
    assert_eq!(batches[4], batches[5], "logs");
    assert_eq!(
        batches[0].len(),
        1,
        "the span with a short trace id is skipped"
    );
    assert_eq!(batches[2].len(), 3);
    assert_eq!(batches[4].len(), 1);
    // The partial success says what was skipped, in JSON; the full successes carry none.
    let traces: serde_json::Value = serde_json::from_slice(&answers[0].1 .2).unwrap();
    assert_eq!(traces["partialSuccess"]["rejectedSpans"], json!(1));
    assert!(traces["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("malformed ids"));
    let logs: serde_json::Value = serde_json::from_slice(&answers[4].1 .2).unwrap();
    assert!(logs.get("partialSuccess").is_none_or(|p| p.is_null()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_otlp_json_is_refused_with_a_json_status_and_counted() {
    let started = start("otlp_bad_json_test");
    let consumer = deliver_all(&started);
    let port = started.port;
    let (not_json, wrong_shape, bad_hex, still_ok) = tokio::task::spawn_blocking(move || {
        (
            post(port, "/v1/traces", &[JSON], b"{\"resourceSpans\":[{"),
            post(port, "/v1/metrics", &[JSON], br#"{"resourceMetrics":{"not":"a list"}}"#),
            post(
                port,
                "/v1/traces",
                &[JSON],
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"00"}]}]}]}"#,
            ),
            post(port, "/v1/logs", &[JSON], logs_json().as_bytes()),
        )
    })
    .await
    .unwrap();
    for (what, (status, content_type, body)) in [
        ("not json", &not_json),
        ("wrong shape", &wrong_shape),
        ("bad hex", &bad_hex),
    ] {
        assert_eq!(*status, 400, "{what}");
        assert_eq!(content_type, "application/json", "{what}");
        let status: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            status["code"],
            json!(grpc::code::INVALID_ARGUMENT),
            "{what}"
        );
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with("bad_json: "),
            "{what}: {status}"
        );
    }
    assert_eq!(
        still_ok.0, 200,
        "the receiver keeps taking JSON after bad input"
    );
    let text = crate::telemetry::render();
    assert!(text.contains(
        "sextant_events_discarded_total{component=\"otlp_bad_json_test\",kind=\"otlp\",reason=\"bad_json\",role=\"test\"} 3"
    ));
    started.trigger.stop();
    started.task.await.unwrap();
    started.queue.close();
    assert_eq!(consumer.await.unwrap().len(), 1);
}
