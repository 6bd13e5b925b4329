//! The `aws_xray` sink end to end: OTLP spans into a real `sextant collector`, PutTraceSegments
//! into moto through a fault-injecting proxy (a stand-in from the test crate: throttling, a 503,
//! a timeout, and a document left unprocessed), read back with the AWS SDK's BatchGetTraces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::common::*;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// Trace `t` (a W3C random id: no timestamp in its first bytes): a server span and two clients.
fn trace(t: u8, now: u64) -> Vec<Span> {
    let trace_id = vec![
        0xa0 + t,
        0xf9,
        0x2f,
        0x35,
        0x77,
        0xb3,
        0x4d,
        0xa6,
        0xa3,
        0xce,
        0x92,
        0x9d,
        0x0e,
        0x0e,
        0x47,
        t,
    ];
    let id = |n: u8| vec![t, 0, 0, 0, 0, 0, 0, n];
    let base = |n: u8, parent: Option<u8>, kind: SpanKind, attributes: Vec<KeyValue>| Span {
        trace_id: trace_id.clone(),
        span_id: id(n),
        parent_span_id: parent.map(id).unwrap_or_default(),
        name: format!("span {n}"),
        kind: kind as i32,
        start_time_unix_nano: now + u64::from(n) * 1_000_000,
        end_time_unix_nano: now + 50_000_000,
        attributes,
        ..Default::default()
    };
    vec![
        base(
            1,
            None,
            SpanKind::Server,
            vec![
                kv("http.request.method", s("GET")),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv("customer", s("c-1")),
            ],
        ),
        base(
            2,
            Some(1),
            SpanKind::Client,
            vec![
                kv("rpc.system", s("aws-api")),
                kv("rpc.service", s("DynamoDB")),
                kv("rpc.method", s("GetItem")),
            ],
        ),
        base(
            3,
            Some(1),
            SpanKind::Client,
            vec![
                kv("peer.service", s("payments")),
                kv("http.response.status_code", any_value::Value::IntValue(503)),
            ],
        ),
    ]
}

