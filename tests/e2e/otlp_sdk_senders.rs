//! The OpenTelemetry Python SDK as a real sender to `sextant agent` (TESTING.md): over gRPC, over
//! OTLP/HTTP protobuf plain and gzipped (the SDK's own exporters), and over OTLP/HTTP JSON plain
//! and gzipped. The SDK has no JSON exporter; `python/otel_trace_app.py` encodes the SDK's own
//! export request with protobuf's JSON mapping and hex ids, as the OTLP spec describes.
//!
//! The app makes one trace with every span field in use (kinds, parents, attributes of each
//! type, events, a link, an error status, scope, resource), waits for each export's answer and
//! prints the spans as the SDK saw them; every field it printed must come out of the agent's
//! file sink unchanged, each span exactly once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/otel_trace_app.py")
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Every key of `want` is in `got` with the same value (numbers compared as numbers; arrays
/// element by element and of the same length); `got` may have more keys.
fn assert_has(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, v) in w {
                let at = format!("{path}.{k}");
                let g = g.get(k).unwrap_or_else(|| panic!("{at} missing in {got}"));
                assert_has(g, v, &at);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: {got} against {want}");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_has(g, w, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            assert_eq!(g.as_f64(), w.as_f64(), "{path}");
            assert_eq!(g.as_u64(), w.as_u64(), "{path}: exact integers");
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

fn spans_written(out: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("traces.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn the_python_sdk_sends_whole_spans_over_grpc_http_protobuf_and_http_json() {
    let dir = tempfile::tempdir().unwrap();
    let (http, grpc) = (free_port(), free_port());
    let (mut agent, out) = start_agent_to_files(
        dir.path(),
        "otlp",
        &format!(
            "{{type: otlp, address: \"127.0.0.1:{http}\", grpc_address: \"127.0.0.1:{grpc}\"}}"
        ),
    );
    assert!(
        eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok()
        }),
        "the agent listens"
    );
    let traces_url = format!("http://127.0.0.1:{http}/v1/traces");
    let grpc_url = format!("http://127.0.0.1:{grpc}");
    let mut sent_before = 0;
    for (transport, endpoint) in [
        ("grpc", &grpc_url),
        ("http", &traces_url),
        ("http-gzip", &traces_url),
        ("json", &traces_url),
        ("json-gzip", &traces_url),
    ] {
        let run = Command::new(python())
            .args([app().to_str().unwrap(), transport, endpoint])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{transport}: every export was answered with success: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let sent: Vec<Value> = String::from_utf8_lossy(&run.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(sent.len(), 4, "{transport}: the app's four spans");
        // The app exported each span and was answered only once it was delivered: it is in
        // the file already (the file sink is the only sink).
        let written: Vec<Value> = spans_written(&out)
            .into_iter()
            .filter(|s| sent.iter().any(|e| e["trace_id"] == s["trace_id"]))
            .collect();
        assert_eq!(written.len(), 4, "{transport}: each span once");
        for want in &sent {
            let got = written
                .iter()
                .find(|s| s["span_id"] == want["span_id"])
                .unwrap_or_else(|| panic!("{transport}: span {} missing", want["name"]));
            assert_has(got, want, transport);
        }
        // The trace is whole: the two children name the root, the root has none.
        let root = written
            .iter()
            .find(|s| s["name"] == "POST /orders")
            .unwrap();
        assert_eq!(root["parent_span_id"], Value::Null);
        assert_eq!(
            written
                .iter()
                .filter(|s| s["parent_span_id"] == root["span_id"])
                .count(),
            2,
            "{transport}"
        );
        assert!(written
            .iter()
            .all(|s| s["trace_id"] == root["trace_id"] || s["name"] == "warm cache"));
        sent_before += 4;
        assert_eq!(
            spans_written(&out).len(),
            sent_before,
            "{transport}: nothing else written"
        );
    }
    assert!(agent.terminate(Duration::from_secs(15)));
}

#[test]
fn while_the_collector_is_down_the_sdk_is_told_to_retry_and_nothing_is_lost_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (http, agent_admin, collector_otlp, collector_admin) =
        (free_port(), free_port(), free_port(), free_port());
    let agent_config = d.join("agent.yaml");
    // The agent answers its senders only once the collector has the data; it gives up waiting
    // after `ack_timeout` and answers 503, which the SDK retries.
    std::fs::write(
        &agent_config,
        format!(
            r#"
data_dir: {d}/agent-data
admin: {{ address: "127.0.0.1:{agent_admin}" }}
agent:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{http}", ack_timeout: 1s }}
  sinks:
    to_collector:
      type: otlp
      inputs: [otlp]
      endpoint: http://127.0.0.1:{collector_otlp}
      {request}
"#,
            d = d.display(),
            request = crate::common::hop::REQUEST,
        ),
    )
    .unwrap();
    let mut agent = start_sextant("agent", &agent_config, &d.join("agent.log"));
    // Not ready (its collector is down) but listening.
    assert!(eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
    }));
    let out = d.join("out");
    let sender = Command::new(python())
        .args([
            app().to_str().unwrap(),
            "http",
            &format!("http://127.0.0.1:{http}/v1/traces"),
        ])
        .env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "60")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The SDK is turned away while there is no collector...
    let agent_metrics = || {
        http_get(&format!("http://127.0.0.1:{agent_admin}/metrics"))
            .map(|(_, m)| m)
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(20), || {
            metric_sum_or_zero(
                &agent_metrics(),
                "sextant_component_failed_events_total",
                &["component=\"otlp\""],
            ) >= 2.0
        }),
        "the agent answered retry-later at least twice"
    );
    // ...and gets through once there is one.
    let collector_config = crate::common::hop::collector_config(
        d,
        collector_admin,
        collector_otlp,
        &crate::common::hop::file_sink(&out),
    );
    let mut collector = start_sextant("collector", &collector_config, &d.join("collector.log"));
    let run = sender.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "every export succeeded in the end: {stderr}"
    );
    assert!(
        stderr.contains("retrying"),
        "the SDK retried on the agent's answer: {stderr}"
    );
    let sent: Vec<Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 4);
    let written = spans_written(&out);
    for want in &sent {
        let copies: Vec<&Value> = written
            .iter()
            .filter(|s| s["span_id"] == want["span_id"])
            .collect();
        // At least once: a request the agent gave up waiting for may still be delivered
        // besides its retry.
        assert!(!copies.is_empty(), "span {} lost", want["name"]);
        for got in copies {
            assert_has(got, want, "after the outage");
        }
    }
    assert!(collector.terminate(Duration::from_secs(15)));
    assert!(agent.terminate(Duration::from_secs(15)));
}

