//! The `opensearch` sink end to end against `osmem-server` (PyPI; an independent
//! implementation of OpenSearch's REST API, not OpenSearch: see ../shared/TESTING.md): OTLP logs
//! and spans into a real `sextant collector`, documents read back whole with `_search`; a
//! mapping conflict among good documents sends exactly the bad one to the dead-letter file; a
//! resend indexes nothing twice; the index template is installed before the first write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

use crate::common::*;

/// 2026-12-03T01:02:03.000000004Z
const TIME_NS: u64 = 1_796_259_723_000_000_004;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn text(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", text("checkout")),
            kv("k8s.namespace.name", text("Shop")),
        ],
        ..Default::default()
    })
}

fn osmem_binary() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    glob_first(&venv).unwrap_or_else(|| {
        panic!(
            "osmem-server must be installed (scripts/test installs it) under {}",
            venv.display()
        )
    })
}

fn glob_first(lib: &Path) -> Option<PathBuf> {
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|d| d.path().join("site-packages/osmem_server/bin/osmem-server"))
        .find(|p| p.exists())
}

fn start_osmem(port: u16) -> Proc {
    release_port(port);
    let child = std::process::Command::new(osmem_binary())
        .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc {
        child,
        name: "osmem-server",
    };
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(20),
    );
    proc
}

fn search(port: u16, index: &str) -> Vec<serde_json::Value> {
    let (status, body) =
        http_get(&format!("http://127.0.0.1:{port}/{index}/_search?size=100")).unwrap();
    if status != 200 {
        return Vec::new();
    }
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["hits"]["hits"].as_array().cloned().unwrap_or_default()
}

fn start_collector(dir: &Path, osmem: u16, sink_extra: &str, index: &str) -> (Proc, u16, u16) {
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir,
        admin,
        otlp,
        &format!(
            r#"    search:
      type: opensearch
      inputs: [otlp]
      endpoint: http://127.0.0.1:{osmem}
      index: "{index}"
      dead_letter: {{ path: {dead} }}
      batch: {{ timeout: 100ms }}
      request: {{ timeout: 2s, initial_backoff: 50ms, max_backoff: 300ms }}
{sink_extra}"#,
            dead = dir.join("dead.jsonl").display()
        ),
    );
    let collector = start_sextant("collector", &cfg, &dir.join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    (collector, admin, otlp)
}

fn record(body: &str, n: any_value::Value, ids: bool) -> LogRecord {
    LogRecord {
        time_unix_nano: TIME_NS,
        observed_time_unix_nano: TIME_NS + 5,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(text(body)),
        }),
        attributes: vec![kv("n", n), kv("http.route", text("/pay"))],
        trace_id: if ids { vec![0xab; 16] } else { vec![] },
        span_id: if ids { vec![0xcd; 8] } else { vec![] },
        ..Default::default()
    }
}