fn request(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("checkout"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_xray_as_segments_through_faults_and_unprocessed_documents() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let proxy = FaultProxy::start(
        moto_port,
        "xray/aws4_request",
        vec![
            Fault::Throttle,
            Fault::Unavailable,
            Fault::Hang(Duration::from_secs(3)),
            Fault::Unprocessed,
        ],
    );
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            r#"    xray:
      type: aws_xray
      inputs: [otlp]
      indexed_attributes: [customer]
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      batch: {{ timeout: 200ms }}
      request: {{ timeout: 1s, initial_backoff: 50ms, max_backoff: 200ms, concurrency: 1 }}
      # The proxy's faults are for the data path; the health check would take one.
      healthcheck: false
"#,
            proxy = proxy.port
        ),
    );
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // 20 traces of 3 spans: 60 documents, two requests (50 + 10).
    let spans: Vec<Span> = (0..20).flat_map(|t| trace(t, now)).collect();
    // And a segment "from the daemon" that moto will never take (no end_time): given up after
    // five rounds and counted, without holding the rest.
    let broken = Span {
        trace_id: vec![0xee; 16],
        span_id: vec![0xee; 8],
        name: "legacy".into(),
        start_time_unix_nano: now,
        end_time_unix_nano: now,
        attributes: vec![kv(
            "aws.xray.raw_segment",
            s(
                r#"{"name":"legacy","id":"eeeeeeeeeeeeeeee","trace_id":"1-eeeeeeee-eeeeeeeeeeeeeeeeeeeeeeee","start_time":1}"#,
            ),
        )],
        ..Default::default()
    };
    assert_eq!(post_otlp(otlp, "/v1/traces", &request(spans)), 200);
    assert_eq!(post_otlp(otlp, "/v1/traces", &request(vec![broken])), 200);

    let client = aws_sdk_xray::Client::new(&moto_sdk_config(moto_port).await);
    let ids: Vec<String> = (0..20u8)
        .map(|t| format!("1-{:02x}f92f35-77b34da6a3ce929d0e0e47{t:02x}", 0xa0 + t))
        .collect();
    let mut documents: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for _ in 0..300 {
        documents.clear();
        for chunk in ids.chunks(5) {
            let r = client
                .batch_get_traces()
                .set_trace_ids(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            for t in r.traces() {
                for seg in t.segments() {
                    let doc: serde_json::Value =
                        serde_json::from_str(seg.document().unwrap()).unwrap();
                    documents.insert(doc["id"].as_str().unwrap().to_string(), doc);
                }
            }
        }
        if documents.len() == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(documents.len(), 60, "every span, once per id");
    let server = &documents["0500000000000001"];
    assert_eq!(server["name"], "checkout");
    assert_eq!(server["trace_id"], "1-a5f92f35-77b34da6a3ce929d0e0e4705");
    assert_eq!(server["annotations"]["customer"], "c-1");
    assert_eq!(server["http"]["response"]["status"], 200);
    let dynamo = &documents["0500000000000002"];
    assert_eq!(
        (
            dynamo["type"].as_str(),
            dynamo["namespace"].as_str(),
            dynamo["name"].as_str()
        ),
        (Some("subsegment"), Some("aws"), Some("DynamoDB"))
    );
    assert_eq!(dynamo["parent_id"], "0500000000000001");
    let payments = &documents["0500000000000003"];
    assert_eq!(
        (payments["name"].as_str(), payments["fault"].as_bool()),
        (Some("payments"), Some(true))
    );
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "every fault was hit"
    );

    let metrics_url = format!("http://127.0.0.1:{admin}/metrics");
    let dropped = || {
        http_get(&metrics_url).map_or(0.0, |(_, m)| {
            metric_sum_or_zero(
                &m,
                "sextant_component_dropped_events_total",
                &["component=\"xray\"", "reason=\"unprocessed\""],
            )
        })
    };
    assert!(
        eventually(Duration::from_secs(20), || dropped() == 1.0),
        "the segment moto refuses is given up and counted"
    );
    let (_, m) = http_get(&metrics_url).unwrap();
    let errors = |t: &str| {
        metric_sum(
            &m,
            "sextant_component_errors_total",
            &["component=\"xray\"", &format!("error_type=\"{t}\"")],
        )
    };
    assert_eq!(
        (
            errors("throttled"),
            errors("server_error"),
            errors("timeout")
        ),
        (1.0, 1.0, 1.0)
    );
    // One injected round plus four refusals of the broken document before the fifth gives up.
    assert_eq!(errors("unprocessed_segments"), 5.0);
    assert!(collector.terminate(Duration::from_secs(15)));
}

/// The real X-Ray SDK for Python (installed by scripts/test) sending to the agent's `xray_udp`
/// source: it prints each segment's id, trace id and serialized document.
const XRAY_SDK_APP: &str = r#"
import sys
from aws_xray_sdk.core import xray_recorder
xray_recorder.configure(daemon_address=sys.argv[1], sampling=False, context_missing="LOG_ERROR", service="legacy-app")
for i in range(int(sys.argv[2])):
    segment = xray_recorder.begin_segment("legacy-app")
    sub = xray_recorder.begin_subsegment("query")
    sub.put_annotation("order", i)
    xray_recorder.end_subsegment()
    xray_recorder.end_segment()
    print(segment.id, segment.trace_id, segment.serialize(), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_from_the_xray_sdk_cross_the_hop_and_reach_xray_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let (admin, otlp, udp) = (free_port(), free_port(), free_port());
    let cfg = dir.path().join("run.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
agent:
  sources:
    xray:
      type: xray_udp
      address: "127.0.0.1:{udp}"
  sinks:
    to_collector:
      type: otlp
      inputs: [xray]
      endpoint: http://127.0.0.1:{otlp}
      batch: {{ timeout: 100ms }}
collector:
  sources:
    otlp:
      type: otlp
      address: "127.0.0.1:{otlp}"
  sinks:
    xray:
      type: aws_xray
      inputs: [otlp]
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 100ms }}
    files:
      type: file
      inputs: [otlp]
      path: {d}/out
