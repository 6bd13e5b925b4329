//! Trace intake on one core, what the receivers do per request before the pipeline: an OTLP
//! Export request of 1,000 spans (protobuf, and the same as OTLP JSON) decoded into Sextant's
//! spans, and X-Ray daemon datagrams (a segment with a nested subsegment, as the Python SDK
//! sends them) parsed and converted. Throughput in spans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

/// The binary's allocator, so that the stage is measured as it runs in `sextant`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
mod common;

use common::kv;
use opentelemetry_proto::tonic::common::v1::{any_value, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use sextant_pipeline::flow::event::{Origin, Signal};
use sextant_pipeline::sources::otlp::decode_body;
use sextant_pipeline::sources::xray_udp::parse::datagram;

const SPANS: usize = 1_000;

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// 1,000 spans of an HTTP service as an SDK batches them: 8 attributes each, an event on one
/// in ten, an error status on one in fifty.
fn request() -> ExportTraceServiceRequest {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: ((i / 10) as u128 + 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
                .to_be_bytes()
                .to_vec(),
            span_id: (i as u64 + 0x00f0_67aa_0ba9_02b7).to_be_bytes().to_vec(),
            parent_span_id: if i % 10 == 0 {
                Vec::new()
            } else {
                (i as u64 - 1 + 0x00f0_67aa_0ba9_02b7)
                    .to_be_bytes()
                    .to_vec()
            },
            name: format!("GET /api/v1/orders/{}", i % 50),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000,
            end_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000 + 350_000,
            attributes: vec![
                kv("http.request.method", s("GET")),
                kv("url.path", s(&format!("/api/v1/orders/{i}"))),
                kv("http.route", s("/api/v1/orders/{id}")),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv("server.address", s("orders.shop.svc")),
                kv("server.port", any_value::Value::IntValue(8080)),
                kv("network.protocol.version", s("1.1")),
                kv("user_agent.original", s("okhttp/4.12.0")),
            ],
            events: if i % 10 == 0 {
                vec![span::Event {
                    time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000 + 1_000,
                    name: "cache miss".into(),
                    attributes: vec![kv("cache.key", s("orders"))],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            status: (i % 50 == 0).then(|| Status {
                code: 2,
                message: "upstream timeout".into(),
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("orders")),
                    kv("service.version", s("3.2.1")),
                    kv("telemetry.sdk.name", s("opentelemetry")),
                    kv("telemetry.sdk.language", s("java")),
                    kv("host.name", s("orders-7d9f-abcde")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.okhttp".into(),
                    version: "2.1.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn xray_datagrams() -> Vec<Vec<u8>> {
    (0..SPANS / 2)
        .map(|i| {
            format!(
                "{{\"format\":\"json\",\"version\":1}}\n{{\"id\":\"{:016x}\",\"name\":\"legacy-app\",\"start_time\":1700000000.{i:06},\"trace_id\":\"1-6553f100-{:024x}\",\"end_time\":1700000000.9,\"service\":{{\"runtime\":\"CPython\",\"runtime_version\":\"3.11.2\"}},\"aws\":{{\"xray\":{{\"sdk_version\":\"2.15.0\",\"sdk\":\"X-Ray for Python\"}}}},\"http\":{{\"request\":{{\"method\":\"GET\",\"url\":\"http://legacy/orders/{i}\"}},\"response\":{{\"status\":200}}}},\"subsegments\":[{{\"id\":\"{:016x}\",\"name\":\"query\",\"start_time\":1700000000.1,\"end_time\":1700000000.2,\"annotations\":{{\"order\":{i}}},\"namespace\":\"remote\"}}]}}",
                0x1000_0000_0000_0000u64 + i as u64,
                i,
                0x2000_0000_0000_0000u64 + i as u64,
            )
            .into_bytes()
        })
        .collect()
}

fn trace_decode(c: &mut Criterion) {
    let request = request();
    let protobuf = request.encode_to_vec();
    let json = serde_json::to_vec(&request).unwrap();
    let mut group = c.benchmark_group("trace_decode");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.sample_size(30);
    for (name, content_type, body) in [
        (
            "otlp_protobuf_1000_spans",
            "application/x-protobuf",
            &protobuf,
        ),
        ("otlp_json_1000_spans", "application/json", &json),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let (events, rejected) =
                    decode_body(Signal::Traces, content_type, "", body, 64 << 20).unwrap();
                assert_eq!((events.len(), rejected), (SPANS, 0));
            })
        });
    }
    let datagrams = xray_datagrams();
    let origin = Arc::new(Origin::default());
    group.bench_function("xray_500_datagrams_1000_spans", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &datagrams {
                n += datagram(d, &origin).unwrap().len();
            }
            assert_eq!(n, SPANS);
        })
    });
    group.finish();
}

criterion_group!(benches, trace_decode);
criterion_main!(benches);
