//! Encoding bulk bodies: 10,000 container log records (a 200-byte message, 8 attributes, the
//! kubelet's resource attributes) as `create` actions and OpenTelemetry-layout documents with
//! content ids, dated index names from an attribute — what the sink's encoder does before gzip.
//! One core, the binary's allocator (mimalloc); throughput in bytes of NDJSON (target: at least
//! 500 MiB/s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_collector::sinks::opensearch::document::Layout;
use sextant_collector::sinks::opensearch::request_builder::{
    build, BuildStats, IndexName, Settings,
};
use sextant_pipeline::flow::event::{Events, KeyValue, LogEvent, Origin, Resource, Value};

/// The binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 10_000;

fn records() -> Vec<LogEvent> {
    let origin = Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("k8s.namespace.name", "checkout"),
                KeyValue::new("k8s.pod.name", "checkout-7d9f8-x2x4k"),
                KeyValue::new("k8s.pod.uid", "4b1c7e9a-1f2d-4c3b-9a8e-7f6d5c4b3a21"),
                KeyValue::new("k8s.container.name", "app"),
                KeyValue::new("k8s.node.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
                KeyValue::new(
                    "log.file.path",
                    "/var/log/pods/checkout_checkout-7d9f8-x2x4k_4b1c/app/0.log",
                ),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    (0..RECORDS)
        .map(|i| LogEvent {
            origin: origin.clone(),
            time_unix_nano: 1_796_259_723_000_000_000 + i as u64 * 1_000_000,
            observed_time_unix_nano: 1_796_259_723_000_500_000 + i as u64 * 1_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Value::Str(format!(
                "{i:06} POST /api/v1/orders completed in 12.5ms for customer 84213 with \"3 items\" total=129.99 EUR trace=ab12cd34 status=201 user-agent=Mozilla/5.0 (X11; Linux x86_64) retry=0"
            ).into()),
            attributes: vec![
                KeyValue::new("log.iostream", "stdout"),
                KeyValue::new("http.method", "POST"),
                KeyValue::new("http.route", "/api/v1/orders"),
                KeyValue::new("http.status_code", 201i64),
                KeyValue::new("duration_ms", Value::Double(12.5)),
                KeyValue::new("customer", 84213i64),
                KeyValue::new("currency", "EUR"),
                KeyValue::new("retry", Value::Bool(false)),
            ]
            .into(),
            ..Default::default()
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let events = Events::Logs(records());
    let settings = Settings {
        index: IndexName::parse("logs-{k8s.namespace.name}-%Y.%m.%d").unwrap(),
        missing: "unknown".into(),
        layout: Layout::Otel,
        max_request_bytes: 5 * 1024 * 1024,
    };
    let bodies = build(&events, &settings, &mut BuildStats::default());
    let bytes: usize = bodies.iter().map(|b| b.ndjson.len()).sum();
    let items: usize = bodies.iter().map(|b| b.ends.len()).sum();
    assert_eq!(items, RECORDS);
    eprintln!("{} bytes of NDJSON, {} a record", bytes, bytes / RECORDS);
    let mut group = c.benchmark_group("opensearch");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bulk_10k_logs", |b| {
        b.iter(|| build(&events, &settings, &mut BuildStats::default()))
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