fn logs(records: Vec<LogRecord>) -> Vec<u8> {
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

fn dropped(admin: u16, reason: &str) -> f64 {
    let (_, text) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    metric_sum_or_zero(
        &text,
        "sextant_component_dropped_events_total",
        &["component=\"search\"", &format!("reason=\"{reason}\"")],
    )
}

#[test]
fn logs_are_indexed_whole_once_and_a_mapping_conflict_dead_letters_only_the_bad_document() {
    let dir = tempfile::tempdir().unwrap();
    let osmem = free_port();
    let _osmem = start_osmem(osmem);
    let template = dir.path().join("template.json");
    std::fs::write(
        &template,
        r#"{"index_patterns":["logs-*"],"template":{"mappings":{"properties":{"attributes":{"properties":{"n":{"type":"long"}}}}}}}"#,
    )
    .unwrap();
    let (_collector, admin, otlp) = start_collector(
        dir.path(),
        osmem,
        &format!(
            "      index_template: {{ name: sextant-logs, file: {} }}\n",
            template.display()
        ),
        "logs-{k8s.namespace.name}-%Y.%m.%d",
    );
    let request = logs(vec![
        record("paid 1", any_value::Value::IntValue(1), true),
        record("paid 2", any_value::Value::IntValue(2), false),
        record("bad", text("notanumber"), false),
    ]);
    assert_eq!(post_otlp(otlp, "/v1/logs", &request), 200);

    // The template was installed before the first write.
    let (status, body) = http_get(&format!(
        "http://127.0.0.1:{osmem}/_index_template/sextant-logs"
    ))
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"logs-*\""), "{body}");

    // The index is named from the record and its date, lowercase.
    let index = "logs-shop-2026.12.03";
    let mut hits = search(osmem, index);
    assert_eq!(hits.len(), 2, "{hits:?}");
    hits.sort_by_key(|h| h["_source"]["body"].as_str().unwrap().to_owned());
    let first = &hits[0]["_source"];
    assert_eq!(
        *first,
        serde_json::json!({
            "@timestamp": "2026-12-03T01:02:03.000000004Z",
            "observedTimestamp": "2026-12-03T01:02:03.000000009Z",
            "severity": { "text": "INFO", "number": 9 },
            "body": "paid 1",
            "attributes": { "n": 1, "http.route": "/pay" },
            "resource": { "service.name": "checkout", "k8s.namespace.name": "Shop" },
            "traceId": "abababababababababababababababab",
            "spanId": "cdcdcdcdcdcdcdcd",
        })
    );
    assert_eq!(hits[1]["_source"]["body"], "paid 2");
    assert!(hits[1]["_source"].get("traceId").is_none());

    // Exactly the bad document, with OpenSearch's reason.
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "mapping");
    assert_eq!(dead[0]["record"]["index"], index);
    assert_eq!(dead[0]["record"]["document"]["body"], "bad");
    assert_eq!(dropped(admin, "mapping"), 1.0);

    // The same records again (a sender's retry, an agent's resend): nothing indexed twice.
    assert_eq!(post_otlp(otlp, "/v1/logs", &request), 200);
    assert_eq!(search(osmem, index).len(), 2);
    assert_eq!(dropped(admin, "refused"), 0.0);
}