"#,
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let mut sextant = start_sextant("run", &cfg, &dir.path().join("sextant.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    // Garbage on the port is counted and skipped.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"not a segment", ("127.0.0.1", udp))
        .unwrap();

    let sent: Vec<(String, String, String)> =
        run_python(XRAY_SDK_APP, &[&format!("127.0.0.1:{udp}"), "25"])
            .lines()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                (
                    parts.next().unwrap().into(),
                    parts.next().unwrap().into(),
                    parts.next().unwrap().into(),
                )
            })
            .collect();
    assert_eq!(sent.len(), 25);

    let client = aws_sdk_xray::Client::new(&moto_sdk_config(moto_port).await);
    let trace_ids: Vec<String> = sent.iter().map(|(_, t, _)| t.clone()).collect();
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..300 {
        for chunk in trace_ids.chunks(5) {
            let r = client
                .batch_get_traces()
                .set_trace_ids(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            for t in r.traces() {
                for seg in t.segments() {
                    stored.insert(
                        seg.id().unwrap().to_string(),
                        seg.document().unwrap().to_string(),
                    );
                }
            }
        }
        if stored.len() == sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored.len(), 25, "every segment arrived");
    for (id, _, serialized) in &sent {
        let doc: serde_json::Value = serde_json::from_str(&stored[id]).unwrap();
        let want: serde_json::Value = serde_json::from_str(serialized).unwrap();
        assert_eq!(doc, want, "the document as the SDK wrote it");
        assert!(doc["subsegments"][0]["annotations"]["order"].is_i64());
    }
    let (_, m) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    let discarded = |reason: &str| {
        metric_sum(
            &m,
            "sextant_events_discarded_total",
            &["component=\"xray\"", &format!("reason=\"{reason}\"")],
        )
    };
    assert_eq!(discarded("no_header"), 1.0, "the garbage datagram");
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_received_events_total",
            &["component=\"xray\"", "kind=\"xray_udp\""]
        ),
        50.0,
        "25 segments and the subsegment nested in each, as spans"
    );
    // The same segments as OpenTelemetry spans in the file sink: the segment a server span of
    // the service, its nested subsegment a child span with the annotation as an attribute.
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join("out/traces.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The file sink is the collector's other sink: it may finish a moment after X-Ray.
    eventually(Duration::from_secs(10), || read().len() >= 50);
    let spans = read();
    assert_eq!(spans.len(), 50);
    for (i, (id, _, serialized)) in sent.iter().enumerate() {
        let doc: serde_json::Value = serde_json::from_str(serialized).unwrap();
        let segment: Vec<_> = spans
            .iter()
            .filter(|s| s["span_id"] == id.as_str())
            .collect();
        assert_eq!(segment.len(), 1, "segment {id} once");
        let segment = segment[0];
        assert_eq!(segment["name"], "legacy-app");
        assert_eq!(segment["kind"], "Server");
        assert_eq!(segment["resource"]["service.name"], "legacy-app");
        assert_eq!(
            segment["resource"]["telemetry.sdk.name"],
            doc["aws"]["xray"]["sdk"]
        );
        assert_eq!(segment["parent_span_id"], serde_json::Value::Null);
        let raw: serde_json::Value = serde_json::from_str(
            segment["attributes"]["aws.xray.raw_segment"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(raw, doc, "the raw document rides along");
        let sub = &doc["subsegments"][0];
        let children: Vec<_> = spans
            .iter()
            .filter(|s| s["parent_span_id"] == id.as_str())
            .collect();
        assert_eq!(children.len(), 1);
        let child = children[0];
        assert_eq!(child["span_id"], sub["id"]);
        assert_eq!(child["trace_id"], segment["trace_id"]);
        assert_eq!(child["name"], "query");
        assert_eq!(child["kind"], "Internal");
        assert_eq!(child["attributes"]["order"], serde_json::json!(i));
        assert_eq!(child["attributes"]["aws.xray.nested"], true);
        let micros = |v: &serde_json::Value| (v.as_f64().unwrap() * 1e6).round() as u64;
        assert_eq!(
            child["start_time_unix_nano"].as_u64().unwrap(),
            micros(&sub["start_time"]) * 1000
        );
        assert_eq!(
            child["end_time_unix_nano"].as_u64().unwrap(),
            micros(&sub["end_time"]) * 1000
        );
    }
    assert!(sextant.terminate(Duration::from_secs(15)));
}
