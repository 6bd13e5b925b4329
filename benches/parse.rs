//! The parse stage of container logs: line splitting (memchr) + CRI + JSON message into events,
//! on one core, on lines like the issue's reference input (~330 bytes, 12-key JSON payloads).
//! Throughput in bytes of log file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

/// The binary's allocator, so that the stage is measured as it runs in `sextant`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_pipeline::flow::event::Origin;
use sextant_pipeline::sources::file::config::InvalidUtf8;
use sextant_pipeline::sources::file::format::{
    cri::CriDecoder, DecodeContext, JsonMessages, LineDecoder,
};
use sextant_pipeline::sources::file::lines::LineSplitter;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

fn cri_file(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let payload = format!(
            r#"{{"level":"info","ts":"2024-05-01T12:00:{:02}.123Z","logger":"http","msg":"request served","method":"GET","path":"/api/v1/orders/{i}","status":200,"duration_ms":{},"bytes":5231,"user":"u-{}","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","region":"eu-west-1"}}"#,
            i % 60,
            i % 997,
            i % 10_000
        );
        out.extend_from_slice(
            format!(
                "2024-05-01T12:00:00.{:09}Z stdout F {payload}\n",
                i % 1_000_000_000
            )
            .as_bytes(),
        );
    }
    out
}

fn parse(c: &mut Criterion) {
    let data = cri_file(20_000);
    let mut group = c.benchmark_group("parse_stage");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    let origin = Arc::new(Origin::default());
    let metrics = ComponentMetrics::new("bench", "bench_parse", "bench");
    let limiter = LogLimiter::default();
    for (name, json) in [
        (
            "cri_split_only",
            JsonMessages {
                parse: false,
                keep_original: false,
            },
        ),
        (
            "cri_json_to_attributes",
            JsonMessages {
                parse: true,
                keep_original: false,
            },
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let cx = DecodeContext {
                    origin: &origin,
                    now: 1,
                    metrics: &metrics,
                    invalid_utf8: InvalidUtf8::Lossy,
                    max_record_bytes: 1 << 20,
                    limiter: &limiter,
                };
                let mut splitter = LineSplitter::new(1 << 20);
                let mut decoder = CriDecoder::new(json);
                let mut events = Vec::with_capacity(4096);
                let mut n = 0;
                for chunk in data.chunks(256 * 1024) {
                    splitter.push(chunk, |line| {
                        decoder.decode(line, &cx, &mut events);
                    });
                    n += events.len();
                    events.clear();
                }
                assert_eq!(n, 20_000);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