/// Pod association end to end: the agent's one pod watch reads the (fake) API's pods; one of
/// them has the SDK's address (127.0.0.1) as its IP, so every span the SDK sends (gRPC and
/// HTTP JSON alike) carries that pod's `k8s.*` attributes beside the SDK's own resource, which
/// stays as the SDK set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_a_pods_address_carry_the_pods_attributes() {
    use crate::common::fake_api::{pod, FakeApi};
    let mut checkout = pod(
        "checkout-7d9f8b6c5-x2x",
        "uid-checkout",
        "node-a",
        serde_json::json!({"app": "checkout", "pod-template-hash": "7d9f8b6c5"}),
        serde_json::json!({}),
        Some(("ReplicaSet", "checkout-7d9f8b6c5")),
    );
    checkout["status"] = serde_json::json!({
        "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]
    });
    let api = FakeApi::start(vec![checkout]).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let (http, grpc) = (free_port(), free_port());
    let (mut agent, out) = start_agent_to_files(
        dir.path(),
        "otlp",
        &format!(
            "{{type: otlp, address: \"127.0.0.1:{http}\", grpc_address: \"127.0.0.1:{grpc}\", pod_association: {{kubeconfig: {}, node_name: node-a}}}}",
            kubeconfig.display()
        ),
    );
    let run_app = |transport: &str, endpoint: String| {
        let transport = transport.to_owned();
        tokio::task::spawn_blocking(move || {
            let run = Command::new(python())
                .args([app().to_str().unwrap(), &transport, &endpoint])
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{transport}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            String::from_utf8_lossy(&run.stdout)
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert!(
        eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok()
        }),
        "the agent listens"
    );
    // The watch has taken the listing once it asks to watch from it: a second request.
    let listed = tokio::time::Instant::now() + Duration::from_secs(20);
    while api
        .selectors()
        .iter()
        .filter(|s| s.contains("node-a"))
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < listed,
            "the agent never watched its pods"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sent = run_app("grpc", format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    sent.extend(
        run_app("json", format!("http://127.0.0.1:{http}/v1/traces"))
            .await
            .unwrap(),
    );
    assert_eq!(sent.len(), 8);
    let written = spans_written(&out);
    assert_eq!(written.len(), 8, "each span once");
    let pod_resource = serde_json::json!({
        "k8s.namespace.name": "shop",
        "k8s.pod.name": "checkout-7d9f8b6c5-x2x",
        "k8s.pod.uid": "uid-checkout",
        "k8s.node.name": "node-a",
        "k8s.replicaset.name": "checkout-7d9f8b6c5",
        "k8s.deployment.name": "checkout",
        "k8s.pod.label.app": "checkout",
        "k8s.pod.label.pod-template-hash": "7d9f8b6c5",
    });
    for want in &sent {
        let got = written
            .iter()
            .find(|s| s["span_id"] == want["span_id"])
            .unwrap_or_else(|| panic!("span {} missing", want["name"]));
        // Every field the SDK set, its resource included, as it set it...
        assert_has(got, want, "pod association");
        // ...and the pod's attributes besides.
        assert_has(&got["resource"], &pod_resource, "the pod");
        assert_eq!(
            got["resource"].as_object().unwrap().len(),
            want["resource"].as_object().unwrap().len() + 8,
            "{}",
            got["resource"]
        );
    }
    assert!(agent.terminate(Duration::from_secs(15)));
}