#[test]
fn spans_are_indexed_in_the_layout_trace_analytics_reads() {
    let dir = tempfile::tempdir().unwrap();
    let osmem = free_port();
    let _osmem = start_osmem(osmem);
    let (_collector, _admin, otlp) = start_collector(dir.path(), osmem, "", "otel-v1-apm-span");
    let span = |id: u8, parent: Option<u8>, name: &str| Span {
        trace_id: vec![0x11; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: if parent.is_none() {
            span::SpanKind::Server
        } else {
            span::SpanKind::Client
        } as i32,
        start_time_unix_nano: TIME_NS,
        end_time_unix_nano: TIME_NS + 1_500_000,
        attributes: vec![kv("http.method", text("POST"))],
        status: Some(Status {
            code: status::StatusCode::Error as i32,
            message: "boom".into(),
        }),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, None, "POST /pay"), span(2, Some(1), "charge card")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    assert_eq!(post_otlp(otlp, "/v1/traces", &request), 200);
    let mut hits = search(osmem, "otel-v1-apm-span");
    assert_eq!(hits.len(), 2, "{hits:?}");
    hits.sort_by_key(|h| h["_source"]["spanId"].as_str().unwrap().to_owned());
    let root = &hits[0]["_source"];
    assert_eq!(
        *root,
        serde_json::json!({
            "traceId": "11111111111111111111111111111111",
            "spanId": "0101010101010101",
            "parentSpanId": "",
            "traceState": "",
            "name": "POST /pay",
            "kind": "SPAN_KIND_SERVER",
            "startTime": "2026-12-03T01:02:03.000000004Z",
            "endTime": "2026-12-03T01:02:03.001500004Z",
            "durationInNanos": 1_500_000,
            "serviceName": "checkout",
            "status": { "code": 2, "message": "boom" },
            "traceGroup": "POST /pay",
            "traceGroupFields": {
                "endTime": "2026-12-03T01:02:03.001500004Z",
                "durationInNanos": 1_500_000,
                "statusCode": 2
            },
            "events": [],
            "links": [],
            "droppedAttributesCount": 0,
            "span.attributes.http@method": "POST",
            "resource.attributes.service@name": "checkout",
            "resource.attributes.k8s@namespace@name": "Shop",
        })
    );
    let child = &hits[1]["_source"];
    assert_eq!(child["parentSpanId"], "0101010101010101");
    assert!(child.get("traceGroup").is_none());
    assert_eq!(hits[0]["_id"], "11111111111111110101010101010101");
}

/// A node's log lines through the agent and one collector into OpenSearch and CloudWatch Logs
/// (moto) at once, with a clean restart of the collector halfway: every line in each, once, and
/// the file's checkpoint at its end only when both have them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_logs_reach_opensearch_and_cloudwatch_logs_from_one_collector_each_once() {
    use crate::common::hop::{append_lines, expected_lines, Hop};
    let hop = Hop::new();
    let (osmem, moto) = (free_port(), free_port());
    let _osmem = start_osmem(osmem);
    let _moto = start_moto(moto);
    let sinks = format!(
        r#"    search:
      type: opensearch
      inputs: [otlp]
      endpoint: http://127.0.0.1:{osmem}
      index: node-logs
      batch: {{ timeout: 100ms }}
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [otlp]
      log_group: /sextant/e2e
      log_stream: app
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto}" }}
      batch: {{ timeout: 100ms }}
"#
    );
    let collector_cfg =
        crate::common::hop::collector_config(hop.dir.path(), hop.collector_admin, hop.otlp, &sinks);
    let agent_cfg = hop.agent(
        hop.otlp,
        "request: { timeout: 30s, initial_backoff: 100ms, max_backoff: 500ms }",
    );
    let mut collector = start_sextant("collector", &collector_cfg, &hop.path("c1.log"));
    let _agent = start_sextant("agent", &agent_cfg, &hop.path("a.log"));
    let half = append_lines(&hop.app_log, 0..1000);
    assert!(
        eventually(Duration::from_secs(60), || committed_offset(&hop.store)
            == half),
        "the first half never reached both backends"
    );
    assert!(collector.terminate(Duration::from_secs(15)));
    let _collector = start_sextant("collector", &collector_cfg, &hop.path("c2.log"));
    let size = append_lines(&hop.app_log, 1000..2000);
    assert!(
        eventually(Duration::from_secs(60), || committed_offset(&hop.store)
            == size),
        "the second half never reached both backends"
    );

    let expected = expected_lines(0..2000);
    // OpenSearch: every line once.
    let (_, body) = http_get(&format!(
        "http://127.0.0.1:{osmem}/node-logs/_search?size=10000"
    ))
    .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut indexed: Vec<String> = body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"]["body"].as_str().unwrap().to_owned())
        .collect();
    indexed.sort_by_key(|l| l.split(' ').nth(1).unwrap().parse::<usize>().unwrap());
    assert_eq!(indexed, expected, "OpenSearch: each line once");
    // CloudWatch Logs: every line once, in order.
    let client = cwl_client(moto).await;
    let stored = read_stream(&client, "/sextant/e2e", "app").await;
    assert_eq!(
        stored, expected,
        "CloudWatch Logs: each line once, in order"
    );
}

