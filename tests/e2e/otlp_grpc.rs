//! OTLP/gRPC against real gRPC implementations (TESTING.md): the OpenTelemetry Python SDK's gRPC
//! exporter sending to a `sextant collector`, and a `sextant agent` sending to a grpcio server
//! built from the OTLP protos (a stand-in collector written for the test, which refuses its
//! first call with UNAVAILABLE to exercise the retry).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::hop::{append_lines, expected_lines, Hop};
use crate::common::*;

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

const SDK_APP: &str = r#"
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": "py-app"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("test")
for i in range(int(sys.argv[2])):
    with tracer.start_as_current_span(f"op-{i}") as span:
        span.set_attribute("i", i)
provider.shutdown()
"#;

#[test]
fn the_opentelemetry_sdk_exports_spans_over_grpc_to_the_collector() {
    let hop = Hop::new();
    // The SDK goes to the second listener, `grpc_address`.
    let collector = crate::common::hop::collector_config(
        hop.dir.path(),
        hop.collector_admin,
        free_port(),
        &crate::common::hop::file_sink(&hop.out),
    );
    let yaml = std::fs::read_to_string(&collector).unwrap().replace(
        "      type: otlp\n",
        &format!(
            "      type: otlp\n      grpc_address: 127.0.0.1:{}\n",
            hop.otlp
        ),
    );
    std::fs::write(&collector, yaml).unwrap();
    let mut collector = start_sextant("collector", &collector, &hop.path("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{}/readyz", hop.collector_admin),
        Duration::from_secs(20),
    );
    let status = Command::new(python())
        .args([
            "-c",
            SDK_APP,
            &format!("http://127.0.0.1:{}", hop.otlp),
            "50",
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the SDK's export succeeded (it exits non-zero on export errors only via logs)"
    );
    let read = || {
        std::fs::read_to_string(hop.out.join("traces.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect::<Vec<_>>()
    };
    assert!(eventually(Duration::from_secs(20), || read().len() >= 50));
    let spans = read();
    let mut names: Vec<String> = spans
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("op-{i}")).collect();
    want.sort();
    assert_eq!(names, want, "every span once");
    assert!(collector.terminate(Duration::from_secs(15)));
}

const GRPC_COLLECTOR: &str = r#"
import sys, grpc
from concurrent import futures
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    calls = 0
    def Export(self, request, context):
        Logs.calls += 1
        if Logs.calls == 1:
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details("warming up")
            return logs_service_pb2.ExportLogsServiceResponse()
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    print(r.body.string_value, flush=True)
        return logs_service_pb2.ExportLogsServiceResponse()
server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
print("ready", flush=True)
server.wait_for_termination()
"#;

#[test]
fn the_agent_exports_over_grpc_to_a_grpcio_server_and_retries_unavailable() {
    let hop = Hop::new();
    crate::common::release_port(hop.otlp);
    let mut server = Command::new(python())
        .args(["-c", GRPC_COLLECTOR, &hop.otlp.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = server.stdout.take().unwrap();
    let sink = received.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    assert!(eventually(Duration::from_secs(20), || received
        .lock()
        .unwrap()
        .first()
        .is_some_and(|l| l == "ready")));

    append_lines(&hop.app_log, 0..500);
    let agent = hop.agent(hop.otlp, "protocol: grpc\n      request: { initial_backoff: 100ms, max_backoff: 500ms, concurrency: 1 }");
    let mut agent = start_sextant("agent", &agent, &hop.path("agent.log"));
    assert!(eventually(Duration::from_secs(30), || received
        .lock()
        .unwrap()
        .len()
        > 500));
    let got: Vec<String> = received.lock().unwrap()[1..].to_vec();
    assert_eq!(
        got,
        expected_lines(0..500),
        "every line once, in order, after the retry"
    );
    let retries = crate::common::hop::metric(
        hop.agent_admin,
        "sextant_component_errors_total",
        &["error_type=\"grpc_unavailable\""],
    );
    assert_eq!(retries, 1.0, "the UNAVAILABLE answer was retried");
    assert!(agent.terminate(Duration::from_secs(15)));
    let _ = server.kill();
    let _ = server.wait();
}