/// Bulk requests to Amazon OpenSearch Service carry a SigV4 signature (signing name `es`) that
/// the independent verifier accepts, over the gzipped body as sent; the health check is signed
/// too.
#[test]
fn bulk_requests_to_amazon_opensearch_service_carry_a_sigv4_signature_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, seen) = crate::common::sigv4::signature_checking_receiver();
    let template = dir.path().join("template.json");
    std::fs::write(&template, r#"{"index_patterns":["logs*"]}"#).unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"policy":{"default_state":"hot","states":[{"name":"hot","actions":[],"transitions":[]}]}}"#,
    )
    .unwrap();
    let (_collector, _admin, otlp) = start_collector(
        dir.path(),
        receiver,
        &format!(
            "      auth: {{ type: sigv4, region: eu-west-1 }}\n      index_template: {{ name: logs, file: {} }}\n      ism_policy: {{ name: logs-retention, file: {} }}\n",
            template.display(),
            policy.display()
        ),
        "logs",
    );
    let request = logs(vec![
        record("signed 1", any_value::Value::IntValue(1), false),
        record("signed 2", any_value::Value::IntValue(2), false),
    ]);
    assert_eq!(post_otlp(otlp, "/v1/logs", &request), 200);
    let seen = seen.lock().unwrap().clone();
    // The template and the ISM policy, signed, before the first write (no server here serves
    // ISM: the stand-in checks the request OpenSearch's documented API takes).
    let writes: Vec<(&str, &str)> = seen
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        writes,
        vec![
            ("PUT", "/_index_template/logs"),
            ("PUT", "/_plugins/_ism/policies/logs-retention"),
            ("POST", "/_bulk"),
        ]
    );
    assert!(seen.iter().all(|r| r.scope.is_ok()));
    let policy_sent = seen
        .iter()
        .find(|r| r.path == "/_plugins/_ism/policies/logs-retention")
        .unwrap();
    let policy_sent: serde_json::Value = serde_json::from_slice(&policy_sent.body).unwrap();
    assert_eq!(policy_sent["policy"]["default_state"], "hot");
    let bulk: Vec<_> = seen.iter().filter(|r| r.path == "/_bulk").collect();
    assert_eq!(bulk.len(), 1, "{seen:?}");
    assert_eq!(bulk[0].scope.as_deref(), Ok("testing/eu-west-1/es"));
    assert!(seen
        .iter()
        .any(|r| r.path == "/_cluster/health" && r.scope.is_ok() && r.method == "GET"));
    let gz = vec![("content-encoding".to_owned(), "gzip".to_owned())];
    let ndjson = crate::common::sigv4::bulk_ndjson(&bulk[0].body, &gz);
    let bodies: Vec<String> = ndjson
        .lines()
        .skip(1)
        .step_by(2)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(bodies, vec!["signed 1", "signed 2"]);
}

/// An item OpenSearch refuses with 429 is sent again alone; the others are not sent twice.
#[test]
fn a_throttled_item_is_sent_again_alone() {
    let dir = tempfile::tempdir().unwrap();
    let osmem = free_port();
    let _osmem = start_osmem(osmem);
    let proxy = FaultProxy::start(osmem, "/_bulk", vec![Fault::ThrottleFirstBulkItem]);
    let (_collector, admin, otlp) =
        start_collector(dir.path(), proxy.port, "      gzip: false\n", "logs");
    let records = (0..5)
        .map(|i| record(&format!("line {i}"), any_value::Value::IntValue(i), false))
        .collect();
    assert_eq!(post_otlp(otlp, "/v1/logs", &logs(records)), 200);
    assert_eq!(proxy.injected.load(std::sync::atomic::Ordering::SeqCst), 1);
    let mut bodies: Vec<String> = search(osmem, "logs")
        .iter()
        .map(|h| h["_source"]["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    // Two requests: the five items, then the one throttled item alone.
    let sent: Vec<Vec<String>> = proxy
        .matched
        .lock()
        .unwrap()
        .iter()
        .map(|body| {
            String::from_utf8_lossy(body)
                .lines()
                .skip(1)
                .step_by(2)
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["body"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        })
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].len(), 5);
    assert_eq!(sent[1], vec!["line 0"]);
    let (_, text) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    assert_eq!(
        metric_sum_or_zero(
            &text,
            "sextant_component_sent_events_total",
            &["component=\"search\""]
        ),
        5.0
    );
    assert_eq!(
        metric_sum_or_zero(
            &text,
            "sextant_component_retries_total",
            &["component=\"search\""]
        ),
        1.0
    );
    assert_eq!(dropped(admin, "refused") + dropped(admin, "mapping"), 0.0);
}
